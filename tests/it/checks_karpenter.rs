//! Pre-flight on clusters with a self-installed Karpenter, end to end: `eks-upgrade check`
//! against sandbox scenarios made to trigger each Karpenter code (EKS015-EKS017, K8S005,
//! K8S006), read through the real `kube` client from the sandbox's API server, and the EKS
//! version catalogue through `aws-sdk-eks`.

use serde_json::Value;

use crate::checks::check;
use crate::e2e::External;

const CODES: [&str; 5] = ["EKS015", "EKS016", "EKS017", "K8S005", "K8S006"];

/// A 1.33 cluster with one node group and Karpenter `version` (`replicas` controllers), the
/// given EC2NodeClasses and NodePools (YAML flow lines) and workloads.
fn scenario(
    version: &str,
    replicas: u32,
    classes: &[&str],
    pools: &[&str],
    workloads: &[&str],
) -> String {
    let list = |items: &[&str], indent: &str| {
        items
            .iter()
            .map(|i| format!("{indent}- {i}\n"))
            .collect::<String>()
    };
    format!(
        "apiVersion: eks-upgrade/v1\nkind: Scenario\nmetadata: {{ name: karpenter-checks }}\nspec:\n  cluster: {{ name: demo, region: us-east-1, version: \"1.33\" }}\n  nodegroups:\n    - {{ name: general, nodes: 1 }}\n  karpenter:\n    version: \"{version}\"\n    replicas: {replicas}\n    nodeClasses:\n{}    nodePools:\n{}  workloads:\n{}",
        list(classes, "      "),
        list(pools, "      "),
        list(workloads, "    "),
    )
}

const LATEST: &str = "{ name: default, alias: al2023@latest }";
const POOL: &str = "{ name: default, nodes: 3 }";
const WEB: &str =
    "{ kind: Deployment, namespace: shop, name: web, replicas: 2, pdbMinAvailable: 1 }";

/// `(code, severity, object, message)` of one finding.
type Row = (String, String, String, String);

/// The Karpenter findings of `check … --target 1.34`, with the exit code.
fn karpenter_findings(text: &str) -> (Option<i32>, Vec<Row>) {
    let sb = External::start(text);
    let (code, report, stderr) = check(&sb, "workflows/in-place.yaml", "1.34");
    let all = report["findings"].as_array().cloned().unwrap_or_default();
    let s = |f: &Value, k: &str| f[k].as_str().unwrap_or("").to_string();
    let found = all
        .iter()
        .filter(|f| CODES.contains(&f["code"].as_str().unwrap_or("")))
        .map(|f| {
            (
                s(f, "code"),
                s(f, "severity"),
                s(f, "object"),
                s(f, "message"),
            )
        })
        .collect();
    assert!(code.is_some(), "{stderr}");
    (code, found)
}

/// The findings without their messages, and whether each message contains its fragment.
fn expect(found: &[Row], want: &[(&str, &str, &str, &str)]) {
    let got: Vec<(&str, &str, &str)> = found
        .iter()
        .map(|(c, s, o, _)| (c.as_str(), s.as_str(), o.as_str()))
        .collect();
    let wanted: Vec<(&str, &str, &str)> = want.iter().map(|(c, s, o, _)| (*c, *s, *o)).collect();
    assert_eq!(got, wanted, "{found:#?}");
    for ((.., message), (.., fragment)) in found.iter().zip(want) {
        assert!(message.contains(fragment), "`{fragment}` not in: {message}");
    }
}

#[test]
fn a_karpenter_that_follows_the_control_plane_gets_no_karpenter_findings() {
    let (code, found) = karpenter_findings(&scenario("1.6.2", 2, &[LATEST], &[POOL], &[WEB]));
    expect(&found, &[]);
    assert_eq!(code, Some(0));
}

#[test]
fn an_alias_pinned_before_the_hop_s_release_is_an_error() {
    // v20250601 exists for 1.33 (released 2025-05-28) but not for 1.34 (2025-10-06).
    let (code, found) = karpenter_findings(&scenario(
        "1.6.2",
        2,
        &["{ name: default, alias: al2023@v20250601 }"],
        &[POOL],
        &[WEB],
    ));
    expect(
        &found,
        &[(
            "EKS015",
            "error",
            "EC2NodeClass default",
            "selects alias `al2023@v20250601`, a release older than Kubernetes 1.34 on EKS (2025-10-06): after the hop Karpenter finds no AMI for NodePool `default`, launches no node for it and replaces none of its 3 nodes",
        )],
    );
    assert_eq!(code, Some(3));
}

#[test]
fn an_alias_with_no_ami_now_is_also_a_class_that_cannot_launch() {
    // v20250101 predates 1.33 itself: the class resolves no AMI today.
    let (_, found) = karpenter_findings(&scenario(
        "1.6.2",
        2,
        &["{ name: default, alias: al2023@v20250101 }"],
        &[POOL],
        &[WEB],
    ));
    expect(
        &found,
        &[
            (
                "EKS015",
                "error",
                "EC2NodeClass default",
                "older than Kubernetes 1.34",
            ),
            (
                "EKS017",
                "warning",
                "EC2NodeClass default",
                "Karpenter cannot launch nodes of this class now: `AMIsReady` `False` (`AMINotFound`)",
            ),
        ],
    );
}

