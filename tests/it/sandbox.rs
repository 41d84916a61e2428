//! The sandbox's own machinery: scenarios, seeding and the workload simulator.

use eks_upgrade_core::types::Version;
use eks_upgrade_sandbox::Scenario;
use eks_upgrade_sandbox::kube::selector::Selector;
use eks_upgrade_sandbox::sim::{nodes, workloads};
use serde_json::Value;

use crate::common::{POLL_TIMEOUT, TestSandbox, poll, repo};

fn list(sb: &TestSandbox, group: &str, plural: &str, ns: Option<&str>, labels: &str) -> Vec<Value> {
    let store = &sb.sandbox.world.store;
    let rt = store.resource(group, "v1", plural).expect("resource type");
    store
        .list(&rt, ns, &Selector::labels(labels).expect("selector"))
        .0
}

#[test]
fn every_shipped_scenario_parses_and_seeds() {
    let dir = repo().join("examples/sandbox");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("examples/sandbox") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let scenario = Scenario::parse(&path, &text).unwrap_or_else(|e| {
            panic!(
                "{}",
                eks_upgrade_core::workflow::render(&e, eks_upgrade_core::workflow::Style::Plain)
            )
        });
        let sb = TestSandbox::start(Some(&text));
        let nodes = list(&sb, "", "nodes", None, "");
        let expected: u32 = scenario
            .spec
            .nodegroups
            .iter()
            .map(|n| n.nodes)
            .sum::<u32>()
            + scenario
                .spec
                .self_managed_nodes
                .iter()
                .map(|n| n.nodes)
                .sum::<u32>()
            + scenario
                .spec
                .node_pools
                .iter()
                .map(|n| n.nodes)
                .sum::<u32>()
            + scenario
                .spec
                .karpenter
                .iter()
                .flat_map(|k| &k.node_pools)
                .map(|p| p.nodes)
                .sum::<u32>()
            // Fargate runs each pod of its namespaces on a node of its own.
            + scenario
                .spec
                .workloads
                .iter()
                .filter(|w| scenario.fargate_namespaces().contains(&w.namespace))
                .map(|w| w.replicas)
                .sum::<u32>();
        assert_eq!(nodes.len() as u32, expected, "{}", path.display());
        count += 1;
    }
    assert!(count >= 6, "expected the shipped scenarios, found {count}");
}

