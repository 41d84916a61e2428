//! The health baseline counts nodes per manager: the health check's summary names each
//! manager's Ready nodes, and a manager that lost Ready nodes since the baseline fails the check
//! as `capacity MANAGER`, whatever the nodes were called.

use serde_json::Value;

use crate::common::{POLL_TIMEOUT, Timed, poll, repo};
use crate::e2e::{External, running_with_fact, workflow};

/// The healthy scenario with a control-plane update slow enough to act during it.
fn slow_control_plane() -> String {
    std::fs::read_to_string(repo().join("examples/sandbox/healthy.yaml"))
        .expect("healthy.yaml")
        .replace(
            "  speed: 600\n",
            "  speed: 600\n  timings: { controlPlaneUpdate: 50m }\n",
        )
}

/// The facts of the first step with `id` in the `upgrade` phase.
fn upgrade_step(journal: &Value, id: &str) -> Value {
    journal["steps"]
        .as_array()
        .and_then(|steps| {
            steps
                .iter()
                .find(|s| s["key"]["phase"] == "upgrade" && s["key"]["id"] == id)
        })
        .cloned()
        .unwrap_or_default()
}

#[test]
fn the_baseline_and_the_summary_count_nodes_per_manager() {
    let sb = External::from_example("healthy.yaml");
    let wf = workflow(sb.dir.path(), "in-place.yaml", |t| t);
    let out = sb.run(&wf, &[]).code(0);
    let journal = sb.journal();
    let managers = &journal["facts"]["baseline"]["managers"];
    assert_eq!(
        managers,
        &serde_json::json!([
            { "manager": "node group `general`", "nodes": 3, "ready": 3, "replacing": 0, "fixedSize": true },
            { "manager": "node group `system`", "nodes": 2, "ready": 2, "replacing": 0, "fixedSize": true },
        ]),
        "{journal}"
    );
    // Both groups were replaced node by node; the check after them finds the same counts under
    // new names.
    let health = upgrade_step(&journal, "health");
    assert_eq!(health["status"], "succeeded", "{health}");
    assert_eq!(health["facts"]["health"]["managers"], *managers, "{health}");
    assert!(
        out.stderr.contains(
            "healthy at 1.34: 5 nodes Ready (node group `general` 3, node group `system` 2), "
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn a_node_lost_after_the_baseline_fails_the_check_named_by_its_manager() {
    // A slow control-plane update leaves time to remove a node after the baseline is recorded
    // and before the first health check of the hop.
    let sb = External::start(&slow_control_plane());
    let wf = workflow(sb.dir.path(), "in-place.yaml", |t| {
        t.replace(
            "upgradeControlPlane: { timeout: 60m }",
            "upgradeControlPlane: { timeout: 4h }",
        )
    });
    let mut run = sb.run_workflow(&wf, &[]).spawn();
    poll(
        "the control-plane update to start after the baseline",
        POLL_TIMEOUT,
        || {
            run.check(
                sb.journal_so_far()
                    .is_some_and(|j| running_with_fact(&j, "control-plane", "updateId")),
            )
        },
    );
    let baseline = sb.journal()["facts"]["baseline"]["managers"].clone();
    assert_eq!(baseline[0]["manager"], "node group `general`", "{baseline}");
    assert_eq!(baseline[0]["ready"], 3, "{baseline}");

    let kubectl = |args: &[&str]| {
        let mut cmd = std::process::Command::new("kubectl");
        cmd.args(args).arg(format!(
            "--cache-dir={}",
            sb.dir.path().join("kubectl-cache").display()
        ));
        for (k, v) in &sb.env {
            cmd.env(k, v);
        }
        let out = cmd.output_timed().expect("kubectl must be installed");
        assert_eq!(out.code, Some(0), "kubectl {args:?}: {}", out.stderr);
        out.stdout
    };
    let names = kubectl(&[
        "get",
        "nodes",
        "-l",
        "eks.amazonaws.com/nodegroup=general",
        "-o",
        "name",
    ]);
    let node = names
        .lines()
        .next()
        .expect("a node of `general`")
        .to_string();
    kubectl(&["delete", &node]);

    // The recovery's own health check finds the node still missing: a person must look.
    run.wait().code(5);
    let journal = sb.journal();
    let check = upgrade_step(&journal, "health-before-nodes");
    let problems = check["facts"]["problems"].to_string();
    assert!(
        problems.contains(
            "capacity node group `general`: 1 fewer Ready node than before the upgrade (2 Ready, 0 replacing; 3 before)"
        ),
        "{problems}\n{check}"
    );
    assert!(
        !problems.contains("node group `system`"),
        "the untouched group is not blamed: {problems}"
    );
}
