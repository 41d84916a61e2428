//! Recovery that EKS accepts, end to end, against a sandbox that refuses what EKS refuses: the
//! failed hop is reversed node groups first, then add-ons, then the control plane; a rollback
//! the readiness insights block is not forced; "restored" (exit 4) means healthy and supported.

use serde_json::Value;

use super::upgrade::{
    cluster_updates, example, nodegroup_versions, strings, upgrade, version_changes,
};
use super::{External, running_with_fact, workflow};
use crate::common::{POLL_TIMEOUT, poll, repo};

/// Index of the first EKS request of `operation` whose detail contains `needle`.
fn first(sb: &External, operation: &str, needle: &str) -> Option<usize> {
    sb.requests().iter().position(|r| {
        r["service"] == "eks"
            && r["operation"] == operation
            && r["detail"].as_str().is_some_and(|d| d.contains(needle))
            && r["status"].as_u64().is_some_and(|s| s < 300)
    })
}

/// A scenario of the repository with `faults:` appended (it must have none).
fn with_fault(name: &str, fault: &str) -> String {
    let text =
        std::fs::read_to_string(repo().join("examples/sandbox").join(name)).expect("scenario");
    assert!(!text.contains("\n  faults:"), "{name} already has faults");
    format!(
        "{}\n  faults:\n    breakAfter:\n      - {fault}\n",
        text.trim_end()
    )
}

fn unsupported(report: &Value) -> Vec<String> {
    strings(&report["clusterState"]["unsupported"])
}

#[test]
fn a_break_after_the_nodes_moved_reverses_nodes_and_add_ons_before_the_control_plane() {
    let sb = example("breaks-after-upgrade.yaml");
    let (out, report) = upgrade(&sb, "in-place.yaml", "demo", &[]);
    out.code(4);
    // Up, then back down in EKS's order: node group, add-on, control plane.
    assert_eq!(
        version_changes(&sb),
        [
            ("UpdateClusterVersion".to_string(), "1.34".to_string(), 200),
            ("UpdateNodegroupVersion".into(), "1.34".into(), 200),
            ("UpdateNodegroupVersion".into(), "1.33".into(), 200),
            ("UpdateClusterVersion".into(), "1.33".into(), 200),
        ]
    );
    let nodes_back = first(&sb, "UpdateNodegroupVersion", "version=1.33").expect("node group back");
    let proxy_back =
        first(&sb, "UpdateAddon", "addonVersion=v1.33.3").expect("kube-proxy back to 1.33");
    let cp_back = first(&sb, "UpdateClusterVersion", "version=1.33").expect("rollback");
    assert!(
        nodes_back < cp_back && proxy_back < cp_back,
        "{nodes_back} {proxy_back} {cp_back}"
    );
    // Every component at 1.33, and nothing unsupported.
    assert_eq!(report["clusterState"]["controlPlane"], "1.33");
    assert_eq!(
        nodegroup_versions(&sb, "demo"),
        [("general".to_string(), "1.33".to_string())]
    );
    assert!(unsupported(&report).is_empty(), "{report}");
    assert!(
        report["clusterState"]["kubeProxy"]
            .as_str()
            .is_some_and(|v| v.starts_with("v1.33")),
        "{report}"
    );
    // The assessment: what recovery did, in order, with update ids; nothing but add-ons that
    // run on 1.33 stays at its new version.
    let recovery = strings(&report["recovery"]);
    let order: Vec<&str> = recovery
        .iter()
        .filter_map(|r| r.split('`').nth(1))
        .collect();
    assert_eq!(
        order,
        [
            "restore",
            "rollback-nodes",
            "rollback-addons",
            "rollback",
            "health-after-restore"
        ]
    );
    assert!(
        recovery[1].contains("general → 1.33 (update "),
        "{recovery:?}"
    );
    assert!(
        recovery[2].contains("kube-proxy v1.34.3-eksbuild.2 → v1.33.3-eksbuild.2 (update "),
        "{recovery:?}"
    );
    for line in strings(&report["notRolledBack"]) {
        assert!(line.starts_with("add-on `"), "{line}");
        assert!(!line.contains("kube-proxy"), "{line}");
    }
    assert!(
        strings(&report["healthProblems"])
            .iter()
            .any(|p| p.contains("Deployment shop/web")),
        "{report}"
    );
}

