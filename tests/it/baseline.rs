//! The health baseline: what was already broken before the upgrade does not fail the
//! post-upgrade health check; what the upgrade breaks does, and the failure names it.

use crate::common::repo;
use crate::e2e::{External, workflow};

/// The healthy scenario with a Deployment that crash-loops from the start, and optionally one
/// that breaks when the control plane reaches 1.34.
fn scenario(break_api: bool) -> String {
    let text = std::fs::read_to_string(repo().join("examples/sandbox/healthy.yaml"))
        .expect("healthy.yaml");
    let mut text = text.replace(
        "  objects:\n",
        "    - { kind: Deployment, namespace: legacy, name: reports, replicas: 2, broken: true }\n  objects:\n",
    );
    if break_api {
        text.push_str(
            "  faults:\n    breakAfter:\n      - { version: \"1.34\", workload: shop/api }\n",
        );
    }
    text
}

#[test]
fn a_workload_broken_before_the_upgrade_does_not_fail_it() {
    let sb = External::start(&scenario(false));
    let wf = workflow(sb.dir.path(), "in-place.yaml", |t| t);
    let report = sb.dir.path().join("report.json");
    let out = sb
        .run(&wf, &["--report", report.to_str().unwrap_or("")])
        .code(0);
    assert_eq!(sb.cluster_version("demo"), "1.34");
    // The baseline saw it, so the check knew what it was ignoring.
    let journal = sb.journal();
    let baseline = journal["facts"]["baseline"]["problems"].to_string();
    assert!(
        baseline.contains("legacy") && baseline.contains("reports"),
        "{baseline}"
    );
    assert!(baseline.contains("crash-looping"), "{baseline}");
    assert!(
        out.stderr
            .contains("problems that predate the upgrade ignored"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_workload_the_upgrade_breaks_fails_it_and_is_named() {
    let sb = External::start(&scenario(true));
    let wf = workflow(sb.dir.path(), "in-place.yaml", |t| t);
    let out = sb.run(&wf, &[]);
    out.code(4);
    let journal = sb.journal();
    // The health step of the hop (not the one after the restore) recorded what broke.
    let problems = journal["steps"]
        .as_array()
        .and_then(|steps| {
            steps
                .iter()
                .find(|s| s["key"]["phase"] == "upgrade" && s["kind"] == "healthCheck")
        })
        .map(|s| s["facts"]["problems"].to_string())
        .unwrap_or_default();
    assert!(
        problems.contains("Deployment shop/api"),
        "{problems}\n{journal}"
    );
    assert!(
        problems.contains("pods of Deployment shop/api"),
        "{problems}"
    );
    assert!(
        !problems.contains("legacy/reports"),
        "the workload broken before the upgrade is not blamed on it: {problems}"
    );
}
