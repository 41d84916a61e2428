//! The emulated EKS API, driven by the real clients: `aws-sdk-eks` for every rule, and the real
//! `aws` CLI for wire fidelity.

use std::process::Command;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_eks::Client;
use aws_sdk_eks::config::Credentials;
use aws_sdk_eks::config::retry::RetryConfig;
use aws_sdk_eks::error::ProvideErrorMetadata;
use aws_sdk_eks::types::{
    ErrorCode, InsightStatusValue, InsightsFilter, ResolveConflicts, RollbackConfig, Update,
    UpdateParamType, UpdateStatus, UpdateType, VersionStatus,
};
use base64::Engine;
use eks_upgrade::sandbox::sim::{nodes, workloads};
use eks_upgrade::sandbox::world::{ACCESS_KEY, SECRET_KEY};
use eks_upgrade::types::Version;
use serde_json::Value;

use crate::common::TestSandbox;

/// Fast timings at the default speed (600): a control-plane update takes 0.1 s of real time.
const TIMINGS: &str = "timings: { controlPlaneUpdate: 60s, controlPlaneRollback: 60s, nodegroupUpdatePerNode: 12s, addonUpdate: 12s, backupPerItem: 1s, restorePerItem: 1s, statusLag: 6s }";

/// A 1.33 cluster `demo` with two node groups and four add-ons; `cluster` is appended to the
/// cluster's flow mapping, `extra` to `spec`.
fn scenario(cluster: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: eks-upgrade/v1
kind: Scenario
metadata: {{ name: eks-test }}
spec:
  speed: 600
  cluster: {{ name: demo, region: us-east-1, version: "1.33"{cluster} }}
  nodegroups:
    - {{ name: general, nodes: 2 }}
    - {{ name: system, nodes: 1 }}
  addons:
    - {{ name: vpc-cni, version: v1.19.2-eksbuild.1, configurationValues: '{{"env":{{"ENABLE_PREFIX_DELEGATION":"true"}}}}' }}
    - {{ name: coredns, version: v1.11.4-eksbuild.2 }}
    - {{ name: kube-proxy, version: v1.33.3-eksbuild.2 }}
    - {{ name: aws-ebs-csi-driver, version: v1.41.0-eksbuild.1 }}
  velero: {{ installed: false }}
{extra}
"#
    )
}

fn fast(cluster: &str, extra: &str) -> String {
    scenario(cluster, &format!("  {TIMINGS}\n{extra}"))
}

async fn client_with(sb: &TestSandbox, retry: RetryConfig) -> Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            ACCESS_KEY, SECRET_KEY, None, None, "sandbox",
        ))
        .endpoint_url(&sb.sandbox.endpoints.eks)
        .retry_config(retry)
        .load()
        .await;
    Client::new(&config)
}

/// A client that surfaces every error as sent (no retries).
async fn client(sb: &TestSandbox) -> Client {
    client_with(sb, RetryConfig::disabled()).await
}