#[test]
fn fixed_ami_ids_leave_the_pool_behind_as_a_warning() {
    let (code, found) = karpenter_findings(&scenario(
        "1.6.2",
        2,
        &["{ name: default, amiIds: [ami-0123456789abcdef0] }"],
        &[POOL],
        &[WEB],
    ));
    expect(
        &found,
        &[(
            "EKS015",
            "warning",
            "EC2NodeClass default",
            "selects AMI id `ami-0123456789abcdef0`, which does not follow the control plane: NodePool `default` keeps its 3 nodes",
        )],
    );
    assert_eq!(code, Some(0));
}

#[test]
fn fixed_ami_ids_that_leave_kubelets_unsupported_are_an_error() {
    // 1.30 kubelets on fixed AMIs stay there; a 1.34 control plane does not support them.
    let (code, found) = karpenter_findings(&scenario(
        "1.6.2",
        2,
        &["{ name: default, amiIds: [ami-0123456789abcdef0] }"],
        &["{ name: default, nodes: 3, version: \"1.30\" }"],
        &[WEB],
    ));
    expect(
        &found,
        &[(
            "EKS015",
            "error",
            "EC2NodeClass default",
            "NodePool `default` keeps its nodes at 1.30, which a 1.34 control plane does not support",
        )],
    );
    assert_eq!(code, Some(3));
}

#[test]
fn a_karpenter_release_that_does_not_support_the_target_is_an_error() {
    let (code, found) = karpenter_findings(&scenario("1.4.0", 2, &[LATEST], &[POOL], &[WEB]));
    expect(
        &found,
        &[(
            "EKS016",
            "error",
            "Deployment kube-system/karpenter",
            "Karpenter 1.4.0 supports Kubernetes up to 1.32; this run goes to 1.34, and from 1.34 on",
        )],
    );
    assert_eq!(code, Some(3));
}

#[test]
fn a_stopped_controller_is_a_warning() {
    let (_, found) = karpenter_findings(&scenario("1.6.2", 0, &[LATEST], &[POOL], &[WEB]));
    expect(
        &found,
        &[(
            "EKS017",
            "warning",
            "Deployment kube-system/karpenter",
            "no available replica",
        )],
    );
}

#[test]
fn budgets_that_allow_no_drift_are_found_always_or_at_times() {
    let (_, found) = karpenter_findings(&scenario(
        "1.6.2",
        2,
        &[LATEST],
        &[
            "{ name: default, nodes: 3, budgets: [ { nodes: \"0\" } ] }",
            // Zero for eight hours from midnight UTC, every day: some of the next 24 hours.
            "{ name: nightly, nodes: 2, budgets: [ { nodes: \"50%\" }, { nodes: \"0\", schedule: \"0 0 * * *\", duration: 8h } ] }",
            // Zero only for `Underutilized`: drift is not limited.
            "{ name: steady, nodes: 2, budgets: [ { nodes: \"0\", reasons: [Underutilized] } ] }",
        ],
        &[WEB],
    ));
    expect(
        &found,
        &[
            (
                "K8S005",
                "warning",
                "NodePool default",
                "allows no drift for the next 24 hours (`budgets[0]` `nodes: \"0\"`): Karpenter replaces none of its 3 nodes",
            ),
            (
                "K8S005",
                "warning",
                "NodePool nightly",
                // The schedule's budget is named, not the 50% one that is in force outside it.
                "allows no drift for part of the next 24 hours, first from",
            ),
        ],
    );
    let nightly = &found[1].3;
    assert!(
        nightly.contains("(`budgets[1]` `nodes: \"0\"` (schedule `0 0 * * *`)): its 2 nodes wait"),
        "{nightly}"
    );
}

#[test]
fn do_not_disrupt_nodes_and_pods_are_warned_unless_a_grace_period_overrides_the_pods() {
    // No node group: every pod runs on a NodePool node.
    let without_group =
        |pool: &str| {
            scenario("1.6.2", 2, &[LATEST], &[pool], &[
            "{ kind: Deployment, namespace: shop, name: db, replicas: 2, doNotDisrupt: true }",
        ])
        .replace("  nodegroups:\n    - { name: general, nodes: 1 }\n", "")
        };
    let (_, found) = karpenter_findings(&without_group(
        "{ name: default, nodes: 2, doNotDisrupt: true }",
    ));
    expect(
        &found,
        &[("K8S006", "warning", "NodePool default", "2 nodes (")],
    );
    assert!(
        found[0].3.contains("and 2 running pods (`shop/db-"),
        "{found:?}"
    );

    let (_, found) = karpenter_findings(&without_group(
        "{ name: default, nodes: 2, terminationGracePeriod: 1h }",
    ));
    expect(&found, &[]);
}
