//! Whole runs, unattended: the outcomes of the failure policy and their exit codes.

use super::{External, redact, workflow};
use crate::common::{POLL_TIMEOUT, poll};

#[test]
fn a_healthy_upgrade_exits_0_and_the_cluster_is_at_the_target() {
    let sb = External::from_example("healthy.yaml");
    let wf = workflow(sb.dir.path(), "in-place.yaml", |t| t);
    let report = sb.dir.path().join("report.json");
    sb.run(&wf, &["--report", report.to_str().unwrap_or("")])
        .code(0);
    assert_eq!(sb.cluster_version("demo"), "1.34");
    assert_eq!(sb.count("eks", "UpdateClusterVersion"), 1);
    // Every node group and add-on moved too.
    let journal = sb.journal();
    assert_eq!(journal["outcome"]["result"], "succeeded");
    assert_eq!(journal["completedHops"], serde_json::json!(["1.34"]));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report"))
            .expect("JSON report");
    let state = &r["clusterState"];
    assert_eq!(state["controlPlane"], "1.34");
    assert!(
        state["nodegroups"]
            .as_array()
            .is_some_and(|n| n.iter().all(|g| g["version"] == "1.34"))
    );
    assert!(state["addons"].as_array().is_some_and(|a| {
        a.iter()
            .any(|x| x["name"] == "kube-proxy" && x["version"] == "v1.34.3-eksbuild.2")
    }));
}

#[test]
fn a_workload_that_breaks_is_restored_and_the_run_exits_4() {
    let sb = External::from_example("breaks-after-upgrade.yaml");
    let wf = workflow(sb.dir.path(), "in-place.yaml", |t| t);
    let md = sb.dir.path().join("report.md");
    let out = sb
        .run(&wf, &["--report", md.to_str().unwrap_or("")])
        .code(4);
    // Restored, and rolled back as EKS allows right after the upgrade.
    assert_eq!(
        sb.count(
            "kubernetes",
            "POST /apis/velero.io/v1/namespaces/velero/restores"
        ),
        1
    );
    assert_eq!(sb.cluster_version("demo"), "1.33");
    let report = std::fs::read_to_string(&md).expect("markdown report");
    assert!(report.contains("**restored** (exit code 4)"), "{report}");
    assert!(report.contains("Deployment shop/web"), "{report}");
    // The assessment: recovery in EKS's order, and nothing left outside the supported
    // configuration.
    let order: Vec<usize> = ["`rollback-nodes`", "`rollback-addons`", "`rollback`"]
        .iter()
        .map(|s| report.find(s).unwrap_or(usize::MAX))
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]) && order[2] != usize::MAX,
        "{report}"
    );
    assert!(report.contains("## Recovery, in order"), "{report}");
    assert!(!report.contains("**Error:**"), "{report}");
    insta::assert_snapshot!(
        "breaks_summary",
        redact(
            out.stderr
                .lines()
                .filter(|l| l.contains(" ERROR "))
                .collect::<Vec<_>>()
                .join("\n")
                .as_str()
        )
    );
}

#[test]
fn a_partially_failed_backup_stops_before_any_upgrade_with_exit_3() {
    let sb = External::from_example("backup-partially-failed.yaml");
    let wf = workflow(sb.dir.path(), "in-place.yaml", |t| t);
    let out = sb.run(&wf, &[]).code(3);
    assert!(
        out.stderr.contains("ended PartiallyFailed"),
        "{}",
        out.stderr
    );
    assert_eq!(
        sb.count("eks", "UpdateClusterVersion"),
        0,
        "no upgrade may start after a failed backup"
    );
    assert_eq!(
        sb.count(
            "kubernetes",
            "POST /apis/velero.io/v1/namespaces/velero/restores"
        ),
        0
    );
    assert_eq!(sb.cluster_version("demo"), "1.33");
}