async fn pause() {
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// Polls DescribeUpdate until the update is no longer InProgress.
async fn finished(c: &Client, id: &str, nodegroup: Option<&str>, addon: Option<&str>) -> Update {
    for _ in 0..3000 {
        let update = c
            .describe_update()
            .name("demo")
            .update_id(id)
            .set_nodegroup_name(nodegroup.map(str::to_string))
            .set_addon_name(addon.map(str::to_string))
            .send()
            .await
            .expect("DescribeUpdate")
            .update
            .expect("update");
        if update.status() != Some(&UpdateStatus::InProgress) {
            return update;
        }
        pause().await;
    }
    panic!("update {id} did not finish");
}

async fn upgrade(c: &Client, version: &str) -> Update {
    let update = c
        .update_cluster_version()
        .name("demo")
        .version(version)
        .send()
        .await
        .expect("UpdateClusterVersion")
        .update
        .expect("update");
    finished(c, update.id().expect("id"), None, None).await
}

async fn cluster_version(c: &Client) -> String {
    c.describe_cluster()
        .name("demo")
        .send()
        .await
        .expect("DescribeCluster")
        .cluster
        .and_then(|c| c.version)
        .expect("version")
}

fn param(update: &Update, kind: UpdateParamType) -> Option<String> {
    update
        .params()
        .iter()
        .find(|p| p.r#type() == Some(&kind))
        .and_then(|p| p.value().map(str::to_string))
}

/// The message of a service error, asserting its HTTP status and `x-amzn-ErrorType`.
fn service_error<E: ProvideErrorMetadata + std::fmt::Debug>(
    err: &aws_sdk_eks::error::SdkError<E, aws_sdk_eks::config::http::HttpResponse>,
    status: u16,
    code: &str,
) -> String {
    let raw = err.raw_response().expect("a service response");
    assert_eq!(raw.status().as_u16(), status, "{err:?}");
    assert_eq!(raw.headers().get("x-amzn-ErrorType"), Some(code));
    assert!(raw.headers().get("x-amzn-RequestId").is_some());
    let service = err.as_service_error().expect("a service error");
    assert_eq!(service.code(), Some(code));
    service.message().unwrap_or_default().to_string()
}

/// The EKS operations recorded with their status and detail.
fn recorded(sb: &TestSandbox, operation: &str) -> Vec<(u16, String)> {
    sb.sandbox
        .world
        .requests
        .snapshot()
        .into_iter()
        .filter(|r| r.service == "eks" && r.operation == operation)
        .map(|r| (r.status, r.detail.unwrap_or_default()))
        .collect()
}

/// Kubelet versions of a node group's nodes, read from the Kubernetes store.
fn kubelets(sb: &TestSandbox, nodegroup: &str) -> Vec<(String, Option<Version>)> {
    let store = &sb.sandbox.world.store;
    let rt = store.resource("", "v1", "nodes").expect("nodes");
    nodes::nodegroup_nodes(store, nodegroup)
        .into_iter()
        .map(|n| {
            let node = store.get(&rt, None, &n).expect("node");
            (n, nodes::node_version(&node))
        })
        .collect()
}

#[test]
fn describe_cluster_returns_the_sandbox_kubernetes_endpoint_and_ca() {
    let sb = TestSandbox::start(Some(&fast(", supportType: STANDARD", "")));
    sb.block_on(async {
        let c = client(&sb).await;
        let cluster = c
            .describe_cluster()
            .name("demo")
            .send()
            .await
            .expect("DescribeCluster")
            .cluster
            .expect("cluster");
        assert_eq!(cluster.name(), Some("demo"));
        assert_eq!(
            cluster.arn(),
            Some("arn:aws:eks:us-east-1:111122223333:cluster/demo")
        );
        assert_eq!(
            cluster.endpoint(),
            Some(sb.sandbox.endpoints.kubernetes.as_str())
        );
        let ca = cluster
            .certificate_authority()
            .and_then(|c| c.data())
            .expect("CA data");
        let pem = base64::engine::general_purpose::STANDARD
            .decode(ca)
            .expect("base64");
        assert_eq!(String::from_utf8(pem).unwrap(), sb.sandbox.world.ca_pem);
        assert_eq!(cluster.version(), Some("1.33"));
        assert_eq!(cluster.platform_version(), Some("eks.41"));
        assert_eq!(cluster.status().map(|s| s.as_str()), Some("ACTIVE"));
        assert_eq!(
            cluster
                .upgrade_policy()
                .and_then(|u| u.support_type())
                .map(|s| s.as_str()),
            Some("STANDARD")
        );
        assert!(cluster.created_at().expect("createdAt").secs() > 1_600_000_000);
        assert!(
            cluster
                .resources_vpc_config()
                .and_then(|v| v.vpc_id())
                .is_some_and(|v| v.starts_with("vpc-"))
        );
        assert!(cluster.tags().is_some());
        let clusters = c.list_clusters().send().await.expect("ListClusters");
        assert_eq!(clusters.clusters(), ["demo"]);
    });
    assert_eq!(
        recorded(&sb, "DescribeCluster"),
        vec![(200, "cluster=demo".to_string())]
    );
}

/// Reads a raw HTTP response from the emulator, to see the wire form no client normalises.
fn raw_get(endpoint: &str, path: &str) -> (String, Value) {
    use std::io::{Read, Write};
    let addr = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read");
    let (head, body) = text.split_once("\r\n\r\n").expect("http response");
    (
        head.to_ascii_lowercase(),
        serde_json::from_str(body).expect("json body"),
    )
}

#[test]
fn wire_form_uses_epoch_numbers_and_error_headers() {
    let sb = TestSandbox::start(Some(&fast("", "")));
    let endpoint = sb.sandbox.endpoints.eks.clone();
    let (head, body) = raw_get(&endpoint, "/clusters/demo");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("x-amzn-requestid:"));
    assert!(head.contains("content-type: application/json"));
    assert!(body["cluster"]["createdAt"].is_number(), "{body}");
    assert!(
        !body.to_string().contains("null"),
        "no null members: {body}"
    );

    let (head, body) = raw_get(&endpoint, "/clusters/nope");
    assert!(head.starts_with("http/1.1 404"), "{head}");
    assert!(head.contains("x-amzn-errortype: resourcenotfoundexception"));
    assert_eq!(body["__type"], "ResourceNotFoundException");
    assert_eq!(body["message"], "No cluster found for name: nope.");
    assert_eq!(body["clusterName"], "nope");

    let (head, body) = raw_get(&endpoint, "/clusters/demo/fargate-profiles");
    assert!(head.starts_with("http/1.1 404"), "{head}");
    assert_eq!(body["__type"], "UnknownOperationException");
    assert_eq!(
        recorded(&sb, "GET /clusters/demo/fargate-profiles"),
        vec![(404, "not emulated".to_string())]
    );

    let (_, body) = raw_get(&endpoint, "/cluster-versions");
    for v in body["clusterVersions"].as_array().expect("list") {
        assert!(v["releaseDate"].is_number() && v["endOfStandardSupportDate"].is_number());
    }
}

#[test]
fn unknown_cluster_is_resource_not_found() {
    let sb = TestSandbox::start(Some(&fast("", "")));
    sb.block_on(async {
        let c = client(&sb).await;
        let err = c.describe_cluster().name("nope").send().await.unwrap_err();
        let message = service_error(&err, 404, "ResourceNotFoundException");
        assert_eq!(message, "No cluster found for name: nope.");
        assert!(err.into_service_error().is_resource_not_found_exception());

        let err = c
            .update_cluster_version()
            .name("nope")
            .version("1.34")
            .send()
            .await
            .unwrap_err();
        assert!(err.into_service_error().is_resource_not_found_exception());
        let err = c
            .list_nodegroups()
            .cluster_name("nope")
            .send()
            .await
            .unwrap_err();
        assert!(err.into_service_error().is_resource_not_found_exception());
    });
}

#[test]
fn control_plane_moves_one_minor_version_at_a_time() {
    let sb = TestSandbox::start(Some(&fast("", "")));
    sb.block_on(async {
        let c = client(&sb).await;
        for (target, expected) in [
            ("1.35", "from 1.33 to 1.35"),
            ("1.32", "from 1.33 to 1.32"),
            ("1.33", "from 1.33 to 1.33"),
        ] {
            let err = c
                .update_cluster_version()
                .name("demo")
                .version(target)
                .send()
                .await
                .unwrap_err();
            let message = service_error(&err, 400, "InvalidParameterException");
            assert_eq!(
                message,
                format!("Unsupported Kubernetes minor version update {expected}")
            );
            assert!(err.into_service_error().is_invalid_parameter_exception());
        }
        assert_eq!(cluster_version(&c).await, "1.33");
    });
    let records = recorded(&sb, "UpdateClusterVersion");
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|(status, _)| *status == 400));
    assert_eq!(records[0].1, "cluster=demo version=1.35");
    assert_eq!(
        sb.sandbox.world.control_plane_version(),
        Version::new(1, 33)
    );
}

