//! Crashes: a run killed with SIGKILL at a wait, then `resume`, ends as an uninterrupted run
//! would, with no duplicate Backup, Restore or version update.

use super::runs::slow_scenario;
use super::{External, running_with_fact, workflow};
use crate::common::{POLL_TIMEOUT, poll};

fn journal_fact(sb: &External, step: &str, fact: &str) -> bool {
    sb.journal_so_far()
        .is_some_and(|j| running_with_fact(&j, step, fact))
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
    let mut run = sb.run_workflow(&wf, &[]).spawn();
    poll(
        &format!("`{step}` to record `{fact}`"),
        POLL_TIMEOUT,
        || run.check(journal_fact(&sb, step, fact)),
    );
    run.kill();
    let resumed = sb
        .eks_upgrade(&["resume", "--yes", "--time-scale", "600", "--ignore-window"])
        .run()
        .code(0);
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
    let mut run = sb.run_workflow(&wf, &[]).spawn();
    poll("the control-plane update to start", POLL_TIMEOUT, || {
        run.check(journal_fact(&sb, "control-plane", "updateId"))
    });
    run.signal("TERM");
    let stopped = run.wait().code(130);
    assert!(
        stopped.stderr.contains("eks-upgrade resume"),
        "{}",
        stopped.stderr
    );
    let journal = sb.journal();
    assert!(journal["interruptedAt"].is_string(), "{journal}");
    let run_id = journal["runId"].as_str().unwrap_or("").to_string();

    // `runs` lists it as unfinished; `resume RUN_ID` finishes it; `status` reports the outcome.
    let runs = sb.eks_upgrade(&["runs"]).run().code(0);
    assert!(
        runs.stdout.contains(&run_id) && runs.stdout.contains("unfinished"),
        "{}",
        runs.stdout
    );
    sb.eks_upgrade(&[
        "resume",
        &run_id,
        "--yes",
        "--time-scale",
        "600",
        "--ignore-window",
    ])
    .run()
    .code(0);
    assert_eq!(sb.count("eks", "UpdateClusterVersion"), 1);
    let status = sb
        .eks_upgrade(&["status", &run_id, "--output", "json"])
        .run()
        .code(0);
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
    // The journals' own bucket: in the Velero bucket they would make its location Unavailable.
    let s3 = sb.s3();
    s3.create_bucket("upgrade-state");
    let state = "s3://upgrade-state/eks-upgrade/journals";
    let mut run = sb.run_workflow(&wf, &["--state", state]).spawn();
    poll(
        "the journal to reach S3 with an update id",
        POLL_TIMEOUT,
        || {
            run.check(
                sb.requests().iter().any(|r| {
                    r["operation"].as_str().is_some_and(|o| {
                        o.starts_with("PUT /upgrade-state/eks-upgrade/journals/runs/")
                    })
                }) && sb.count("eks", "UpdateClusterVersion") == 1,
            )
        },
    );
    // The journal write that follows the update id must land before the "pod" is killed.
    poll(
        "the journal in S3 to record the update id",
        POLL_TIMEOUT,
        || {
            run.check(
                s3.journal("upgrade-state", "eks-upgrade/journals")
                    .is_some_and(|j| running_with_fact(&j, "control-plane", "updateId")),
            )
        },
    );
    run.kill();
    // The next "pod" has no local state at all.
    sb.eks_upgrade(&[
        "resume",
        "--yes",
        "--time-scale",
        "600",
        "--ignore-window",
        "--state",
        state,
    ])
    .env("EKS_UPGRADE_STATE_DIR", sb.dir.path().join("empty"))
    .run()
    .code(0);
    assert_eq!(sb.count("eks", "UpdateClusterVersion"), 1);
    assert_eq!(sb.cluster_version("demo"), "1.34");
    assert!(
        !sb.state_dir().join("runs").exists(),
        "nothing was written locally"
    );
}