#[test]
fn the_default_cluster_is_healthy() {
    let sb = TestSandbox::start(None);
    let deployments = list(&sb, "apps", "deployments", None, "");
    assert!(
        deployments
            .iter()
            .any(|d| d["metadata"]["name"] == "coredns")
    );
    for d in &deployments {
        let replicas = d["spec"]["replicas"].as_u64().unwrap_or(0);
        assert_eq!(
            d["status"]["availableReplicas"].as_u64(),
            Some(replicas),
            "{}",
            d["metadata"]["name"]
        );
    }
    let pods = list(&sb, "", "pods", Some("shop"), "app.kubernetes.io/name=web");
    assert_eq!(pods.len(), 3);
    assert!(
        pods.iter()
            .all(|p| p["status"]["phase"] == "Running" && p["spec"]["nodeName"].is_string())
    );
    // One node-exporter pod per node.
    let exporters = list(&sb, "", "pods", Some("monitoring"), "");
    assert_eq!(exporters.len(), 5);
    // web: 3 replicas, minAvailable 2 → one disruption allowed.
    let pdb = list(&sb, "policy", "poddisruptionbudgets", Some("shop"), "")
        .into_iter()
        .find(|p| p["metadata"]["name"] == "web")
        .expect("web pdb");
    assert_eq!(pdb["status"]["disruptionsAllowed"], 1);
    let bsl = list(
        &sb,
        "velero.io",
        "backupstoragelocations",
        Some("velero"),
        "",
    );
    assert_eq!(bsl[0]["spec"]["objectStorage"]["bucket"], "velero-backups");
    assert_eq!(bsl[0]["spec"]["config"]["s3Url"], sb.sandbox.endpoints.s3);
    // kube-proxy runs the installed add-on version.
    let kp = list(
        &sb,
        "apps",
        "daemonsets",
        Some("kube-system"),
        "k8s-app=kube-proxy",
    );
    assert!(
        kp[0]["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or("")
            .ends_with(":v1.33.3-eksbuild.2")
    );
}

#[test]
fn a_workload_breaks_when_the_control_plane_reaches_the_scenario_version_and_is_repaired_by_its_spec()
 {
    let text = std::fs::read_to_string(repo().join("examples/sandbox/breaks-before-nodes.yaml"))
        .expect("scenario");
    let sb = TestSandbox::start(Some(&text));
    let world = sb.sandbox.world.clone();
    let available = |sb: &TestSandbox| {
        let d = list(
            sb,
            "apps",
            "deployments",
            Some("shop"),
            "app.kubernetes.io/name=web",
        );
        d[0]["status"]["availableReplicas"].as_u64()
    };
    assert_eq!(available(&sb), Some(3));
    world.set_control_plane_version(Version::new(1, 34));
    poll("web to break", POLL_TIMEOUT, || available(&sb) == Some(0));
    let pods = list(&sb, "", "pods", Some("shop"), "app.kubernetes.io/name=web");
    assert!(pods.iter().all(
        |p| p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    ));
    // Reverting the pod template (what a restore with `update` does) repairs it.
    workloads::set_broken(&world.store, "Deployment", "shop", "web", false).expect("repair");
    poll("web to recover", POLL_TIMEOUT, || available(&sb) == Some(3));
}

#[test]
fn a_workload_that_breaks_after_the_nodegroups_waits_for_them_not_the_control_plane() {
    let text = std::fs::read_to_string(repo().join("examples/sandbox/breaks-after-upgrade.yaml"))
        .expect("scenario");
    let sb = TestSandbox::start(Some(&text));
    let world = sb.sandbox.world.clone();
    let broken = |sb: &TestSandbox| {
        list(
            sb,
            "apps",
            "deployments",
            Some("shop"),
            "app.kubernetes.io/name=web",
        )[0]["spec"]["template"]["metadata"]["annotations"]
            .as_object()
            .is_some_and(|a| a.values().any(|v| v == "true"))
    };
    world.set_control_plane_version(Version::new(1, 34));
    // The control plane alone does not break it; a node group reaching 1.34 does.
    poll(
        "the simulator to see the control plane's version",
        POLL_TIMEOUT,
        || world.control_plane_version() == Version::new(1, 34),
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(!broken(&sb), "broke on the control plane's version");
    world.nodegroup_reached(Version::new(1, 34));
    poll("web to break", POLL_TIMEOUT, || broken(&sb));
}

#[test]
fn replacing_a_node_moves_its_pods_and_changes_the_kubelet_version() {
    let sb = TestSandbox::start(None);
    let store = &sb.sandbox.world.store;
    let old = nodes::nodegroup_nodes(store, "general");
    assert_eq!(old.len(), 3);
    let victim = old[0].clone();
    let fresh = nodes::replace(store, "us-east-1", &victim, Version::new(1, 34)).expect("replace");
    let rt = store.resource("", "v1", "nodes").expect("nodes");
    let node = store.get(&rt, None, &fresh).expect("new node");
    assert_eq!(nodes::node_version(&node), Some(Version::new(1, 34)));
    assert!(store.get(&rt, None, &victim).is_err());
    poll("pods to leave the old node", POLL_TIMEOUT, || {
        list(&sb, "", "pods", None, "")
            .iter()
            .all(|p| p["spec"]["nodeName"] != victim.as_str())
    });
    assert_eq!(nodes::nodegroup_nodes(store, "general").len(), 3);
}

#[test]
fn eviction_is_blocked_by_a_pdb_that_allows_no_disruption() {
    let text = std::fs::read_to_string(repo().join("examples/sandbox/pdb-blocks-drain.yaml"))
        .expect("scenario");
    let sb = TestSandbox::start(Some(&text));
    let store = &sb.sandbox.world.store;
    let blocked: Vec<String> = nodes::nodegroup_nodes(store, "general")
        .iter()
        .flat_map(|n| workloads::eviction_blocked(store, n))
        .collect();
    assert_eq!(blocked.len(), 2, "{blocked:?}");
    assert!(blocked.iter().all(|p| p.starts_with("shop/web-")));
}

#[test]
fn bad_scenarios_are_refused_with_reasons() {
    let base = std::fs::read_to_string(repo().join("examples/sandbox/pdb-blocks-drain.yaml"))
        .expect("scenario");
    let cases = [
        (base.replace("version: \"1.33\"", "version: \"1.20\""), "not in the version catalogue"),
        (base.replace("kind: Deployment", "kind: CronJob"), "use Deployment, StatefulSet or DaemonSet"),
        (base.replace("  workloads:", "  faults: { breakAfter: [ { version: \"1.34\", workload: shop/nope } ] }\n  workloads:"), "not a workload of the scenario"),
        (base.replace("nodes: 2", "nodez: 2"), "unknown field"),
    ];
    for (text, expected) in cases {
        let err = Scenario::parse(std::path::Path::new("bad.yaml"), &text).expect_err(expected);
        let rendered =
            eks_upgrade_core::workflow::render(&err, eks_upgrade_core::workflow::Style::Plain);
        assert!(
            rendered.contains(expected),
            "expected {expected:?} in:\n{rendered}"
        );
    }
}