#[test]
fn control_plane_update_lifecycle() {
    // Ten emulated minutes: one real second, long enough to see the cluster UPDATING.
    let sb = TestSandbox::start(Some(&scenario(
        "",
        "  timings: { controlPlaneUpdate: 10m, controlPlaneRollback: 60s, nodegroupUpdatePerNode: 12s, addonUpdate: 12s, backupPerItem: 1s, restorePerItem: 1s, statusLag: 6s }",
    )));
    sb.block_on(async {
        let c = client(&sb).await;
        let update = c
            .update_cluster_version()
            .name("demo")
            .version("1.34")
            .send()
            .await
            .expect("UpdateClusterVersion")
            .update
            .expect("update");
        assert_eq!(update.status(), Some(&UpdateStatus::InProgress));
        assert_eq!(update.r#type(), Some(&UpdateType::VersionUpdate));
        assert_eq!(
            param(&update, UpdateParamType::Version).as_deref(),
            Some("1.34")
        );
        assert_eq!(
            param(&update, UpdateParamType::PlatformVersion).as_deref(),
            Some("eks.27")
        );
        assert!(update.errors().is_empty());
        let id = update.id().expect("id").to_string();

        // Eventually UPDATING, still reporting the old version while it is.
        let mut seen_updating = false;
        for _ in 0..500 {
            let cluster = c
                .describe_cluster()
                .name("demo")
                .send()
                .await
                .unwrap()
                .cluster
                .unwrap();
            if cluster.status().map(|s| s.as_str()) == Some("UPDATING") {
                assert_eq!(cluster.version(), Some("1.33"));
                seen_updating = true;
                break;
            }
            pause().await;
        }
        assert!(seen_updating, "the cluster never reported UPDATING");

        let ids = c.list_updates().name("demo").send().await.unwrap();
        assert_eq!(ids.update_ids(), std::slice::from_ref(&id));

        let done = finished(&c, &id, None, None).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Successful));
        let cluster = c
            .describe_cluster()
            .name("demo")
            .send()
            .await
            .unwrap()
            .cluster
            .unwrap();
        assert_eq!(cluster.version(), Some("1.34"));
        assert_eq!(cluster.platform_version(), Some("eks.27"));
        assert_eq!(cluster.status().map(|s| s.as_str()), Some("ACTIVE"));
    });
    assert_eq!(
        sb.sandbox.world.control_plane_version(),
        Version::new(1, 34)
    );
    assert_eq!(
        recorded(&sb, "UpdateClusterVersion"),
        vec![(200, "cluster=demo version=1.34".to_string())]
    );
}

#[test]
fn a_second_update_while_one_is_in_flight_is_refused_with_409() {
    // One emulated hour: the update stays in flight for the whole test.
    let sb = TestSandbox::start(Some(&scenario(
        "",
        "  timings: { controlPlaneUpdate: 1h, controlPlaneRollback: 60s, nodegroupUpdatePerNode: 12s, addonUpdate: 12s, backupPerItem: 1s, restorePerItem: 1s, statusLag: 6s }",
    )));
    sb.block_on(async {
        let c = client(&sb).await;
        let first = c
            .update_cluster_version()
            .name("demo")
            .version("1.34")
            .client_request_token("token-1")
            .send()
            .await
            .unwrap()
            .update
            .unwrap();
        let id = first.id().unwrap();
        let err = c
            .update_cluster_version()
            .name("demo")
            .version("1.34")
            .send()
            .await
            .unwrap_err();
        let message = service_error(&err, 409, "ResourceInUseException");
        assert_eq!(
            message,
            format!(
                "Cannot VersionUpdate because cluster demo currently has update {id} in progress"
            )
        );
        assert!(err.into_service_error().is_resource_in_use_exception());

        // A retry with the same token is the same update, not a conflict.
        let again = c
            .update_cluster_version()
            .name("demo")
            .version("1.34")
            .client_request_token("token-1")
            .send()
            .await
            .expect("idempotent retry")
            .update
            .unwrap();
        assert_eq!(again.id(), Some(id));
        let ids = c.list_updates().name("demo").send().await.unwrap();
        assert_eq!(ids.update_ids().len(), 1);
    });
    let statuses: Vec<u16> = recorded(&sb, "UpdateClusterVersion")
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(statuses, vec![200, 409, 200]);
}

#[test]
fn node_groups_must_match_the_cluster_version_before_an_upgrade() {
    let text = fast("", "").replace(
        "{ name: general, nodes: 2 }",
        "{ name: general, nodes: 2, version: \"1.32\" }",
    );
    let sb = TestSandbox::start(Some(&text));
    sb.block_on(async {
        let c = client(&sb).await;
        let err = c
            .update_cluster_version()
            .name("demo")
            .version("1.34")
            .send()
            .await
            .unwrap_err();
        let message = service_error(&err, 400, "InvalidParameterException");
        assert_eq!(
            message,
            "Nodegroups general must be updated to match cluster version 1.33 before updating cluster version"
        );
    });
}

#[test]
fn nodegroup_update_rolls_nodes_to_the_new_kubelet() {
    let text = fast("", "").replace(
        "{ name: general, nodes: 2 }",
        "{ name: general, nodes: 2, version: \"1.32\" }",
    );
    let sb = TestSandbox::start(Some(&text));
    let before = kubelets(&sb, "general");
    assert!(before.iter().all(|(_, v)| *v == Some(Version::new(1, 32))));
    sb.block_on(async {
        let c = client(&sb).await;
        // Newer than the control plane: refused with EKS's message.
        let err = c
            .update_nodegroup_version()
            .cluster_name("demo")
            .nodegroup_name("general")
            .version("1.34")
            .send()
            .await
            .unwrap_err();
        let message = service_error(&err, 400, "InvalidParameterException");
        assert_eq!(
            message,
            "Nodegroup Kubernetes version should be equal to Cluster kubernetes version 1.33 or NodeGroup kubernetes version 1.32"
        );

        let update = c
            .update_nodegroup_version()
            .cluster_name("demo")
            .nodegroup_name("general")
            .version("1.33")
            .send()
            .await
            .expect("UpdateNodegroupVersion")
            .update
            .unwrap();
        assert_eq!(update.r#type(), Some(&UpdateType::VersionUpdate));
        assert_eq!(param(&update, UpdateParamType::Version).as_deref(), Some("1.33"));
        let release = param(&update, UpdateParamType::ReleaseVersion).unwrap();
        assert!(release.starts_with("1.33.5-2025"), "{release}");
        let ng = c
            .describe_nodegroup()
            .cluster_name("demo")
            .nodegroup_name("general")
            .send()
            .await
            .unwrap()
            .nodegroup
            .unwrap();
        assert_eq!(ng.status().map(|s| s.as_str()), Some("UPDATING"));
        let id = update.id().unwrap();

        // A node-group update is not visible as a cluster update.
        let err = c
            .describe_update()
            .name("demo")
            .update_id(id)
            .send()
            .await
            .unwrap_err();
        assert!(err.into_service_error().is_resource_not_found_exception());

        let done = finished(&c, id, Some("general"), None).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Successful), "{done:?}");
        let ng = c
            .describe_nodegroup()
            .cluster_name("demo")
            .nodegroup_name("general")
            .send()
            .await
            .unwrap()
            .nodegroup
            .unwrap();
        assert_eq!(ng.version(), Some("1.33"));
        assert_eq!(ng.release_version(), Some(release.as_str()));
        assert_eq!(ng.status().map(|s| s.as_str()), Some("ACTIVE"));
        let listed = c
            .list_updates()
            .name("demo")
            .nodegroup_name("general")
            .send()
            .await
            .unwrap();
        assert_eq!(listed.update_ids(), [id.to_string()]);
        // Every group matches now, so the control plane may move on.
        assert_eq!(upgrade(&c, "1.34").await.status(), Some(&UpdateStatus::Successful));
    });
    let after = kubelets(&sb, "general");
    assert_eq!(after.len(), 2);
    assert!(
        after.iter().all(|(_, v)| *v == Some(Version::new(1, 33))),
        "{after:?}"
    );
    assert!(
        after
            .iter()
            .all(|(n, _)| !before.iter().any(|(b, _)| b == n))
    );
    assert_eq!(
        recorded(&sb, "UpdateNodegroupVersion")[1],
        (
            200,
            "cluster=demo nodegroup=general version=1.33".to_string()
        )
    );
}

