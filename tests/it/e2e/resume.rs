//! Crashes: a run killed with SIGKILL at a wait, then `resume`, ends as an uninterrupted run
//! would, with no duplicate Backup, Restore or version update.

use std::process::Stdio;
use std::time::Duration;

use super::runs::slow_scenario;
use super::{External, until, wait, workflow};

fn journal_fact(sb: &External, step: &str, fact: &str) -> bool {
    let Some(path) = sb.journal_path() else {
        return false;
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let Ok(j) = serde_json::from_str::<serde_json::Value>(&text) else {
        return false;
    };
    j["steps"].as_array().is_some_and(|s| {
        s.iter().any(|x| {
            x["key"]["id"] == step && x["status"] == "running" && x["facts"][fact].is_string()
        })
    })
}

fn kill_at_and_resume(timing: &str, step: &str, fact: &str) -> External {
    let sb = External::start(&slow_scenario(timing));
    // Generous step timeouts: the kill must land during the wait, not after a timeout.
    let wf = workflow(sb.dir.path(), "in-place.yaml", |t| {
        t.replace("timeout: 30m", "timeout: 4h").replace(
            "upgradeControlPlane: { timeout: 60m }",
            "upgradeControlPlane: { timeout: 4h }",
        )
    });
    let mut run = sb
        .run_command(&wf, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run");
    until(
        &format!("`{step}` to record `{fact}`"),
        Duration::from_secs(60),
        || journal_fact(&sb, step, fact),
    );
    run.kill().expect("SIGKILL");
    let _ = run.wait();
    let resumed = wait(
        sb.command(&["resume", "--yes", "--time-scale", "600", "--ignore-window"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("resume"),
    );
    resumed.code(0);
    assert!(
        resumed.stderr.contains("resuming run"),
        "{}",
        resumed.stderr
    );
    assert_eq!(sb.cluster_version("demo"), "1.34");
    assert_eq!(
        sb.count(
            "kubernetes",
            "POST /apis/velero.io/v1/namespaces/velero/backups"
        ),
        1,
        "exactly one Backup"
    );
    assert_eq!(
        sb.count("eks", "UpdateClusterVersion"),
        1,
        "exactly one version update for the one hop"
    );
    sb
}

#[test]
fn killed_during_the_backup_wait_and_resumed() {
    // Slow items keep the backup running long enough to kill the run during its wait.
    let sb = kill_at_and_resume("backupPerItem: 60s", "backup", "backupUid");
    assert_eq!(sb.journal()["outcome"]["result"], "succeeded");
}

#[test]
fn killed_during_the_control_plane_wait_and_resumed() {
    let sb = kill_at_and_resume("controlPlaneUpdate: 50m", "control-plane", "updateId");
    let j = sb.journal();
    let cp = j["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["key"]["id"] == "control-plane"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        cp["attempts"], 2,
        "the step ran again and re-attached: {cp}"
    );
}

#[test]
fn sigterm_stops_the_run_with_130_and_resume_finishes_it() {
    let sb = External::start(&slow_scenario("controlPlaneUpdate: 50m"));
    let wf = workflow(sb.dir.path(), "in-place.yaml", |t| {
        t.replace(
            "upgradeControlPlane: { timeout: 60m }",
            "upgradeControlPlane: { timeout: 4h }",
        )
    });
    let run = sb
        .run_command(&wf, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    until(
        "the control-plane update to start",
        Duration::from_secs(60),
        || journal_fact(&sb, "control-plane", "updateId"),
    );
    let status = std::process::Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let stopped = wait(run);
    stopped.code(130);
    assert!(
        stopped.stderr.contains("eks-upgrade resume"),
        "{}",
        stopped.stderr
    );
    let journal = sb.journal();
    assert!(journal["interruptedAt"].is_string(), "{journal}");
    let run_id = journal["runId"].as_str().unwrap_or("").to_string();

    // `runs` lists it as unfinished; `resume RUN_ID` finishes it; `status` reports the outcome.
    let runs = wait(
        sb.command(&["runs"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs"),
    );
    runs.code(0);
    assert!(
        runs.stdout.contains(&run_id) && runs.stdout.contains("unfinished"),
        "{}",
        runs.stdout
    );
    wait(
        sb.command(&[
            "resume",
            &run_id,
            "--yes",
            "--time-scale",
            "600",
            "--ignore-window",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("resume"),
    )
    .code(0);
    assert_eq!(sb.count("eks", "UpdateClusterVersion"), 1);
    let status = wait(
        sb.command(&["status", &run_id, "--output", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("status"),
    );
    status.code(0);
    let report: serde_json::Value = serde_json::from_str(&status.stdout).expect("JSON status");
    assert_eq!(report["result"], "succeeded");
    assert_eq!(report["completedHops"], serde_json::json!(["1.34"]));
}

#[test]
fn a_journal_in_s3_survives_the_pod_and_the_next_one_resumes_from_it() {
    let sb = External::start(&slow_scenario("controlPlaneUpdate: 50m"));
    let wf = workflow(sb.dir.path(), "in-place.yaml", |t| {
        t.replace(
            "upgradeControlPlane: { timeout: 60m }",
            "upgradeControlPlane: { timeout: 4h }",
        )
    });
    let state = "s3://velero-backups/eks-upgrade/journals";
    let mut run = sb
        .run_command(&wf, &["--state", state])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run");
    until(
        "the journal to reach S3 with an update id",
        Duration::from_secs(60),
        || {
            sb.requests().iter().any(|r| {
                r["operation"].as_str().is_some_and(|o| {
                    o.starts_with("PUT /velero-backups/eks-upgrade/journals/runs/")
                })
            }) && sb.count("eks", "UpdateClusterVersion") == 1
        },
    );
    // Let the journal write that follows the update id land, then kill the "pod".
    std::thread::sleep(Duration::from_millis(300));
    run.kill().expect("SIGKILL");
    let _ = run.wait();
    // The next "pod" has no local state at all.
    let resumed = wait(
        sb.command(&[
            "resume",
            "--yes",
            "--time-scale",
            "600",
            "--ignore-window",
            "--state",
            state,
        ])
        .env("EKS_UPGRADE_STATE_DIR", sb.dir.path().join("empty"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("resume"),
    );
    resumed.code(0);
    assert_eq!(sb.count("eks", "UpdateClusterVersion"), 1);
    assert_eq!(sb.cluster_version("demo"), "1.34");
    assert!(
        !sb.state_dir().join("runs").exists(),
        "nothing was written locally"
    );
}