#[test]
fn a_break_before_the_nodes_needs_only_the_control_plane_rollback() {
    let sb = example("breaks-before-nodes.yaml");
    let (out, report) = upgrade(&sb, "in-place.yaml", "demo", &[]);
    out.code(4);
    assert_eq!(
        sb.count("eks", "UpdateNodegroupVersion"),
        0,
        "no node group moved"
    );
    assert_eq!(
        cluster_updates(&sb),
        [("1.34".to_string(), 200), ("1.33".to_string(), 200)]
    );
    // The rollback-safe add-on step moved only versions that run on 1.33 too.
    assert_eq!(
        first(&sb, "UpdateAddon", "kube-proxy"),
        None,
        "kube-proxy never moved"
    );
    assert!(unsupported(&report).is_empty(), "{report}");
    assert!(
        strings(&report["notRolledBack"])
            .iter()
            .all(|l| l.starts_with("add-on `"))
    );
}

#[test]
fn a_rollback_readiness_error_the_tool_cannot_fix_is_not_forced() {
    let sb = example("rollback-api-usage.yaml");
    let (out, report) = upgrade(&sb, "in-place.yaml", "demo", &[]);
    out.code(5);
    // One upgrade, and no rollback request at all: the insights said EKS would refuse.
    assert_eq!(cluster_updates(&sb), [("1.34".to_string(), 200)]);
    let readiness = strings(&report["rollbackReadiness"]);
    assert!(
        readiness
            .iter()
            .any(|r| r.starts_with("ERROR") && r.contains("API usage")),
        "{readiness:?}"
    );
    assert!(
        report["message"]
            .as_str()
            .is_some_and(|m| m.contains("API usage")),
        "{report}"
    );
    assert!(
        strings(&report["notRolledBack"])
            .iter()
            .any(|l| l.starts_with("control plane stays at 1.34")),
        "{report}"
    );
}

#[test]
fn an_auto_mode_cluster_rolls_back_in_one_call_nodes_first() {
    let sb = External::start(&with_fault(
        "auto-mode.yaml",
        r#"{ version: "1.34", workload: shop/api }"#,
    ));
    let (out, report) = upgrade(&sb, "in-place.yaml", "auto", &[]);
    out.code(4);
    assert_eq!(
        cluster_updates(&sb),
        [("1.34".to_string(), 200), ("1.33".to_string(), 200)],
        "one upgrade, one rollback call"
    );
    assert_eq!(sb.count("eks", "UpdateNodegroupVersion"), 0);
    let kubelets = report["clusterState"]["kubelets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        !kubelets.is_empty()
            && kubelets
                .iter()
                .all(|k| k["manager"] == "Auto Mode" && k["version"] == "1.33"),
        "{kubelets:?}"
    );
    assert!(unsupported(&report).is_empty(), "{report}");
}

#[test]
fn fargate_pods_block_the_rollback_unless_the_workflow_opts_in() {
    // The Fargate workload breaks at 1.34: its pods start again on Fargate nodes at 1.34, and
    // after the restore repairs it they run there still.
    let scenario = with_fault(
        "fargate.yaml",
        r#"{ version: "1.34", workload: jobs/worker }"#,
    );
    // Without the opt-in: reported, not forced, exit 5.
    let sb = External::start(&scenario);
    let (out, report) = upgrade(&sb, "in-place.yaml", "demo", &[]);
    let out = out.code(5);
    assert_eq!(cluster_updates(&sb), [("1.34".to_string(), 200)]);
    let readiness = strings(&report["rollbackReadiness"]);
    assert!(
        readiness.iter().any(|r| r.contains("/pods/worker")),
        "{readiness:?}"
    );
    assert!(
        out.stderr.contains("fargatePods: restart"),
        "the run says how to opt in:\n{}",
        out.stderr
    );

    // With `fargatePods: restart`: rolled back with force, the pods started again at 1.33.
    let sb = External::start(&scenario);
    let wf = workflow(sb.dir.path(), "in-place.yaml", |t| {
        t.replace(
            "rollbackControlPlane: {}",
            "rollbackControlPlane: { fargatePods: restart }",
        )
    });
    let report_path = sb.dir.path().join("report.json");
    sb.run_workflow(&wf, &["--report", report_path.to_str().unwrap_or("")])
        .run()
        .code(4);
    assert_eq!(
        first(&sb, "UpdateClusterVersion", "version=1.33 force=true").map(|_| ()),
        Some(()),
        "the rollback was forced"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).expect("report"))
            .expect("JSON");
    assert!(unsupported(&report).is_empty(), "{report}");
}