#[test]
fn pod_eviction_failure_names_the_blocked_pods_unless_forced() {
    let text = fast(
        "",
        "  workloads:\n    - { kind: Deployment, namespace: shop, name: web, replicas: 2, pdbMinAvailable: 2 }",
    )
    .replace(
        "{ name: general, nodes: 2 }",
        "{ name: general, nodes: 2, version: \"1.32\" }",
    );
    let sb = TestSandbox::start(Some(&text));
    sb.block_on(async {
        let c = client(&sb).await;
        let update = c
            .update_nodegroup_version()
            .cluster_name("demo")
            .nodegroup_name("general")
            .version("1.33")
            .send()
            .await
            .unwrap()
            .update
            .unwrap();
        let done = finished(&c, update.id().unwrap(), Some("general"), None).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Failed));
        let error = &done.errors()[0];
        assert_eq!(error.error_code(), Some(&ErrorCode::PodEvictionFailure));
        assert!(
            error
                .resource_ids()
                .iter()
                .any(|p| p.starts_with("shop/web-")),
            "{error:?}"
        );
        let ng = c
            .describe_nodegroup()
            .cluster_name("demo")
            .nodegroup_name("general")
            .send()
            .await
            .unwrap()
            .nodegroup
            .unwrap();
        assert_eq!(ng.version(), Some("1.32"));
        assert_eq!(ng.status().map(|s| s.as_str()), Some("ACTIVE"));

        let forced = c
            .update_nodegroup_version()
            .cluster_name("demo")
            .nodegroup_name("general")
            .version("1.33")
            .force(true)
            .send()
            .await
            .unwrap()
            .update
            .unwrap();
        let done = finished(&c, forced.id().unwrap(), Some("general"), None).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Successful), "{done:?}");
    });
    assert!(
        kubelets(&sb, "general")
            .iter()
            .all(|(_, v)| *v == Some(Version::new(1, 33)))
    );
    assert!(
        recorded(&sb, "UpdateNodegroupVersion")[1]
            .1
            .ends_with("force=true")
    );
}

#[test]
fn rollback_within_seven_days_of_an_upgrade() {
    let sb = TestSandbox::start(Some(&fast(", lastUpgradeAge: 2d", "")));
    sb.block_on(async {
        let c = client(&sb).await;
        let err = c
            .update_cluster_version()
            .name("demo")
            .version("1.32")
            .rollback_config(RollbackConfig::builder().timeout_minutes(60).build())
            .send()
            .await
            .unwrap_err();
        service_error(&err, 400, "InvalidParameterException");

        let update = c
            .update_cluster_version()
            .name("demo")
            .version("1.32")
            .rollback_config(RollbackConfig::builder().timeout_minutes(240).build())
            .send()
            .await
            .expect("rollback")
            .update
            .unwrap();
        assert_eq!(update.r#type(), Some(&UpdateType::VersionRollback));
        let done = finished(&c, update.id().unwrap(), None, None).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Successful));
        assert_eq!(cluster_version(&c).await, "1.32");

        // A rollback cannot itself be rolled back further.
        let err = c
            .update_cluster_version()
            .name("demo")
            .version("1.31")
            .send()
            .await
            .unwrap_err();
        let message = service_error(&err, 400, "InvalidParameterException");
        assert_eq!(
            message,
            "Unsupported Kubernetes minor version update from 1.32 to 1.31"
        );
    });
    assert_eq!(
        sb.sandbox.world.control_plane_version(),
        Version::new(1, 32)
    );
}

