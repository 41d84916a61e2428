//! Clusters whose nodes have several managers (`examples/sandbox/mixed.yaml`: a managed node
//! group, a self-installed Karpenter's NodePools, Fargate, a self-managed Auto Scaling group).
//! Each must be named for what it is: Karpenter's nodes move by drift, not by a person, and
//! calling them "self-managed" sends the operator to replace by hand what Karpenter replaces.

use serde_json::Value;

use super::upgrade::{example, step, upgrade};
use super::watch::{Event, Watch};
use super::{External, redact};
use crate::checks::{check, findings};
use crate::common::repo;

/// A scenario of `examples/sandbox/`.
fn example_text(name: &str) -> String {
    std::fs::read_to_string(repo().join("examples/sandbox").join(name)).expect("scenario")
}

/// The example `name` with `from` replaced by `to` (which must occur exactly once), started.
fn example_with(name: &str, from: &str, to: &str) -> External {
    let text = example_text(name);
    assert_eq!(text.matches(from).count(), 1, "`{from}` in {name}");
    External::start(&text.replacen(from, to, 1))
}

#[test]
fn preflight_names_karpenter_nodes_by_their_nodepool_with_a_karpenter_remedy() {
    // NodePool `default` runs 1.30 and the legacy group 1.30: both are too far behind 1.34.
    let sb = example_with(
        "mixed.yaml",
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
    let sb = example_with(
        "mixed.yaml",
        "{ name: legacy, nodes: 1, version: \"1.31\" }",
        "{ name: legacy, nodes: 1, version: \"1.30\" }",
    );
    let (code, report, stderr) = check(&sb, "workflows/in-place.yaml", "1.34");
    assert_eq!(code, Some(3), "{stderr}");
    let skew = findings(&report, "EKS007");
    assert_eq!(skew.len(), 1, "{skew:?}");
    assert_eq!(skew[0]["object"], "self-managed nodes in `legacy`");
}

/// Runs workflow `wf` unattended with a JSON report; the outcome and the report.
fn run_with_report(sb: &External, wf: &std::path::Path) -> (crate::common::Output, Value) {
    let report_path = sb.dir.path().join("report.json");
    let out = sb
        .run_workflow(wf, &["--report", report_path.to_str().unwrap_or("")])
        .run();
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(&report_path)
            .unwrap_or_else(|e| panic!("no report ({e}): {}", out.stderr)),
    )
    .expect("JSON");
    (out, report)
}