#[test]
fn a_corrupted_backup_stops_before_any_upgrade_with_exit_3() {
    let sb = External::from_example("corrupted-backup.yaml");
    let wf = workflow(sb.dir.path(), "in-place.yaml", |t| t);
    let out = sb.run(&wf, &[]).code(3);
    assert!(
        out.stderr.contains("failed verification in S3"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(".tar.gz"),
        "the finding names the object: {}",
        out.stderr
    );
    assert_eq!(sb.count("eks", "UpdateClusterVersion"), 0);
}

#[test]
fn two_concurrent_runs_one_proceeds_one_exits_3_naming_the_holder() {
    let sb = External::start(&slow_scenario("controlPlaneUpdate: 20m"));
    let wf = workflow(sb.dir.path(), "in-place.yaml", |t| t);
    let mut first = sb.run_workflow(&wf, &[]).spawn();
    poll("the first run to take the lock", POLL_TIMEOUT, || {
        first.check(
            sb.count(
                "kubernetes",
                "POST /apis/coordination.k8s.io/v1/namespaces/velero/leases",
            ) == 1,
        )
    });
    let second = sb
        .run(
            &wf,
            &[
                "--state-dir",
                sb.dir.path().join("other-state").to_str().unwrap_or(""),
            ],
        )
        .code(3);
    assert!(
        second.stderr.contains("another run holds the cluster"),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains('@'),
        "the holder is named: {}",
        second.stderr
    );
    first.wait().code(0);
    assert_eq!(sb.count("eks", "UpdateClusterVersion"), 1);
}

#[test]
fn an_unattended_run_outside_its_window_exits_3_and_changes_nothing() {
    let sb = External::from_example("healthy.yaml");
    // A window that is closed now: one hour, starting an hour from now, today only.
    let now = chrono::Utc::now();
    let start = (now + chrono::Duration::hours(1))
        .format("%H:%M")
        .to_string();
    let end = (now + chrono::Duration::hours(2))
        .format("%H:%M")
        .to_string();
    let day = now.format("%a").to_string();
    let wf = workflow(sb.dir.path(), "windowed.yaml", |t| {
        t.replace(
            r#"window: { days: [Sat, Sun], start: "02:00", end: "06:00", timezone: UTC }"#,
            &format!(
                r#"window: {{ days: [{day}], start: "{start}", end: "{end}", timezone: UTC }}"#
            ),
        )
    });
    let out = sb
        .eks_upgrade(&[
            "run",
            wf.to_str().unwrap_or(""),
            "--cluster",
            "demo",
            "--yes",
            "--time-scale",
            "600",
        ])
        .run()
        .code(3);
    assert!(
        out.stderr.contains("outside the maintenance window"),
        "{}",
        out.stderr
    );
    assert_eq!(
        sb.count(
            "kubernetes",
            "POST /apis/velero.io/v1/namespaces/velero/backups"
        ),
        0,
        "not even a backup"
    );
}

#[test]
fn an_approval_without_a_terminal_and_without_yes_is_refused_before_anything_happens() {
    let sb = External::from_example("healthy.yaml");
    let wf = workflow(sb.dir.path(), "in-place.yaml", |t| t);
    let out = sb
        .eks_upgrade(&[
            "run",
            wf.to_str().unwrap_or(""),
            "--cluster",
            "demo",
            "--time-scale",
            "600",
        ])
        .run()
        .code(2);
    assert!(
        out.stderr
            .contains("approval step `approve` needs a person"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--yes"), "{}", out.stderr);
    assert!(
        sb.requests().iter().all(|r| r["service"] != "eks"),
        "nothing was even read from EKS"
    );
}

#[test]
fn every_json_log_line_parses_and_the_report_validates_against_its_schema() {
    let sb = External::from_example("breaks-after-upgrade.yaml");
    let wf = workflow(sb.dir.path(), "in-place.yaml", |t| t);
    let report = sb.dir.path().join("report.json");
    let out = sb
        .run(
            &wf,
            &[
                "--log-format",
                "json",
                "--report",
                report.to_str().unwrap_or(""),
            ],
        )
        .code(4);
    let mut events = Vec::new();
    for line in out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("Report written"))
    {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["ts"].is_string() && v["level"].is_string() && v["event"].is_string(),
            "{line}"
        );
        events.push(v["event"].as_str().unwrap_or("").to_string());
    }
    for e in ["runStarted", "stepStarted", "stepFinished", "runFinished"] {
        assert!(events.iter().any(|x| x == e), "no {e} event in {events:?}");
    }
    let schema = eks_upgrade_core::engine::report::schema();
    let validator = jsonschema::validator_for(&schema).expect("the report schema compiles");
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("JSON");
    let problems: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(value["result"], "restored");
    assert_eq!(value["exitCode"], 4);
}

#[test]
fn plan_shows_every_step_and_changes_nothing() {
    let sb = External::from_example("healthy.yaml");
    let before = sb.requests().len();
    let out = sb
        .eks_upgrade(&["plan", "workflows/in-place.yaml", "--cluster", "demo"])
        .run()
        .code(0);
    insta::assert_snapshot!("plan_in_place", redact(&out.stdout));
    let writes: Vec<_> = sb
        .requests()
        .into_iter()
        .skip(before)
        .filter(|r| {
            r["operation"].as_str().is_some_and(|o| {
                o.starts_with("POST")
                    || o.starts_with("PUT")
                    || o.starts_with("PATCH")
                    || o.starts_with("DELETE")
                    || o.starts_with("Update")
            })
        })
        .collect();
    assert!(writes.is_empty(), "plan wrote: {writes:?}");
    // Refused targets are usage errors with a hint.
    let down = sb
        .eks_upgrade(&[
            "plan",
            "workflows/in-place.yaml",
            "--cluster",
            "demo",
            "--target",
            "1.32",
        ])
        .run()
        .code(2);
    assert!(down.stderr.contains("downgrade"), "{}", down.stderr);
}

/// The default scenario with extra timings, for tests that need time to act mid-run.
pub fn slow_scenario(timing: &str) -> String {
    let text = std::fs::read_to_string(crate::common::repo().join("examples/sandbox/healthy.yaml"))
        .expect("healthy.yaml");
    text.replace(
        "  speed: 600\n",
        &format!("  speed: 600\n  timings: {{ {timing} }}\n"),
    )
}