#[test]
fn an_upgrade_made_in_the_sandbox_can_be_rolled_back() {
    let sb = TestSandbox::start(Some(&fast("", "")));
    sb.block_on(async {
        let c = client(&sb).await;
        assert_eq!(
            upgrade(&c, "1.34").await.status(),
            Some(&UpdateStatus::Successful)
        );
        assert_eq!(
            sb.sandbox.world.control_plane_version(),
            Version::new(1, 34)
        );
        let done = upgrade(&c, "1.33").await;
        assert_eq!(done.r#type(), Some(&UpdateType::VersionRollback));
        assert_eq!(done.status(), Some(&UpdateStatus::Successful));
        assert_eq!(cluster_version(&c).await, "1.33");
    });
    assert_eq!(
        sb.sandbox.world.control_plane_version(),
        Version::new(1, 33)
    );
}

#[test]
fn rollback_is_refused_outside_the_window_after_an_auto_upgrade_or_without_an_upgrade() {
    let cases = [
        (
            ", lastUpgradeAge: 8d",
            400,
            "InvalidRequestException",
            "7 days",
        ),
        (
            ", lastUpgradeAge: 1d, lastUpgradeAutomatic: true",
            400,
            "InvalidRequestException",
            "automatic upgrade",
        ),
        (
            "",
            400,
            "InvalidParameterException",
            "Unsupported Kubernetes minor version update from 1.33 to 1.32",
        ),
    ];
    for (cluster, status, code, needle) in cases {
        let sb = TestSandbox::start(Some(&fast(cluster, "")));
        sb.block_on(async {
            let c = client(&sb).await;
            let err = c
                .update_cluster_version()
                .name("demo")
                .version("1.32")
                .send()
                .await
                .unwrap_err();
            let message = service_error(&err, status, code);
            assert!(message.contains(needle), "{cluster}: {message}");
            assert_eq!(cluster_version(&c).await, "1.33");
        });
    }
}

const DEPRECATED_1_34: &str = "  deprecatedApiRequests:\n    - { group: resource.k8s.io, version: v1beta1, resource: resourceclaims, removedRelease: \"1.34\" }";

#[test]
fn insight_errors_block_the_upgrade_unless_forced() {
    let sb = TestSandbox::start(Some(&fast(
        "",
        &format!("{DEPRECATED_1_34}\n  faults: {{ enforceInsights: true }}"),
    )));
    sb.block_on(async {
        let c = client(&sb).await;
        let errors = c
            .list_insights()
            .cluster_name("demo")
            .filter(
                InsightsFilter::builder()
                    .statuses(InsightStatusValue::Error)
                    .build(),
            )
            .send()
            .await
            .expect("ListInsights");
        assert_eq!(errors.insights().len(), 1);
        let summary = &errors.insights()[0];
        assert_eq!(
            summary.name(),
            Some("Deprecated APIs removed in Kubernetes v1.34")
        );
        assert_eq!(summary.kubernetes_version(), Some("1.34"));
        let insight = c
            .describe_insight()
            .cluster_name("demo")
            .id(summary.id().unwrap())
            .send()
            .await
            .expect("DescribeInsight")
            .insight
            .unwrap();
        let details = insight
            .category_specific_summary()
            .unwrap()
            .deprecation_details();
        assert_eq!(
            details[0].usage(),
            Some("/apis/resource.k8s.io/v1beta1/resourceclaims")
        );
        assert_eq!(
            details[0].replaced_with(),
            Some("/apis/resource.k8s.io/v1/resourceclaims")
        );
        assert_eq!(details[0].stop_serving_version(), Some("1.34"));

        let err = c
            .update_cluster_version()
            .name("demo")
            .version("1.34")
            .send()
            .await
            .unwrap_err();
        let message = service_error(&err, 400, "InvalidStateException");
        assert!(
            message.starts_with("Upgrade readiness issues detected."),
            "{message}"
        );
        assert!(err.into_service_error().is_invalid_state_exception());
        assert_eq!(cluster_version(&c).await, "1.33");

        let forced = c
            .update_cluster_version()
            .name("demo")
            .version("1.34")
            .force(true)
            .send()
            .await
            .expect("forced upgrade")
            .update
            .unwrap();
        let done = finished(&c, forced.id().unwrap(), None, None).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Successful));
    });
    assert_eq!(
        recorded(&sb, "UpdateClusterVersion"),
        vec![
            (400, "cluster=demo version=1.34".to_string()),
            (200, "cluster=demo version=1.34 force=true".to_string()),
        ]
    );
}

#[test]
fn deprecated_api_insights_follow_the_current_version() {
    let sb = TestSandbox::start(Some(&fast(
        "",
        "  deprecatedApiRequests:\n    - { group: storagemigration.k8s.io, version: v1alpha1, resource: storageversionmigrations, removedRelease: \"1.35\" }",
    )));
    sb.block_on(async {
        let c = client(&sb).await;
        let status_for = |version: &'static str| {
            let c = c.clone();
            async move {
                c.list_insights()
                    .cluster_name("demo")
                    .filter(
                        InsightsFilter::builder()
                            .kubernetes_versions(version)
                            .build(),
                    )
                    .send()
                    .await
                    .unwrap()
                    .insights()
                    .iter()
                    .map(|i| i.insight_status().and_then(|s| s.status()).cloned())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            status_for("1.35").await,
            vec![Some(InsightStatusValue::Warning)]
        );
        assert_eq!(
            status_for("1.34").await,
            vec![Some(InsightStatusValue::Passing)]
        );
        upgrade(&c, "1.34").await;
        assert_eq!(
            status_for("1.35").await,
            vec![Some(InsightStatusValue::Error)]
        );
    });
}

#[test]
fn a_failed_update_fault_leaves_the_version_unchanged() {
    let sb = TestSandbox::start(Some(&fast(
        "",
        "  faults:\n    failedUpdates:\n      - { target: controlPlane, version: \"1.34\", errorCode: Unknown, message: \"health checks failed\", resourceIds: [demo] }",
    )));
    sb.block_on(async {
        let c = client(&sb).await;
        let done = upgrade(&c, "1.34").await;
        assert_eq!(done.status(), Some(&UpdateStatus::Failed));
        let error = &done.errors()[0];
        assert_eq!(error.error_code().map(|c| c.as_str()), Some("Unknown"));
        assert_eq!(error.error_message(), Some("health checks failed"));
        assert_eq!(error.resource_ids(), ["demo"]);
        let cluster = c
            .describe_cluster()
            .name("demo")
            .send()
            .await
            .unwrap()
            .cluster
            .unwrap();
        assert_eq!(cluster.version(), Some("1.33"));
        assert_eq!(cluster.status().map(|s| s.as_str()), Some("ACTIVE"));
    });
    assert_eq!(
        sb.sandbox.world.control_plane_version(),
        Version::new(1, 33)
    );
}

#[test]
fn failed_update_faults_for_nodegroups_and_addons() {
    let text = fast(
        "",
        "  faults:\n    failedUpdates:\n      - { target: nodegroup/general, errorCode: NodeCreationFailure, message: \"instances failed to join\", resourceIds: [i-0abc] }\n      - { target: addon/coredns, errorCode: ConfigurationConflict, message: \"conflicts with the deployed configuration\" }",
    )
    .replace(
        "{ name: general, nodes: 2 }",
        "{ name: general, nodes: 2, version: \"1.32\" }",
    );
    let sb = TestSandbox::start(Some(&text));
    let before = kubelets(&sb, "general");
    sb.block_on(async {
        let c = client(&sb).await;
        let update = c
            .update_nodegroup_version()
            .cluster_name("demo")
            .nodegroup_name("general")
            .send()
            .await
            .unwrap()
            .update
            .unwrap();
        // Without a version the group stays on its own minor (a newer AMI of it).
        assert_eq!(
            param(&update, UpdateParamType::Version).as_deref(),
            Some("1.32")
        );
        let done = finished(&c, update.id().unwrap(), Some("general"), None).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Failed));
        assert_eq!(
            done.errors()[0].error_code(),
            Some(&ErrorCode::NodeCreationFailure)
        );
        assert_eq!(done.errors()[0].resource_ids(), ["i-0abc"]);

        let update = c
            .update_addon()
            .cluster_name("demo")
            .addon_name("coredns")
            .addon_version("v1.12.4-eksbuild.1")
            .send()
            .await
            .unwrap()
            .update
            .unwrap();
        let done = finished(&c, update.id().unwrap(), None, Some("coredns")).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Failed));
        assert_eq!(
            done.errors()[0].error_code(),
            Some(&ErrorCode::ConfigurationConflict)
        );
        let addon = c
            .describe_addon()
            .cluster_name("demo")
            .addon_name("coredns")
            .send()
            .await
            .unwrap()
            .addon
            .unwrap();
        assert_eq!(addon.addon_version(), Some("v1.11.4-eksbuild.2"));
        assert_eq!(addon.status().map(|s| s.as_str()), Some("ACTIVE"));
    });
    assert_eq!(kubelets(&sb, "general"), before, "no node was replaced");
    assert!(container_image(&sb, "deployments", "coredns").ends_with(":v1.11.4-eksbuild.2"));
}

