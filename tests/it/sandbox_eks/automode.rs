//! EKS Auto Mode: DescribeCluster's `computeConfig`, nodes EKS drifts to the new version after
//! an upgrade, and a rollback that moves the nodes back first (cluster ACTIVE) and only then the
//! control plane (cluster UPDATING), within one `VersionRollback` update that disruption
//! controls hold back until `rollbackConfig.timeoutMinutes`, and that CancelUpdate stops while
//! (and only while) the nodes are moving.

use aws_sdk_eks::Client;
use aws_sdk_eks::types::{CancellationStatus, RollbackConfig, UpdateStatus, UpdateType};
use eks_upgrade_core::types::Version;
use eks_upgrade_sandbox::kube::selector::Selector;
use eks_upgrade_sandbox::sim::nodes;

use super::rollback::rollback_insights;
use super::{TIMINGS, client, cluster_version, finished, service_error, upgrade};
use crate::common::TestSandbox;
use crate::common::{POLL_TIMEOUT, poll_async};

/// An Auto Mode cluster at 1.33 (upgraded from 1.32 when `cluster` says so) with the NodePool
/// `general-purpose` (`pool` is appended to its flow mapping); `timings` replaces the fast
/// defaults, `extra` is appended to `spec`.
fn auto(cluster: &str, pool: &str, timings: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: eks-upgrade/v1
kind: Scenario
metadata: {{ name: auto-mode-test }}
spec:
  speed: 600
  cluster: {{ name: demo, region: us-west-2, version: "1.33", computeConfig: {{ enabled: true }}{cluster} }}
  nodePools:
    - {{ name: general-purpose, nodes: 2{pool} }}
  workloads:
    - {{ kind: Deployment, namespace: shop, name: web, replicas: 2 }}
  velero: {{ installed: false }}
  {timings}
{extra}
"#
    )
}

/// Kubelet minors of the Auto Mode nodes, by node name.
fn auto_nodes(sb: &TestSandbox) -> Vec<(String, Option<Version>)> {
    let store = &sb.sandbox.world.store;
    let rt = store.resource("", "v1", "nodes").expect("nodes");
    store
        .list(
            &rt,
            None,
            &Selector::labels("eks.amazonaws.com/compute-type=auto").expect("selector"),
        )
        .0
        .iter()
        .map(|n| {
            (
                n["metadata"]["name"].as_str().unwrap_or("").to_string(),
                nodes::node_version(n),
            )
        })
        .collect()
}

fn all_at(sb: &TestSandbox, minor: u32) -> bool {
    let nodes = auto_nodes(sb);
    !nodes.is_empty()
        && nodes
            .iter()
            .all(|(_, v)| *v == Some(Version::new(1, minor)))
}

async fn cluster_status(c: &Client) -> String {
    c.describe_cluster()
        .name("demo")
        .send()
        .await
        .unwrap()
        .cluster
        .unwrap()
        .status()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default()
}