/// The summary of `upgrade[HOP].nodes`.
fn nodes_summary(report: &Value, hop: &str) -> String {
    step(report, "upgrade", Some(hop), "nodes")["summary"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn an_upgrade_of_a_mixed_cluster_waits_for_karpenter_and_says_what_it_left() {
    let sb = example("mixed.yaml");
    // The plan says, hop by hop, who moves each kind of node.
    let plan = sb
        .eks_upgrade(&["plan", "workflows/in-place.yaml", "--cluster", "demo"])
        .run()
        .code(0);
    insta::assert_snapshot!("plan_mixed", redact(&plan.stdout));

    let markdown = sb.dir.path().join("report.md");
    let (out, report) = upgrade(
        &sb,
        "in-place.yaml",
        "demo",
        &["--report", markdown.to_str().unwrap_or("")],
    );
    let out = out.code(0);
    // The report says what happened to each: its step rows and the cluster at the end.
    let markdown = std::fs::read_to_string(&markdown).expect("Markdown report");
    let rows: Vec<String> = markdown
        .lines()
        .filter_map(|l| {
            // The node steps' rows, without their times; every line of the cluster's state.
            let cells: Vec<&str> = l.split(" | ").collect();
            if l.starts_with("| `upgrade.node") && cells.len() == 5 {
                Some(format!(
                    "{} | {} | {} | {}",
                    cells[0], cells[1], cells[2], cells[4]
                ))
            } else {
                (l.starts_with("- ") && !l.contains("eks-upgrade-")).then(|| l.to_string())
            }
        })
        .collect();
    insta::assert_snapshot!("report_mixed", redact(&rows.join("\n")));
    // Karpenter drifted NodePool `default` to 1.34 and the step waited for it; `gpu` runs fixed
    // AMI ids and stays, said but not waited for.
    let converged = step(&report, "upgrade", Some("1.34"), "node-pools")["summary"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_eq!(
        converged,
        "NodePool `default` (Karpenter): 3/3 at 1.34; NodePool `gpu` (Karpenter) stays at 0/1 at 1.34 (EC2NodeClass `gpu` selects AMI id `ami-0123456789abcdef0`)"
    );
    // The node-group step named the nodes it does not move by their managers: the legacy
    // group for a person, Karpenter's pools by name; none of them "self-managed" by mistake.
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
            .contains("Karpenter NodePool `gpu` has 1 node behind 1.34"),
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
    let text = example_text("mixed.yaml");
    let fargate = "  fargateProfiles:\n    - { name: batch, namespaces: [jobs] }\n";
    assert_eq!(text.matches(fargate).count(), 1);
    // The controller stopped: Karpenter's nodes stay at 1.33 whatever the timing.
    let stopped = "    namespace: kube-system\n";
    assert_eq!(text.matches(stopped).count(), 1);
    let scenario = format!(
        "{}\n  faults:\n    breakAfter:\n      - {{ version: \"1.34\", workload: shop/web }}\n",
        text.replacen(fargate, "", 1)
            .replacen(stopped, "    namespace: kube-system\n    replicas: 0\n", 1)
            .trim_end()
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

#[test]
fn a_karpenter_cluster_converges_within_its_budget() {
    let sb = example("karpenter.yaml");
    let watch = Watch::start(&sb, &["nodes", "pods"]);
    let (out, report) = upgrade(&sb, "in-place.yaml", "demo", &[]);
    let out = out.code(0);
    // The run saw every node at 1.34; the watch may print the last deletions a moment later.
    let events = watch.stop_when("the watch to print every old node's deletion", |events| {
        let h = replay(events, "default");
        h.drained.len() == 10 && h.now_at("v1.33") == 0
    });
    let pools = step(&report, "upgrade", Some("1.34"), "node-pools");
    assert_eq!(pools["status"], "succeeded", "{pools:#}");
    assert_eq!(
        pools["summary"], "NodePool `default` (Karpenter): 10/10 at 1.34",
        "{pools:#}"
    );
    // Progress was reported on the way, from the first look to the last.
    assert!(
        out.stderr
            .contains("NodePool `default` (Karpenter): 10/10 at 1.34"),
        "{}",
        out.stderr
    );

    // Replayed in the order the API server applied them: never more nodes tainted for
    // disruption than the budget's 2, and no old node drained (a pod evicted from it, or the
    // node deleted) before as many replacements were Ready as old nodes had been drained.
    let history = replay(&events, "default");
    assert_eq!(
        history.max_tainted, 2,
        "the budget of 2 was used: {history:?}"
    );
    assert!(
        history.violations.is_empty(),
        "{:#?}\n{}",
        history.violations,
        events
            .iter()
            .map(|e| format!(
                "{} {} {} {} {} {}",
                e.version,
                e.kind,
                e.object["kind"],
                e.name(),
                e.object["spec"]["nodeName"],
                e.object["spec"]["taints"]
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(history.drained.len(), 10, "{history:?}");
    assert_eq!(history.now_at("v1.34"), 10, "{history:?}");
    assert_eq!(history.now_at("v1.33"), 0, "{history:?}");
}

/// What a NodePool's nodes went through, replayed from watch events.
#[derive(Debug, Default)]
struct History {
    /// Nodes of the pool that exist, with their kubelet version.
    nodes: std::collections::BTreeMap<String, String>,
    /// Nodes of the pool at the start: the ones to be replaced.
    old: std::collections::BTreeSet<String>,
    tainted: std::collections::BTreeSet<String>,
    max_tainted: usize,
    /// New nodes that have been Ready.
    ready_new: std::collections::BTreeSet<String>,
    /// Old nodes a pod was evicted from, or that were deleted.
    drained: std::collections::BTreeSet<String>,
    violations: Vec<String>,
}

impl History {
    fn now_at(&self, kubelet: &str) -> usize {
        self.nodes
            .values()
            .filter(|v| v.starts_with(kubelet))
            .count()
    }
}

/// A pod a drain evicts: not a DaemonSet's (those go with their node), and not in
/// `kube-system`, whose add-ons roll out (their pods deleted and replaced) during the run.
fn evicted(e: &Event) -> bool {
    let daemon = e.object["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|o| o.iter().any(|r| r["kind"] == "DaemonSet"));
    !daemon && e.object["metadata"]["namespace"] != "kube-system"
}

fn replay(events: &[Event], pool: &str) -> History {
    let mut h = History::default();
    let first_change = events
        .iter()
        .filter(|e| e.kind != "ADDED")
        .map(|e| e.version)
        .min()
        .unwrap_or(u64::MAX);
    for e in events {
        let node = e.object["kind"] == "Node";
        if node && e.label("karpenter.sh/nodepool") == Some(pool) {
            let name = e.name().to_string();
            let kubelet = e.object["status"]["nodeInfo"]["kubeletVersion"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let is_old = e.version < first_change || h.old.contains(&name);
            if is_old {
                h.old.insert(name.clone());
            }
            let tainted = e.object["spec"]["taints"]
                .as_array()
                .is_some_and(|ts| ts.iter().any(|t| t["key"] == "karpenter.sh/disrupted"));
            let ready = e.object["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
            if e.kind == "DELETED" {
                h.nodes.remove(&name);
                h.tainted.remove(&name);
                if is_old {
                    h.drained.insert(name.clone());
                }
            } else {
                h.nodes.insert(name.clone(), kubelet);
                if tainted {
                    h.tainted.insert(name.clone());
                } else {
                    h.tainted.remove(&name);
                }
                if !is_old && ready {
                    h.ready_new.insert(name.clone());
                }
            }
        } else if !node && e.kind == "DELETED" && evicted(e) {
            // Only a tainted node is drained; a pod deleted elsewhere was rolled out.
            let on = e.object["spec"]["nodeName"].as_str().unwrap_or("");
            if h.old.contains(on) && h.tainted.contains(on) {
                h.drained.insert(on.to_string());
            }
        }
        h.max_tainted = h.max_tainted.max(h.tainted.len());
        if h.tainted.len() > 2 {
            h.violations.push(format!(
                "at version {}: {} nodes tainted: {:?}",
                e.version,
                h.tainted.len(),
                h.tainted
            ));
        }
        if h.drained.len() > h.ready_new.len() {
            h.violations.push(format!(
                "at version {} ({} {}): {} old nodes drained, {} replacements Ready",
                e.version,
                e.kind,
                e.name(),
                h.drained.len(),
                h.ready_new.len()
            ));
        }
    }
    h
}

#[test]
fn a_pinned_alias_stops_the_run_before_any_change() {
    // v20250601 has an AMI for 1.33 but none for 1.34: after the hop Karpenter could launch
    // nothing, so pre-flight stops the run before the control plane moves.
    let sb = example_with(
        "karpenter.yaml",
        "{ name: default, alias: al2023@latest }",
        "{ name: default, alias: al2023@v20250601 }",
    );
    let (out, report) = upgrade(&sb, "in-place.yaml", "demo", &[]);
    let out = out.code(3);
    assert_eq!(report["failedStep"], "prepare.preflight", "{report:#}");
    assert!(
        out.stderr.contains("EKS015 EC2NodeClass default"),
        "{}",
        out.stderr
    );
    // The remedy comes with the finding.
    assert!(
        out.stderr
            .contains("hint: EKS015 EC2NodeClass default: use `alias: al2023@latest`"),
        "{}",
        out.stderr
    );
    // Nothing changed: no EKS write, no backup, and no Kubernetes write but the run's lock.
    assert_eq!(sb.count("eks", "UpdateClusterVersion"), 0);
    let writes: Vec<Value> = sb
        .writes_since(0)
        .into_iter()
        .filter(|w| !w["operation"].as_str().unwrap_or("").contains("/leases"))
        .collect();
    assert!(writes.is_empty(), "{writes:#?}");
    assert_eq!(sb.cluster_version("demo"), "1.33");
}

#[test]
fn a_zero_budget_times_out_naming_the_nodepool_and_recovery_runs() {
    let sb = example_with(
        "karpenter.yaml",
        "budgets: [ { nodes: \"2\" } ]",
        "budgets: [ { nodes: \"0\" } ]",
    );
    let wf = super::workflow(sb.dir.path(), "short.yaml", |text| {
        text.replacen(
            "convergeNodePools: { timeout: 90m }",
            "convergeNodePools: { timeout: 20m, interval: 1m }",
            1,
        )
    });
    let (out, report) = run_with_report(&sb, &wf);
    assert_eq!(
        report["failedStep"], "upgrade[1.34].node-pools",
        "{report:#}"
    );
    let failure = report["failure"].as_str().unwrap_or("");
    assert!(
        failure.contains(
            "1 NodePool did not reach 1.34 within 2s: NodePool `default` (Karpenter): 0/10 at 1.34, held by its disruption budget `budgets[0]` `nodes: \"0\"`"
        ) && failure.contains("hint: raise the NodePool's budget for `Drifted`"),
        "{failure}"
    );
    // Nothing moved, so recovery could restore and roll the control plane back.
    assert_eq!(
        step(&report, "onFailure", Some("1.34"), "restore")["status"],
        "succeeded"
    );
    assert_eq!(
        step(&report, "onFailure", Some("1.34"), "rollback")["status"],
        "succeeded"
    );
    assert_eq!(sb.cluster_version("demo"), "1.33");
    out.code(4);
}

#[test]
fn a_pdb_that_allows_no_eviction_is_named_when_the_nodepool_times_out() {
    // `web`'s budget keeps all 4 replicas: Karpenter may not drain a node that runs one. No
    // managed node group, whose update the same budget would fail first.
    let text = example_text("karpenter.yaml");
    let (group, pdb) = (
        "  nodegroups:\n    - { name: system, nodes: 2 }\n",
        "pdbMinAvailable: 3",
    );
    assert_eq!(
        (text.matches(group).count(), text.matches(pdb).count()),
        (1, 1)
    );
    let sb = External::start(
        &text
            .replacen(group, "", 1)
            .replacen(pdb, "pdbMinAvailable: 4", 1),
    );
    let wf = super::workflow(sb.dir.path(), "short.yaml", |text| {
        text.replacen(
            "convergeNodePools: { timeout: 90m }",
            "convergeNodePools: { timeout: 20m, interval: 1m }",
            1,
        )
    });
    let (out, report) = run_with_report(&sb, &wf);
    assert_eq!(
        report["failedStep"], "upgrade[1.34].node-pools",
        "{}",
        out.stderr
    );
    let failure = report["failure"].as_str().unwrap_or("");
    assert!(
        failure.contains("PodDisruptionBudget `shop/web`, which allows no eviction of `shop/web-")
            && failure.contains("hint: a PodDisruptionBudget that allows no eviction holds"),
        "{failure}"
    );
    // The nodes without `web` pods did drift to 1.34, so EKS refuses the control plane's
    // rollback and a person must take over.
    out.code(5);
}

#[test]
fn karpenter_nodes_that_reached_the_hop_block_the_rollback_and_the_report_says_why() {
    // `web` breaks once the node groups run 1.34; by then Karpenter has drifted its nodes too,
    // and EKS refuses a control-plane rollback while kubelets are newer than 1.33.
    let text = example_text("karpenter.yaml");
    let sb = External::start(&format!(
        "{}\n  faults:\n    breakAfter:\n      - {{ version: \"1.34\", workload: shop/web, after: nodegroups }}\n",
        text.trim_end()
    ));
    let (out, report) = upgrade(&sb, "in-place.yaml", "demo", &[]);
    let out = out.code(5);
    assert_eq!(report["failedStep"], "upgrade[1.34].health", "{report:#}");
    assert_eq!(sb.cluster_version("demo"), "1.34");
    assert!(
        out.stderr
            .contains("Karpenter NodePool `default` runs a kubelet newer than 1.33")
            && out
                .stderr
                .contains("point its EC2NodeClass at an AMI for 1.33"),
        "{}",
        out.stderr
    );
    let rollback = step(&report, "onFailure", Some("1.34"), "rollback");
    assert_eq!(rollback["status"], "failed", "{rollback:#}");
}

#[test]
fn an_auto_mode_cluster_waits_for_eks_to_replace_its_nodes() {
    let sb = example("auto-mode.yaml");
    let (out, report) = upgrade(&sb, "in-place.yaml", "auto", &[]);
    out.code(0);
    assert_eq!(
        step(&report, "upgrade", Some("1.34"), "node-pools")["summary"],
        "NodePool `general-purpose` (Auto Mode): 3/3 at 1.34; NodePool `system` (Auto Mode): 1/1 at 1.34"
    );
}