fn container_image(sb: &TestSandbox, plural: &str, name: &str) -> String {
    let store = &sb.sandbox.world.store;
    let rt = store.resource("apps", "v1", plural).unwrap();
    let obj = store.get(&rt, Some("kube-system"), name).unwrap();
    obj.pointer("/spec/template/spec/containers/0/image")
        .and_then(Value::as_str)
        .unwrap()
        .to_string()
}

#[test]
fn addon_update_changes_the_workload_image_and_keeps_configuration() {
    let sb = TestSandbox::start(Some(&fast("", "")));
    assert!(container_image(&sb, "daemonsets", "aws-node").ends_with(":v1.19.2-eksbuild.1"));
    sb.block_on(async {
        let c = client(&sb).await;
        let update = c
            .update_addon()
            .cluster_name("demo")
            .addon_name("vpc-cni")
            .addon_version("v1.20.4-eksbuild.1")
            .resolve_conflicts(ResolveConflicts::Preserve)
            .send()
            .await
            .expect("UpdateAddon")
            .update
            .unwrap();
        assert_eq!(update.r#type(), Some(&UpdateType::AddonUpdate));
        assert_eq!(
            param(&update, UpdateParamType::AddonVersion).as_deref(),
            Some("v1.20.4-eksbuild.1")
        );
        assert_eq!(
            param(&update, UpdateParamType::ResolveConflicts).as_deref(),
            Some("PRESERVE")
        );
        assert_eq!(param(&update, UpdateParamType::ConfigurationValues), None);
        let done = finished(&c, update.id().unwrap(), None, Some("vpc-cni")).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Successful));
        let addon = c
            .describe_addon()
            .cluster_name("demo")
            .addon_name("vpc-cni")
            .send()
            .await
            .unwrap()
            .addon
            .unwrap();
        assert_eq!(addon.addon_version(), Some("v1.20.4-eksbuild.1"));
        assert_eq!(addon.status().map(|s| s.as_str()), Some("ACTIVE"));
        assert_eq!(
            addon.configuration_values(),
            Some(r#"{"env":{"ENABLE_PREFIX_DELEGATION":"true"}}"#)
        );
    });
    assert!(container_image(&sb, "daemonsets", "aws-node").ends_with(":v1.20.4-eksbuild.1"));
    assert_eq!(
        recorded(&sb, "UpdateAddon"),
        vec![(
            200,
            "cluster=demo addon=vpc-cni addonVersion=v1.20.4-eksbuild.1".to_string()
        )]
    );
}

#[test]
fn incompatible_or_unknown_addons_are_refused() {
    let sb = TestSandbox::start(Some(&fast("", "")));
    sb.block_on(async {
        let c = client(&sb).await;
        let err = c
            .update_addon()
            .cluster_name("demo")
            .addon_name("kube-proxy")
            .addon_version("v1.35.3-eksbuild.2")
            .send()
            .await
            .unwrap_err();
        let message = service_error(&err, 400, "InvalidParameterException");
        assert_eq!(message, "Addon version specified is not supported");
        let err = c
            .describe_addon()
            .cluster_name("demo")
            .addon_name("metrics-server")
            .send()
            .await
            .unwrap_err();
        let message = service_error(&err, 404, "ResourceNotFoundException");
        assert_eq!(message, "No addon: metrics-server found in cluster: demo");
    });
    assert!(container_image(&sb, "daemonsets", "kube-proxy").ends_with(":v1.33.3-eksbuild.2"));
}

#[test]
fn an_addon_fault_leaves_it_degraded_and_its_workload_broken() {
    let sb = TestSandbox::start(Some(&fast(
        "",
        "  faults:\n    addonDegrades: [ { addon: coredns, version: \"1.33\" } ]",
    )));
    sb.block_on(async {
        let c = client(&sb).await;
        let update = c
            .update_addon()
            .cluster_name("demo")
            .addon_name("coredns")
            .addon_version("v1.12.4-eksbuild.1")
            .send()
            .await
            .unwrap()
            .update
            .unwrap();
        finished(&c, update.id().unwrap(), None, Some("coredns")).await;
        let addon = c
            .describe_addon()
            .cluster_name("demo")
            .addon_name("coredns")
            .send()
            .await
            .unwrap()
            .addon
            .unwrap();
        assert_eq!(addon.status().map(|s| s.as_str()), Some("DEGRADED"));
        let issue = &addon.health().unwrap().issues()[0];
        assert_eq!(
            issue.code().map(|c| c.as_str()),
            Some("InsufficientNumberOfReplicas")
        );
        assert_eq!(issue.resource_ids(), ["coredns"]);
    });
    let store = &sb.sandbox.world.store;
    let rt = store.resource("apps", "v1", "deployments").unwrap();
    let coredns = store.get(&rt, Some("kube-system"), "coredns").unwrap();
    assert_eq!(
        coredns
            .pointer("/spec/template/metadata/annotations")
            .and_then(|a| a.get(workloads::BROKEN_ANNOTATION)),
        Some(&Value::from("true"))
    );
    assert!(container_image(&sb, "deployments", "coredns").ends_with(":v1.12.4-eksbuild.1"));
}

