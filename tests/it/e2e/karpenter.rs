//! Clusters whose nodes have several managers (`examples/sandbox/mixed.yaml`: a managed node
//! group, a self-installed Karpenter's NodePools, Fargate, a self-managed Auto Scaling group).
//! Each must be named for what it is: Karpenter's nodes move by drift, not by a person, and
//! calling them "self-managed" sends the operator to replace by hand what Karpenter replaces.

use serde_json::Value;

use super::External;
use super::upgrade::{example, step, upgrade};
use crate::checks::{check, findings};
use crate::common::repo;

/// `mixed.yaml` with `from` replaced by `to` (exactly once).
fn mixed_with(from: &str, to: &str) -> External {
    let text =
        std::fs::read_to_string(repo().join("examples/sandbox/mixed.yaml")).expect("scenario");
    assert_eq!(text.matches(from).count(), 1, "`{from}` in mixed.yaml");
    External::start(&text.replacen(from, to, 1))
}

#[test]
fn preflight_names_karpenter_nodes_by_their_nodepool_with_a_karpenter_remedy() {
    // NodePool `default` runs 1.30 and the legacy group 1.30: both are too far behind 1.34.
    let sb = mixed_with(
        "{ name: default, nodeClass: default, nodes: 3,",
        "{ name: default, nodeClass: default, nodes: 3, version: \"1.30\",",
    );
    let (code, report, stderr) = check(&sb, "workflows/in-place.yaml", "1.34");
    assert_eq!(code, Some(3), "{stderr}");
    let skew = findings(&report, "EKS007");
    assert_eq!(skew.len(), 1, "{skew:?}");
    assert_eq!(skew[0]["object"], "NodePool default");
    let message = skew[0]["message"].as_str().unwrap_or("");
    assert!(message.contains("kubelet 1.30 on 3 nodes"), "{message}");
    let remedy = skew[0]["remedy"].as_str().unwrap_or("");
    assert!(
        remedy.contains("let Karpenter replace NodePool `default`'s nodes at 1.33")
            && remedy.contains("alias: al2023@latest"),
        "{remedy}"
    );

    // The same skew on the Auto Scaling group is a self-managed finding, named by its group.
    drop(sb);
    let sb = mixed_with(
        "{ name: legacy, nodes: 1, version: \"1.31\" }",
        "{ name: legacy, nodes: 1, version: \"1.30\" }",
    );
    let (code, report, stderr) = check(&sb, "workflows/in-place.yaml", "1.34");
    assert_eq!(code, Some(3), "{stderr}");
    let skew = findings(&report, "EKS007");
    assert_eq!(skew.len(), 1, "{skew:?}");
    assert_eq!(skew[0]["object"], "self-managed nodes in `legacy`");
}

/// The summary of `upgrade[HOP].nodes`.
fn nodes_summary(report: &Value, hop: &str) -> String {
    step(report, "upgrade", Some(hop), "nodes")["summary"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn an_upgrade_of_a_mixed_cluster_says_which_nodes_it_left_and_who_moves_them() {
    let sb = example("mixed.yaml");
    let (out, report) = upgrade(&sb, "in-place.yaml", "demo", &[]);
    let out = out.code(0);
    // The node group moved; 3 + 1 Karpenter nodes and the legacy node did not (no controller
    // runs in this scenario), and Fargate's pods were not restarted.
    let summary = nodes_summary(&report, "1.34");
    assert!(
        summary.contains("nodes outside managed node groups are still behind 1.34"),
        "{summary}"
    );
    let journal = sb.journal();
    let unmanaged = journal["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["key"]["id"] == "nodes"))
        .map(|x| x["facts"]["unmanaged"].clone())
        .unwrap_or_else(|| panic!("no `nodes` step in {journal:#}"));
    assert_eq!(
        unmanaged["karpenter"]["default"].as_array().map(Vec::len),
        Some(3),
        "{unmanaged}"
    );
    assert_eq!(
        unmanaged["karpenter"]["gpu"].as_array().map(Vec::len),
        Some(1),
        "{unmanaged}"
    );
    assert_eq!(
        unmanaged["selfManaged"]
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["legacy".to_string()]),
        "Karpenter nodes are not self-managed: {unmanaged}"
    );
    assert!(
        out.stderr
            .contains("Karpenter NodePool `default` has 3 nodes behind 1.34")
            && out.stderr.contains("no step of this workflow waits for it"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("self-managed nodes in `unknown`"),
        "{}",
        out.stderr
    );
}

#[test]
fn after_a_recovery_the_report_counts_karpenter_nodes_by_nodepool() {
    // Without Fargate, whose restarted pods would hold the rollback back (another test's
    // subject), and with a workload that breaks at 1.34.
    let text =
        std::fs::read_to_string(repo().join("examples/sandbox/mixed.yaml")).expect("scenario");
    let fargate = "  fargateProfiles:\n    - { name: batch, namespaces: [jobs] }\n";
    assert_eq!(text.matches(fargate).count(), 1);
    let scenario = format!(
        "{}\n  faults:\n    breakAfter:\n      - {{ version: \"1.34\", workload: shop/web }}\n",
        text.replacen(fargate, "", 1).trim_end()
    );
    let sb = External::start(&scenario);
    let (out, report) = upgrade(&sb, "in-place.yaml", "demo", &[]);
    out.code(4);
    let kubelets: Vec<(String, String, String, u64)> = report["clusterState"]["kubelets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|k| {
            (
                k["manager"].as_str().unwrap_or("").to_string(),
                k["pool"].as_str().unwrap_or("-").to_string(),
                k["version"].as_str().unwrap_or("").to_string(),
                k["nodes"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let row = |m: &str, p: &str, v: &str, n: u64| (m.to_string(), p.to_string(), v.to_string(), n);
    assert_eq!(
        kubelets,
        [
            row("Karpenter", "default", "1.33", 3),
            row("Karpenter", "gpu", "1.33", 1),
            row("node group `general`", "-", "1.33", 2),
            row("self-managed nodes in `legacy`", "-", "1.31", 1),
        ],
        "{report:#}"
    );
    assert_eq!(
        report["clusterState"]["unsupported"],
        serde_json::json!([]),
        "{report:#}"
    );
}