async fn request_rollback(c: &Client, minutes: i32) -> String {
    let update = c
        .update_cluster_version()
        .name("demo")
        .version("1.32")
        .rollback_config(RollbackConfig::builder().timeout_minutes(minutes).build())
        .send()
        .await
        .expect("rollback")
        .update
        .unwrap();
    assert_eq!(update.r#type(), Some(&UpdateType::VersionRollback));
    update.id().unwrap().to_string()
}

#[test]
fn auto_mode_clusters_show_their_compute_and_drift_after_an_upgrade() {
    let sb = TestSandbox::start(Some(&auto("", "", TIMINGS, "")));
    let store = sb.sandbox.world.store.clone();
    let pools = store
        .resource("karpenter.sh", "v1", "nodepools")
        .expect("NodePools");
    let pool = store.get(&pools, None, "general-purpose").expect("pool");
    assert_eq!(pool["spec"]["disruption"]["budgets"][0]["nodes"], "10%");
    assert!(store.get(&pools, None, "system").is_ok());
    let first = auto_nodes(&sb);
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|(n, _)| n.starts_with("i-0")), "{first:?}");
    sb.block_on(async {
        let c = client(&sb).await;
        let cluster = c
            .describe_cluster()
            .name("demo")
            .send()
            .await
            .unwrap()
            .cluster
            .unwrap();
        let compute = cluster.compute_config().expect("computeConfig");
        assert_eq!(compute.enabled(), Some(true));
        assert_eq!(compute.node_pools(), ["general-purpose", "system"]);
        assert!(
            cluster
                .storage_config()
                .and_then(|s| s.block_storage())
                .and_then(|b| b.enabled())
                .unwrap_or(false)
        );
        // No managed node groups to move: the upgrade is the control plane's alone, and EKS
        // then replaces the Auto Mode nodes.
        assert_eq!(
            upgrade(&c, "1.34").await.status(),
            Some(&UpdateStatus::Successful)
        );
        poll_async("every Auto Mode node at 1.34", POLL_TIMEOUT, async || {
            all_at(&sb, 34)
        })
        .await;
    });
    let after = auto_nodes(&sb);
    assert!(all_at(&sb, 34), "{after:?}");
    assert!(
        !after
            .iter()
            .any(|(n, _)| first.iter().any(|(old, _)| old == n)),
        "{after:?}"
    );
    let web = store.resource("apps", "v1", "deployments").expect("type");
    let web = store.get(&web, Some("shop"), "web").expect("web");
    assert_eq!(web["status"]["availableReplicas"], 2);
}

#[test]
fn an_auto_mode_rollback_moves_the_nodes_before_the_control_plane() {
    // Ten emulated minutes per round of node drift: a second of real time each.
    let timings = "timings: { controlPlaneUpdate: 60s, controlPlaneRollback: 10m, nodegroupUpdatePerNode: 10m, addonUpdate: 12s, backupPerItem: 1s, restorePerItem: 1s, statusLag: 6s }";
    let sb = TestSandbox::start(Some(&auto(", lastUpgradeAge: 1d", "", timings, "")));
    sb.block_on(async {
        let c = client(&sb).await;
        let id = request_rollback(&c, 240).await;
        let mut saw_active_in_progress = false;
        for _ in 0..1000 {
            let update = c
                .describe_update()
                .name("demo")
                .update_id(&id)
                .send()
                .await
                .unwrap()
                .update
                .unwrap();
            if update.status() != Some(&UpdateStatus::InProgress) {
                break;
            }
            match cluster_status(&c).await.as_str() {
                "ACTIVE" => saw_active_in_progress = true,
                // The control plane moves only once every Auto Mode node is back.
                "UPDATING" => assert!(all_at(&sb, 32), "{:?}", auto_nodes(&sb)),
                other => panic!("cluster {other}"),
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(saw_active_in_progress);
        let done = finished(&c, &id, None, None).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Successful));
        assert_eq!(cluster_version(&c).await, "1.32");
    });
    assert!(all_at(&sb, 32), "{:?}", auto_nodes(&sb));
}

#[test]
fn a_budget_of_zero_holds_the_rollback_until_it_is_cancelled() {
    let sb = TestSandbox::start(Some(&auto(
        ", lastUpgradeAge: 1d",
        ", budget: \"0\"",
        TIMINGS,
        "",
    )));
    sb.block_on(async {
        let c = client(&sb).await;
        // A warning, not a block: disruption controls hold the node phase, not the request.
        let found = rollback_insights(&c).await;
        assert_eq!(found["Auto Mode node disruption controls"].0, "WARNING");
        assert_eq!(found["Kubelet version skew"].0, "PASSING");
        let id = request_rollback(&c, 720).await;
        // Ten emulated minutes (fifty rounds of drift): still no node moved, the cluster ACTIVE.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let update = c
            .describe_update()
            .name("demo")
            .update_id(&id)
            .send()
            .await
            .unwrap()
            .update
            .unwrap();
        assert_eq!(update.status(), Some(&UpdateStatus::InProgress));
        assert_eq!(cluster_status(&c).await, "ACTIVE");
        assert!(all_at(&sb, 33));

        let cancelled = c
            .cancel_update()
            .name("demo")
            .update_id(&id)
            .send()
            .await
            .expect("CancelUpdate")
            .update
            .unwrap();
        assert_eq!(
            cancelled.cancellation().and_then(|c| c.status()),
            Some(&CancellationStatus::InProgress)
        );
        let done = finished(&c, &id, None, None).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Cancelled));
        assert_eq!(
            done.cancellation().and_then(|c| c.status()),
            Some(&CancellationStatus::Successful)
        );
        assert_eq!(cluster_version(&c).await, "1.33");
        // A finished update cannot be cancelled again, nor an unknown one.
        let err = c
            .cancel_update()
            .name("demo")
            .update_id("00000000-0000-0000-0000-000000000000")
            .send()
            .await
            .unwrap_err();
        service_error(&err, 404, "ResourceNotFoundException");
    });
}

