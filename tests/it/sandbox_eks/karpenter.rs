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
    karpenter_with(replicas, "")
}

/// [`karpenter`] with `faults` (YAML flow mappings) under `spec.faults`.
fn karpenter_with(replicas: u32, faults: &str) -> String {
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
  faults: {{ {faults} }}
"#
    )
}

/// A pool's objects of one kind (`nodes`, or `nodeclaims` of `karpenter.sh`).
fn pool_objects(sb: &TestSandbox, group: &str, plural: &str, pool: &str) -> Vec<Value> {
    let store = &sb.sandbox.world.store;
    let rt = store.resource(group, "v1", plural).expect("type");
    let selector = Selector::labels(&format!("karpenter.sh/nodepool={pool}")).expect("selector");
    store.list(&rt, None, &selector).0
}

/// Kubelet minors of a pool's nodes.
fn pool_versions(sb: &TestSandbox, pool: &str) -> Vec<Option<Version>> {
    pool_objects(sb, "", "nodes", pool)
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

/// Nodes of a pool tainted for a replacement.
fn tainted(sb: &TestSandbox, pool: &str) -> usize {
    pool_objects(sb, "", "nodes", pool)
        .iter()
        .filter(|n| {
            n["spec"]["taints"]
                .as_array()
                .is_some_and(|ts| ts.iter().any(|t| t["key"] == "karpenter.sh/disrupted"))
        })
        .count()
}

/// A pool's NodeClaims.
fn claims(sb: &TestSandbox, pool: &str) -> Vec<Value> {
    pool_objects(sb, "karpenter.sh", "nodeclaims", pool)
}

fn condition<'a>(object: &'a Value, kind: &str) -> (&'a str, &'a str) {
    object["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .map(|c| {
            (
                c["status"].as_str().unwrap_or(""),
                c["reason"].as_str().unwrap_or(""),
            )
        })
        .unwrap_or_default()
}

#[test]
fn drift_replaces_nodes_no_faster_than_the_budget_and_leaves_what_cannot_move() {
    let sb = TestSandbox::start(Some(&karpenter(2)));
    let world = &sb.sandbox.world;
    let mut k = drift::Controller::default();
    // Settled at the start: nothing drifts before the control plane moves.
    assert_eq!(k.tick(world).expect("tick"), []);
    assert_eq!(tainted(&sb, "default"), 0);
    upgrade_to_1_34(&sb);

    // Budget "2". Round 1 taints two nodes and creates their replacements' claims; round 2
    // launches them; round 3 drains and deletes the two old nodes and starts on two more.
    // (tainted, nodes at 1.34, nodes in the pool, claims) after each round:
    let want = [
        (2, 0, 5, 7),
        (2, 2, 7, 7),
        (2, 2, 5, 7),
        (2, 4, 7, 7),
        (1, 4, 5, 6),
    ];
    let mut replaced = Vec::new();
    for (round, want) in (1..).zip(want) {
        replaced.extend(k.tick(world).expect("tick"));
        let got = (
            tainted(&sb, "default"),
            count_at(&sb, "default", 34),
            pool_versions(&sb, "default").len(),
            claims(&sb, "default").len(),
        );
        assert_eq!(got, want, "round {round}: {replaced:?}");
    }
    // Launched before drained: the launching claims wait, with nothing launched yet.
    let launching: Vec<Value> = claims(&sb, "default")
        .into_iter()
        .filter(|c| condition(c, "Launched").0 == "Unknown")
        .collect();
    assert_eq!(launching.len(), 1, "{launching:?}");
    for _ in 0..2 {
        replaced.extend(k.tick(world).expect("tick"));
    }
    assert_eq!(count_at(&sb, "default", 34), 5);
    assert_eq!(pool_versions(&sb, "default").len(), 5);
    assert_eq!(tainted(&sb, "default"), 0);
    assert_eq!(replaced.len(), 5, "{replaced:?}");
    assert_eq!(k.tick(world).expect("tick"), []);

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
    let mut k = drift::Controller::default();
    assert_eq!(k.tick(&sb.sandbox.world).expect("tick"), []);
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

#[test]
fn launch_failures_mark_the_pool_and_release_the_old_node() {
    let sb = TestSandbox::start(Some(&karpenter_with(
        2,
        "launchFailures: [ { nodePool: default, message: no capacity in us-east-1a, count: 2 } ]",
    )));
    let world = &sb.sandbox.world;
    let mut k = drift::Controller::default();
    upgrade_to_1_34(&sb);
    k.tick(world).expect("tick");
    // Both launches fail: the claims say why, the pool is unhealthy, no node moved.
    k.tick(world).expect("tick");
    let failed: Vec<Value> = claims(&sb, "default")
        .into_iter()
        .filter(|c| condition(c, "Launched") == ("False", "InsufficientCapacityError"))
        .collect();
    assert_eq!(failed.len(), 2, "{:?}", claims(&sb, "default"));
    let pool = object(&sb, "karpenter.sh", "nodepools", "default");
    assert_eq!(
        condition(&pool, "NodeRegistrationHealthy"),
        ("False", "InsufficientCapacityError"),
        "{pool}"
    );
    assert_eq!(count_at(&sb, "default", 34), 0);
    // Next round the failed claims go and the old nodes are tried again; the faults are used
    // up, so the pool converges.
    let mut replaced = Vec::new();
    for _ in 0..12 {
        replaced.extend(k.tick(world).expect("tick"));
    }
    assert_eq!(count_at(&sb, "default", 34), 5, "{replaced:?}");
    assert_eq!(claims(&sb, "default").len(), 5);
    let pool = object(&sb, "karpenter.sh", "nodepools", "default");
    assert_eq!(
        condition(&pool, "NodeRegistrationHealthy").0,
        "True",
        "{pool}"
    );
}

#[test]
fn launches_that_always_fail_leave_every_old_node_in_place() {
    let sb = TestSandbox::start(Some(&karpenter_with(
        2,
        "launchFailures: [ { nodePool: default, reason: LaunchFailed } ]",
    )));
    let world = &sb.sandbox.world;
    let mut k = drift::Controller::default();
    upgrade_to_1_34(&sb);
    for round in 1..=9 {
        assert_eq!(k.tick(world).expect("tick"), [], "round {round}");
        assert!(tainted(&sb, "default") <= 2, "round {round}");
        assert_eq!(pool_versions(&sb, "default").len(), 5, "round {round}");
    }
    assert_eq!(count_at(&sb, "default", 33), 5);
    let pool = object(&sb, "karpenter.sh", "nodepools", "default");
    assert_eq!(
        condition(&pool, "NodeRegistrationHealthy"),
        ("False", "LaunchFailed"),
        "{pool}"
    );
}