#[test]
fn a_backup_held_in_the_queue_is_waited_for_with_its_position() {
    // At the scenario's own speed: each backup stays queued for two real seconds.
    let sb = External::from_example("backup-queued.yaml");
    let (out, _) = upgrade(&sb, "in-place.yaml", "demo", &[]);
    let out = out.code(0);
    assert!(
        out.stderr.contains("Queued (position"),
        "the queue position is shown:\n{}",
        out.stderr
    );
}

#[test]
fn killed_during_the_node_group_rollback_and_resumed_sends_one_rollback_per_group() {
    let text = std::fs::read_to_string(repo().join("examples/sandbox/breaks-after-upgrade.yaml"))
        .expect("scenario");
    // Slow node replacement: the kill must land while the group is going back.
    let sb = External::start(&text.replace(
        "  speed: 600\n",
        "  speed: 600\n  timings: { nodegroupUpdatePerNode: 20m }\n",
    ));
    let wf = workflow(sb.dir.path(), "in-place.yaml", |t| {
        t.replace(
            "upgradeNodegroups: { maxParallel: 1 }",
            "upgradeNodegroups: { maxParallel: 1, timeout: 8h }",
        )
        .replace(
            "rollbackNodegroups: { maxParallel: 1 }",
            "rollbackNodegroups: { maxParallel: 1, timeout: 8h }",
        )
    });
    let mut run = sb.run_workflow(&wf, &[]).spawn();
    poll(
        "`rollback-nodes` to record its update of `general`",
        POLL_TIMEOUT,
        || {
            run.check(
                sb.journal_so_far()
                    .is_some_and(|j| running_with_fact(&j, "rollback-nodes", "update:general")),
            )
        },
    );
    run.kill();
    sb.eks_upgrade(&["resume", "--yes", "--time-scale", "600", "--ignore-window"])
        .run()
        .code(4);
    let back: Vec<_> = version_changes(&sb)
        .into_iter()
        .filter(|(op, v, _)| op == "UpdateNodegroupVersion" && v == "1.33")
        .collect();
    assert_eq!(back.len(), 1, "one rollback of `general`: {back:?}");
    assert_eq!(sb.cluster_version("demo"), "1.33");
}

/// The in-place workflow with a soak far longer than its window: a window open now, for three
/// more hours, every day.
fn soak_past_the_window(sb: &External) -> std::path::PathBuf {
    let now = chrono::Utc::now();
    let start = (now - chrono::Duration::hours(1))
        .format("%H:%M")
        .to_string();
    let end = (now + chrono::Duration::hours(3))
        .format("%H:%M")
        .to_string();
    workflow(sb.dir.path(), "in-place.yaml", |t| {
        let t = t.replace("soak: { duration: 15m }", "soak: { duration: 9600h }");
        let line = t
            .lines()
            .find(|l| l.trim_start().starts_with("window:"))
            .expect("the workflow has a window")
            .to_string();
        t.replace(
            &line,
            &format!(
                "  window: {{ days: [Mon, Tue, Wed, Thu, Fri, Sat, Sun], start: \"{start}\", end: \"{end}\", timezone: UTC }}"
            ),
        )
    })
}

#[test]
fn a_soak_longer_than_the_window_pauses_the_run_and_a_resume_keeps_soaking() {
    let sb = External::from_example("healthy.yaml");
    let wf = soak_past_the_window(&sb);
    // Unattended and inside the window: the hop starts, and the soak pauses the run.
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
        out.stderr.contains("`soak` paused the run"),
        "{}",
        out.stderr
    );
    let journal = sb.journal();
    assert_ne!(journal["state"]["state"], "done", "resumable: {journal}");
    assert!(running_with_fact(&journal, "soak", "soakStartedAt"));
    assert_eq!(sb.count("eks", "UpdateClusterVersion"), 1);
    assert_eq!(
        sb.count("eks", "UpdateNodegroupVersion"),
        0,
        "the nodes wait for the soak"
    );
    // The next run in the window finds the soak still going: it pauses again, repeating nothing.
    let again = sb
        .eks_upgrade(&["resume", "--yes", "--time-scale", "600"])
        .run()
        .code(3);
    assert!(again.stderr.contains("the soak has"), "{}", again.stderr);
    assert_eq!(sb.count("eks", "UpdateClusterVersion"), 1);
    assert_eq!(sb.count("eks", "UpdateNodegroupVersion"), 0);
}