#[test]
fn a_do_not_disrupt_pod_holds_the_rollback_until_it_times_out() {
    // Speed 6000: the 120-minute timeout passes in 1.2 s of real time.
    let text = auto(
        ", lastUpgradeAge: 1d",
        "",
        TIMINGS,
        "  workloads:\n    - { kind: Deployment, namespace: shop, name: pinned, replicas: 1, doNotDisrupt: true }",
    )
    .replace("speed: 600", "speed: 6000")
    .replace(
        "  workloads:\n    - { kind: Deployment, namespace: shop, name: web, replicas: 2 }\n",
        "",
    );
    let sb = TestSandbox::start(Some(&text));
    let store = sb.sandbox.world.store.clone();
    let pods = store.resource("", "v1", "pods").expect("pods");
    let pinned = store
        .list(
            &pods,
            Some("shop"),
            &Selector::labels("app.kubernetes.io/name=pinned").unwrap(),
        )
        .0;
    assert_eq!(
        pinned[0]["metadata"]["annotations"]["karpenter.sh/do-not-disrupt"],
        "true"
    );
    let held = pinned[0]["spec"]["nodeName"].as_str().unwrap().to_string();
    sb.block_on(async {
        let c = client(&sb).await;
        let id = request_rollback(&c, 120).await;
        let done = finished(&c, &id, None, None).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Failed));
        let error = &done.errors()[0];
        assert!(error.resource_ids().contains(&held), "{error:?}");
        assert!(
            error
                .error_message()
                .unwrap_or_default()
                .contains("karpenter.sh/do-not-disrupt"),
            "{error:?}"
        );
        assert_eq!(cluster_version(&c).await, "1.33");
        assert_eq!(cluster_status(&c).await, "ACTIVE");
    });
}

#[test]
fn cancel_update_refuses_what_it_cannot_cancel() {
    // A long control-plane rollback: long enough to try a cancel while it runs.
    let timings = "timings: { controlPlaneUpdate: 1h, controlPlaneRollback: 1h, nodegroupUpdatePerNode: 12s, addonUpdate: 12s, backupPerItem: 1s, restorePerItem: 1s, statusLag: 6s }";
    let sb = TestSandbox::start(Some(&auto(", lastUpgradeAge: 1d", "", timings, "")));
    sb.block_on(async {
        let c = client(&sb).await;
        let id = request_rollback(&c, 240).await;
        poll_async("the cluster to report UPDATING", POLL_TIMEOUT, async || {
            cluster_status(&c).await == "UPDATING"
        })
        .await;
        assert_eq!(cluster_status(&c).await, "UPDATING");
        let err = c
            .cancel_update()
            .name("demo")
            .update_id(&id)
            .send()
            .await
            .unwrap_err();
        let message = service_error(&err, 400, "InvalidRequestException");
        assert!(message.contains("already begun"), "{message}");
    });
    // Not Auto Mode: nothing to cancel in an upgrade.
    let sb = TestSandbox::start(Some(&super::scenario("", &format!("  {timings}"))));
    sb.block_on(async {
        let c = client(&sb).await;
        let update = c
            .update_cluster_version()
            .name("demo")
            .version("1.34")
            .send()
            .await
            .unwrap()
            .update
            .unwrap();
        let err = c
            .cancel_update()
            .name("demo")
            .update_id(update.id().unwrap())
            .send()
            .await
            .unwrap_err();
        let message = service_error(&err, 400, "InvalidRequestException");
        assert!(message.contains("only a VersionRollback"), "{message}");
    });
}