#[test]
fn describe_addon_versions_filters_and_orders() {
    let sb = TestSandbox::start(Some(&fast("", "")));
    sb.block_on(async {
        let c = client(&sb).await;
        let out = c
            .describe_addon_versions()
            .kubernetes_version("1.33")
            .addon_name("vpc-cni")
            .send()
            .await
            .expect("DescribeAddonVersions");
        let addon = &out.addons()[0];
        assert_eq!(out.addons().len(), 1);
        let versions: Vec<&str> = addon
            .addon_versions()
            .iter()
            .filter_map(|v| v.addon_version())
            .collect();
        assert_eq!(
            versions,
            [
                "v1.20.4-eksbuild.1",
                "v1.19.6-eksbuild.1",
                "v1.19.2-eksbuild.1",
                "v1.18.6-eksbuild.1"
            ]
        );
        let defaults: Vec<bool> = addon
            .addon_versions()
            .iter()
            .map(|v| {
                assert_eq!(v.compatibilities().len(), 1);
                assert_eq!(v.compatibilities()[0].cluster_version(), Some("1.33"));
                v.compatibilities()[0].default_version()
            })
            .collect();
        assert_eq!(defaults, [true, false, false, false]);

        // kube-proxy versions are tied to one minor each.
        let out = c
            .describe_addon_versions()
            .kubernetes_version("1.34")
            .addon_name("kube-proxy")
            .send()
            .await
            .unwrap();
        let only: Vec<&str> = out.addons()[0]
            .addon_versions()
            .iter()
            .filter_map(|v| v.addon_version())
            .collect();
        assert_eq!(only, ["v1.34.3-eksbuild.2"]);

        let storage = c
            .describe_addon_versions()
            .types("storage")
            .send()
            .await
            .unwrap();
        let names: Vec<&str> = storage
            .addons()
            .iter()
            .filter_map(|a| a.addon_name())
            .collect();
        assert_eq!(names, ["aws-ebs-csi-driver"]);
        // Repeated `types` keys: both filters apply.
        let both = c
            .describe_addon_versions()
            .types("storage")
            .types("networking")
            .send()
            .await
            .unwrap();
        assert_eq!(both.addons().len(), 4);
        // Without a version filter, every supported version is listed per add-on version.
        let coredns = c
            .describe_addon_versions()
            .addon_name("coredns")
            .send()
            .await
            .unwrap();
        let newest = &coredns.addons()[0].addon_versions()[0];
        assert_eq!(newest.addon_version(), Some("v1.12.4-eksbuild.1"));
        assert_eq!(newest.compatibilities().len(), 4);
    });
}

#[test]
fn list_operations_paginate() {
    let sb = TestSandbox::start(Some(&fast("", DEPRECATED_1_34)));
    sb.block_on(async {
        let c = client(&sb).await;
        let first = c
            .list_nodegroups()
            .cluster_name("demo")
            .max_results(1)
            .send()
            .await
            .unwrap();
        assert_eq!(first.nodegroups(), ["general"]);
        let token = first.next_token().expect("a second page").to_string();
        let second = c
            .list_nodegroups()
            .cluster_name("demo")
            .max_results(1)
            .next_token(token)
            .send()
            .await
            .unwrap();
        assert_eq!(second.nodegroups(), ["system"]);
        assert_eq!(second.next_token(), None);

        let addons: Vec<String> = c
            .list_addons()
            .cluster_name("demo")
            .max_results(1)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap();
        assert_eq!(
            addons,
            ["aws-ebs-csi-driver", "coredns", "kube-proxy", "vpc-cni"]
        );
        let catalogue = c
            .describe_addon_versions()
            .max_results(1)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap();
        assert_eq!(catalogue.len(), 4);
        let insights = c
            .list_insights()
            .cluster_name("demo")
            .max_results(1)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap();
        assert_eq!(insights.len(), 1);

        let err = c
            .list_nodegroups()
            .cluster_name("demo")
            .max_results(101)
            .send()
            .await
            .unwrap_err();
        service_error(&err, 400, "InvalidParameterException");
        let err = c
            .list_nodegroups()
            .cluster_name("demo")
            .next_token("not-a-token")
            .send()
            .await
            .unwrap_err();
        service_error(&err, 400, "InvalidParameterException");
    });
}

#[test]
fn describe_cluster_versions_computes_status_and_filters() {
    let versions = r#"  versions:
    - { version: "1.30", releaseDate: "2020-01-01", endOfStandardSupport: "2020-06-01", endOfExtendedSupport: "2021-01-01", platformVersion: eks.9 }
    - { version: "1.31", releaseDate: "2020-01-01", endOfStandardSupport: "2020-06-01", endOfExtendedSupport: "2099-01-01", platformVersion: eks.8 }
    - { version: "1.32", releaseDate: "2021-01-01", endOfStandardSupport: "2099-01-01", endOfExtendedSupport: "2099-06-01", platformVersion: eks.7, default: true }
    - { version: "1.33", releaseDate: "2022-01-01", endOfStandardSupport: "2099-01-01", endOfExtendedSupport: "2099-06-01", platformVersion: eks.6 }
    - { version: "1.34", releaseDate: "2098-01-01", endOfStandardSupport: "2099-01-01", endOfExtendedSupport: "2099-06-01", platformVersion: eks.5 }"#;
    let sb = TestSandbox::start(Some(&fast("", versions)));
    sb.block_on(async {
        let c = client(&sb).await;
        let listed = |out: &aws_sdk_eks::operation::describe_cluster_versions::DescribeClusterVersionsOutput| {
            out.cluster_versions()
                .iter()
                .map(|v| (v.cluster_version().unwrap().to_string(), v.version_status().cloned()))
                .collect::<Vec<_>>()
        };
        let all = c.describe_cluster_versions().send().await.unwrap();
        assert_eq!(
            listed(&all),
            vec![
                ("1.33".to_string(), Some(VersionStatus::StandardSupport)),
                ("1.32".to_string(), Some(VersionStatus::StandardSupport)),
                ("1.31".to_string(), Some(VersionStatus::ExtendedSupport)),
            ],
            "unreleased and unsupported versions are not offered"
        );
        let with_old = c.describe_cluster_versions().include_all(true).send().await.unwrap();
        assert_eq!(with_old.cluster_versions().len(), 4);
        assert_eq!(
            with_old.cluster_versions()[3].version_status(),
            Some(&VersionStatus::Unsupported)
        );
        let default = c.describe_cluster_versions().default_only(true).send().await.unwrap();
        assert_eq!(default.cluster_versions().len(), 1);
        assert!(default.cluster_versions()[0].default_version());
        assert_eq!(default.cluster_versions()[0].default_platform_version(), Some("eks.7"));
        let extended = c
            .describe_cluster_versions()
            .version_status(VersionStatus::ExtendedSupport)
            .send()
            .await
            .unwrap();
        assert_eq!(listed(&extended), vec![("1.31".to_string(), Some(VersionStatus::ExtendedSupport))]);
        let picked = c
            .describe_cluster_versions()
            .cluster_versions("1.31")
            .cluster_versions("1.33")
            .send()
            .await
            .unwrap();
        assert_eq!(picked.cluster_versions().len(), 2);
        let paged = c
            .describe_cluster_versions()
            .max_results(1)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap();
        assert_eq!(paged.len(), 3);

        // 1.34 is not released yet: not a target.
        let err = c
            .update_cluster_version()
            .name("demo")
            .version("1.34")
            .send()
            .await
            .unwrap_err();
        service_error(&err, 400, "InvalidParameterException");
    });
}

