//! Fargate: each pod of a namespace a profile selects runs on a node of its own, at the
//! control plane's version when it started; it cannot be moved in place, so before a rollback
//! its kubelet skew is an error only `force` gets past, and after it the pods come back at the
//! older version once deleted.

use aws_sdk_eks::types::UpdateStatus;
use eks_upgrade_core::types::Version;
use eks_upgrade_sandbox::kube::selector::Selector;
use eks_upgrade_sandbox::sim::nodes;
use serde_json::Value;

use super::rollback::{insight, rollback_insights};
use super::{ADDONS_BACK, client, finished, upgraded};
use crate::common::TestSandbox;
use crate::common::{POLL_TIMEOUT, poll_async};

const JOBS: &str = r#"  fargateProfiles:
    - { name: batch, namespaces: [jobs] }
  workloads:
    - { kind: Deployment, namespace: jobs, name: worker, replicas: 2 }"#;

fn list(sb: &TestSandbox, plural: &str, ns: Option<&str>, labels: &str) -> Vec<Value> {
    let store = &sb.sandbox.world.store;
    let rt = store.resource("", "v1", plural).expect("type");
    store
        .list(&rt, ns, &Selector::labels(labels).expect("selector"))
        .0
}

/// `(pod, node, kubelet minor of the node)` for the `jobs` pods.
fn jobs(sb: &TestSandbox) -> Vec<(String, String, Option<Version>)> {
    let nodes = list(sb, "nodes", None, "");
    list(sb, "pods", Some("jobs"), "")
        .iter()
        .map(|p| {
            let node = p["spec"]["nodeName"].as_str().unwrap_or("").to_string();
            let version = nodes
                .iter()
                .find(|n| n["metadata"]["name"] == node.as_str())
                .and_then(nodes::node_version);
            (
                p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                node,
                version,
            )
        })
        .collect()
}

#[test]
fn fargate_pods_run_alone_on_nodes_of_the_control_planes_version() {
    let sb = TestSandbox::start(Some(&upgraded("", "1.33", ADDONS_BACK, JOBS)));
    let pods = list(&sb, "pods", Some("jobs"), "");
    assert_eq!(pods.len(), 2);
    for p in &pods {
        assert_eq!(p["spec"]["schedulerName"], "fargate-scheduler");
        assert_eq!(
            p["metadata"]["labels"]["eks.amazonaws.com/fargate-profile"],
            "batch"
        );
        assert_eq!(p["status"]["phase"], "Running");
    }
    let fargate = list(&sb, "nodes", None, "eks.amazonaws.com/compute-type=fargate");
    assert_eq!(fargate.len(), 2);
    for (pod, node, version) in jobs(&sb) {
        assert!(node.starts_with("fargate-ip-"), "{pod} on {node}");
        assert_eq!(version, Some(Version::new(1, 33)));
    }
    // DaemonSets (kube-proxy here) do not run on Fargate.
    for p in list(&sb, "pods", Some("kube-system"), "k8s-app=kube-proxy") {
        let node = p["spec"]["nodeName"].as_str().unwrap_or("");
        assert!(!node.starts_with("fargate-"), "{node}");
    }
}

#[test]
fn fargate_pods_block_a_rollback_and_come_back_older_once_deleted() {
    let sb = TestSandbox::start(Some(&upgraded(
        ", lastUpgradeAge: 1d",
        "1.32",
        ADDONS_BACK,
        JOBS,
    )));
    let before = jobs(&sb);
    sb.block_on(async {
        let c = client(&sb).await;
        let found = rollback_insights(&c).await;
        assert_eq!(found["Kubelet version skew"].0, "ERROR");
        let kubelet = insight(&c, "Kubelet version skew").await;
        let mut uris: Vec<&str> = kubelet
            .resources()
            .iter()
            .filter_map(|r| r.kubernetes_resource_uri())
            .collect();
        uris.sort();
        let mut expected: Vec<String> = before
            .iter()
            .map(|(pod, _, _)| format!("/api/v1/namespaces/jobs/pods/{pod}"))
            .collect();
        expected.sort();
        assert_eq!(uris, expected);

        // Only force gets past them: Fargate cannot be rolled back in place.
        let update = c
            .update_cluster_version()
            .name("demo")
            .version("1.32")
            .force(true)
            .send()
            .await
            .expect("forced rollback")
            .update
            .unwrap();
        let done = finished(&c, update.id().unwrap(), None, None).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Successful));
    });
    // They keep running at 1.33 until deleted, then start again at 1.32 on new nodes.
    assert_eq!(jobs(&sb), before);
    let store = sb.sandbox.world.store.clone();
    let rt = store.resource("", "v1", "pods").expect("pods");
    for (pod, _, _) in &before {
        store.delete(&rt, Some("jobs"), pod).expect("delete pod");
    }
    sb.block_on(async {
        poll_async("both jobs back on 1.32 nodes", POLL_TIMEOUT, async || {
            let now = jobs(&sb);
            now.len() == 2 && now.iter().all(|(_, _, v)| *v == Some(Version::new(1, 32)))
        })
        .await;
    });
    let after = jobs(&sb);
    assert_eq!(after.len(), 2);
    for (pod, node, version) in &after {
        assert_eq!(*version, Some(Version::new(1, 32)), "{pod} on {node}");
        assert!(!before.iter().any(|(_, old, _)| old == node), "{node}");
    }
    // The old Fargate nodes went with their pods.
    let fargate = list(&sb, "nodes", None, "eks.amazonaws.com/compute-type=fargate");
    assert_eq!(fargate.len(), 2);
}
