//! The interactive face, driven through a real pseudo-terminal: the plan, a confirmation before
//! starting, progress, the approval prompt, and a soak a person may cut short.

use expectrl::{Eof, Expect, Regex, Session};

use super::{External, workflow};
use crate::common::POLL_TIMEOUT;

#[test]
fn a_person_approves_the_run_at_a_terminal() {
    let sb = External::from_example("healthy.yaml");
    let wf = workflow(sb.dir.path(), "in-place.yaml", |t| t);
    // No `--cluster`: the person picks it from what ListClusters returns. The pseudo-terminal
    // is the child's standard streams, and every `expect` below is bounded.
    let cmd = sb
        .eks_upgrade(&["run", wf.to_str().unwrap_or(""), "--time-scale", "600"])
        .env("TERM", "xterm")
        .command();
    let mut session = Session::spawn(cmd).expect("spawn in a pty");
    session.set_expect_timeout(Some(POLL_TIMEOUT));
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
    // The soak counts down; a person may tell the run to go on.
    session
        .expect(Regex("The soak has \\S+ left. Go on now instead?"))
        .expect("the soak offers to go on");
    session.send("y").expect("go on");
    session
        .expect(Regex("run \\S+ succeeded"))
        .expect("the run succeeds");
    session.expect(Eof).expect("the program exits");
    assert_eq!(sb.cluster_version("demo"), "1.34");
    let soak = sb.journal()["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["key"]["id"] == "soak"))
        .cloned()
        .unwrap_or_default();
    assert!(
        soak["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("cut short by a person")),
        "{soak}"
    );
}