#[test]
fn injected_faults_use_the_operations_modelled_errors() {
    let sb = TestSandbox::start(Some(&fast(
        "",
        "  faults:\n    api:\n      - { service: eks, operation: UpdateClusterVersion, fault: throttle }\n      - { service: eks, operation: DescribeCluster, fault: throttle, count: 2 }\n      - { service: eks, operation: DescribeUpdate, fault: unavailable }",
    )));
    sb.block_on(async {
        let c = client(&sb).await;
        let err = c
            .update_cluster_version()
            .name("demo")
            .version("1.34")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            service_error(&err, 429, "ThrottlingException"),
            "Rate exceeded"
        );
        assert!(err.into_service_error().is_throttling_exception());
        // DescribeCluster models no throttling: the fault arrives as ServiceUnavailable.
        let err = c.describe_cluster().name("demo").send().await.unwrap_err();
        service_error(&err, 503, "ServiceUnavailableException");
        assert!(err.into_service_error().is_service_unavailable_exception());
        // The SDK's standard retries ride over the second one.
        let retrying = client_with(&sb, RetryConfig::standard()).await;
        retrying
            .describe_cluster()
            .name("demo")
            .send()
            .await
            .expect("retried");
        // The next attempt works: the fault was for one request.
        let update = c
            .update_cluster_version()
            .name("demo")
            .version("1.34")
            .send()
            .await
            .expect("UpdateClusterVersion after the fault")
            .update
            .unwrap();
        let id = update.id().unwrap();
        // DescribeUpdate models neither throttling nor unavailability: ServerException.
        let err = c
            .describe_update()
            .name("demo")
            .update_id(id)
            .send()
            .await
            .unwrap_err();
        service_error(&err, 500, "ServerException");
        let done = finished(&c, id, None, None).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Successful));
    });
    let statuses: Vec<u16> = recorded(&sb, "UpdateClusterVersion")
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(statuses, vec![429, 200]);
    let describe: Vec<u16> = recorded(&sb, "DescribeCluster")
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(describe, vec![503, 503, 200]);
    assert!(
        recorded(&sb, "DescribeCluster")[0]
            .1
            .contains("injected=ServiceUnavailableException")
    );
}

/// Runs the real AWS CLI against the sandbox and parses its JSON output. A missing CLI fails
/// the test: these are the fidelity checks.
fn aws(sb: &TestSandbox, args: &[&str]) -> Value {
    let output = Command::new("aws")
        .args(["eks"])
        .args(args)
        .args(["--output", "json"])
        .envs(sb.env())
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("the `aws` CLI must be installed for the EKS fidelity tests");
    assert!(
        output.status.success(),
        "aws eks {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("aws prints JSON")
}

#[test]
fn aws_cli_describe_cluster_and_list_nodegroups() {
    let sb = TestSandbox::start(None);
    let out = aws(&sb, &["describe-cluster", "--name", "demo"]);
    let cluster = &out["cluster"];
    assert_eq!(cluster["name"], "demo");
    assert_eq!(cluster["version"], "1.33");
    assert_eq!(cluster["status"], "ACTIVE");
    assert_eq!(
        cluster["endpoint"],
        sb.sandbox.endpoints.kubernetes.as_str()
    );
    assert_eq!(cluster["upgradePolicy"]["supportType"], "EXTENDED");
    let out = aws(&sb, &["list-nodegroups", "--cluster-name", "demo"]);
    assert_eq!(out["nodegroups"], serde_json::json!(["general", "system"]));
    // The CLI pages through with its own nextToken handling.
    let out = aws(
        &sb,
        &[
            "list-nodegroups",
            "--cluster-name",
            "demo",
            "--page-size",
            "1",
        ],
    );
    assert_eq!(out["nodegroups"], serde_json::json!(["general", "system"]));
}

#[test]
fn aws_cli_describe_addon_versions() {
    let sb = TestSandbox::start(Some(&fast("", "")));
    let out = aws(
        &sb,
        &[
            "describe-addon-versions",
            "--kubernetes-version",
            "1.33",
            "--addon-name",
            "coredns",
        ],
    );
    let versions = out["addons"][0]["addonVersions"]
        .as_array()
        .expect("versions");
    assert_eq!(versions[0]["addonVersion"], "v1.12.4-eksbuild.1");
    assert_eq!(versions[0]["compatibilities"][0]["clusterVersion"], "1.33");
    assert_eq!(versions[0]["compatibilities"][0]["defaultVersion"], true);
    assert_eq!(versions[1]["compatibilities"][0]["defaultVersion"], false);
}

#[test]
fn aws_cli_update_cluster_version_and_describe_update() {
    let sb = TestSandbox::start(Some(&fast("", "")));
    let out = aws(
        &sb,
        &[
            "update-cluster-version",
            "--name",
            "demo",
            "--kubernetes-version",
            "1.34",
        ],
    );
    let update = &out["update"];
    assert_eq!(update["status"], "InProgress");
    assert_eq!(update["type"], "VersionUpdate");
    assert_eq!(
        update["params"][0],
        serde_json::json!({"type": "Version", "value": "1.34"})
    );
    let id = update["id"].as_str().expect("id").to_string();
    let mut status = String::new();
    for _ in 0..100 {
        let out = aws(
            &sb,
            &["describe-update", "--name", "demo", "--update-id", &id],
        );
        status = out["update"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if status != "InProgress" {
            break;
        }
    }
    assert_eq!(status, "Successful");
    let out = aws(&sb, &["describe-cluster", "--name", "demo"]);
    assert_eq!(out["cluster"]["version"], "1.34");
    assert_eq!(
        recorded(&sb, "UpdateClusterVersion"),
        vec![(200, "cluster=demo version=1.34".to_string())]
    );
}
