//! The interactive face, driven through a real pseudo-terminal: the plan, a confirmation before
//! starting, progress, and the approval prompt.

use std::time::Duration;

use expectrl::{Eof, Expect, Regex, Session};

use super::{BIN, External, workflow};

#[test]
fn a_person_approves_the_run_at_a_terminal() {
    let sb = External::from_example("healthy.yaml");
    let wf = workflow(sb.dir.path(), "in-place.yaml", |t| t);
    let mut cmd = std::process::Command::new(BIN);
    // No `--cluster`: the person picks it from what ListClusters returns.
    cmd.args(["run", wf.to_str().unwrap_or(""), "--time-scale", "600"])
        .env("NO_COLOR", "1")
        .env("EKS_UPGRADE_STATE_DIR", sb.state_dir())
        .env("TERM", "xterm");
    for (k, v) in &sb.env {
        cmd.env(k, v);
    }
    let mut session = Session::spawn(cmd).expect("spawn in a pty");
    session.set_expect_timeout(Some(Duration::from_secs(60)));
    session
        .expect("Which cluster?")
        .expect("asked for the cluster");
    session.expect("demo").expect("the cluster is listed");
    session.send("\r").expect("choose it");
    session
        .expect("Plan: workflow `in-place`")
        .expect("the plan is shown");
    session.expect("Start this run?").expect("asked to start");
    session.send("y").expect("answer");
    session
        .expect("Backup verified. Start the upgrade?")
        .expect("the approval step asks");
    session.send("y").expect("approve");
    session
        .expect(Regex("run \\S+ succeeded"))
        .expect("the run succeeds");
    session.expect(Eof).expect("the program exits");
    assert_eq!(sb.cluster_version("demo"), "1.34");
}
