//! The self-installed Karpenter's controller in the sandbox: after a control-plane upgrade
//! (through `aws-sdk-eks`), each round resolves the EC2NodeClasses' AMIs for the new version,
//! marks drifted NodeClaims and replaces drifted nodes no faster than the NodePool's budget for
//! `Drifted` allows; fixed AMIs, a pinned alias without a release for the version, do-not-disrupt
//! nodes and a stopped controller move nothing.

use aws_sdk_eks::types::UpdateStatus;
use eks_upgrade_core::types::Version;
use eks_upgrade_sandbox::kube::selector::Selector;
use eks_upgrade_sandbox::sim::karpenter::drift;
use eks_upgrade_sandbox::sim::nodes;
use serde_json::Value;

use super::{client, upgrade};
use crate::common::TestSandbox;

/// A 1.33 cluster with Karpenter and four NodePools; `replicas` controllers. Rounds are 100
/// emulated hours apart, so that only the test's own `tick` calls replace nodes.
fn karpenter(replicas: u32) -> String {
    format!(
        r#"apiVersion: eks-upgrade/v1
kind: Scenario
metadata: {{ name: karpenter-drift }}
spec:
  speed: 600
  cluster: {{ name: demo, region: us-east-1, version: "1.33" }}
  karpenter:
    version: "1.6.2"
    replicas: {replicas}
    nodeClasses:
      - {{ name: default, alias: al2023@latest }}
      - {{ name: fixed, amiIds: [ami-0123456789abcdef0] }}
      - {{ name: pinned, alias: al2023@v20250601 }}
    nodePools:
      - {{ name: default, nodes: 5, budgets: [ {{ nodes: "2" }} ] }}
      - {{ name: fixed, nodeClass: fixed, nodes: 1 }}
      - {{ name: pinned, nodeClass: pinned, nodes: 1 }}
      - {{ name: held, nodes: 2, doNotDisrupt: true, budgets: [ {{ nodes: "100%" }} ] }}
  workloads:
    - {{ kind: Deployment, namespace: shop, name: web, replicas: 2 }}
  velero: {{ installed: false }}
  timings: {{ controlPlaneUpdate: 60s, nodegroupUpdatePerNode: 100h, statusLag: 6s }}
"#
    )
}

/// Kubelet minors of a pool's nodes.
fn pool_versions(sb: &TestSandbox, pool: &str) -> Vec<Option<Version>> {
    let store = &sb.sandbox.world.store;
    let rt = store.resource("", "v1", "nodes").expect("nodes");
    let selector = Selector::labels(&format!("karpenter.sh/nodepool={pool}")).expect("selector");
    store
        .list(&rt, None, &selector)
        .0
        .iter()
        .map(nodes::node_version)
        .collect()
}

fn count_at(sb: &TestSandbox, pool: &str, minor: u32) -> usize {
    pool_versions(sb, pool)
        .iter()
        .filter(|v| **v == Some(Version::new(1, minor)))
        .count()
}

fn object(sb: &TestSandbox, group: &str, plural: &str, name: &str) -> Value {
    let store = &sb.sandbox.world.store;
    let rt = store.resource(group, "v1", plural).expect("type");
    store.get(&rt, None, name).expect("object")
}

fn upgrade_to_1_34(sb: &TestSandbox) {
    sb.block_on(async {
        let c = client(sb).await;
        assert_eq!(
            upgrade(&c, "1.34").await.status(),
            Some(&UpdateStatus::Successful)
        );
    });
}

#[test]
fn drift_replaces_nodes_no_faster_than_the_budget_and_leaves_what_cannot_move() {
    let sb = TestSandbox::start(Some(&karpenter(2)));
    let world = &sb.sandbox.world;
    // Settled at the start: nothing drifts before the control plane moves.
    assert_eq!(drift::tick(world).expect("tick"), []);
    upgrade_to_1_34(&sb);

    // Budget "2": two of five per round, then two, then the last one.
    for (round, want) in [(1, 2), (2, 4), (3, 5)] {
        let replaced = drift::tick(world).expect("tick");
        let from_default = replaced.len();
        assert_eq!(
            count_at(&sb, "default", 34),
            want,
            "round {round}: {replaced:?}"
        );
        assert_eq!(pool_versions(&sb, "default").len(), 5, "round {round}");
        assert!(from_default <= 2, "round {round}: {replaced:?}");
    }
    assert_eq!(drift::tick(world).expect("tick"), []);

    // The class resolved an AMI for 1.34, and every claim of the pool runs it.
    let class = object(&sb, "karpenter.k8s.aws", "ec2nodeclasses", "default");
    let ami = class["status"]["amis"][0]["id"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        class["status"]["amis"][0]["name"]
            .as_str()
            .unwrap_or("")
            .contains("-1.34-"),
        "{class}"
    );
    let store = &world.store;
    let claims = store
        .resource("karpenter.sh", "v1", "nodeclaims")
        .expect("claims");
    let selector = Selector::labels("karpenter.sh/nodepool=default").expect("selector");
    let default_claims = store.list(&claims, None, &selector).0;
    assert_eq!(default_claims.len(), 5);
    assert!(
        default_claims
            .iter()
            .all(|c| c["status"]["imageID"] == ami.as_str()),
        "{default_claims:?}"
    );

    // Fixed AMIs never drift; the pinned alias has no 1.34 release, so its class resolves no
    // AMI and nothing is replaced; do-not-disrupt nodes stay, though marked drifted.
    assert_eq!(pool_versions(&sb, "fixed"), [Some(Version::new(1, 33))]);
    assert_eq!(pool_versions(&sb, "pinned"), [Some(Version::new(1, 33))]);
    let pinned = object(&sb, "karpenter.k8s.aws", "ec2nodeclasses", "pinned");
    let ready = pinned["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "AMIsReady"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("AMINotFound")),
        "{pinned}"
    );
    assert_eq!(count_at(&sb, "held", 33), 2);
    let held_claims = store
        .list(
            &claims,
            None,
            &Selector::labels("karpenter.sh/nodepool=held").expect("selector"),
        )
        .0;
    assert!(
        held_claims
            .iter()
            .all(|c| c["status"]["conditions"].as_array().is_some_and(|cs| cs
                .iter()
                .any(|x| x["type"] == "Drifted" && x["reason"] == "AMIDrift"))),
        "{held_claims:?}"
    );
}

#[test]
fn a_stopped_controller_drifts_nothing() {
    let sb = TestSandbox::start(Some(&karpenter(0)));
    upgrade_to_1_34(&sb);
    assert_eq!(drift::tick(&sb.sandbox.world).expect("tick"), []);
    assert_eq!(count_at(&sb, "default", 33), 5);
    // Nor does it refresh the classes' status: they still show the 1.33 AMI.
    let class = object(&sb, "karpenter.k8s.aws", "ec2nodeclasses", "default");
    assert!(
        class["status"]["amis"][0]["name"]
            .as_str()
            .unwrap_or("")
            .contains("-1.33-"),
        "{class}"
    );
}
