//! The emulated EKS API, driven by the real clients: `aws-sdk-eks` for every rule, and the real
//! `aws` CLI for wire fidelity.
//!
//! By topic: `clusters` (describing and listing), `updates` (control-plane upgrades and
//! rollback), `nodegroups`, `addons`, `insights`, `faults` (injected failures), `wire` (the
//! raw HTTP form and the `aws` CLI), `rollback` and `api_usage` (what a rollback needs first),
//! `automode` and `fargate` (compute EKS moves, or cannot), `cli_rollback` (the `aws` CLI
//! through a rollback), and several clusters in one account: `lifecycle` (clusters created and
//! deleted), `lifecycle_compute` (their node groups and add-ons), `access_entries`.

mod access_entries;
mod addons;
mod api_usage;
mod automode;
mod cli_rollback;
mod clusters;
mod fargate;
mod faults;
mod green_from_blue;
mod insights;
mod karpenter;
mod lifecycle;
mod lifecycle_compute;
mod nodegroups;
mod rollback;
mod updates;
mod wire;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_eks::Client;
use aws_sdk_eks::config::Credentials;
use aws_sdk_eks::config::retry::RetryConfig;
use aws_sdk_eks::error::ProvideErrorMetadata;
use aws_sdk_eks::types::{Update, UpdateParamType, UpdateStatus};
use eks_upgrade_core::types::Version;
use eks_upgrade_sandbox::sim::nodes;
use eks_upgrade_sandbox::world::{ACCESS_KEY, SECRET_KEY};
use serde_json::Value;

use crate::common::{POLL_TIMEOUT, TestSandbox, poll_async};

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

/// Add-ons of a cluster that moved them to 1.33 with its control plane: coredns and kube-proxy
/// are then at versions 1.32 does not support.
const ADDONS_AT_N: &str = r#"    - { name: vpc-cni, version: v1.19.2-eksbuild.1 }
    - { name: coredns, version: v1.12.4-eksbuild.1, configurationValues: '{"replicaCount":3}' }
    - { name: kube-proxy, version: v1.33.3-eksbuild.2 }"#;

/// Add-ons at versions that 1.32 supports (and 1.33, but for kube-proxy).
const ADDONS_BACK: &str = r#"    - { name: vpc-cni, version: v1.19.2-eksbuild.1 }
    - { name: coredns, version: v1.11.4-eksbuild.2, configurationValues: '{"replicaCount":3}' }
    - { name: kube-proxy, version: v1.32.3-eksbuild.2 }"#;

/// A 1.33 cluster `demo` whose control plane was upgraded in place from 1.32 (`cluster` is
/// appended to the cluster's flow mapping: `, lastUpgradeAge: 2d` opens the rollback window),
/// with node groups `general` (2 nodes) and `system` (1) at `nodes`, the given add-ons and fast
/// timings; `extra` is appended to `spec`.
fn upgraded(cluster: &str, nodes: &str, addons: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: eks-upgrade/v1
kind: Scenario
metadata: {{ name: eks-rollback-test }}
spec:
  speed: 600
  cluster: {{ name: demo, region: us-east-1, version: "1.33"{cluster} }}
  nodegroups:
    - {{ name: general, nodes: 2, version: "{nodes}" }}
    - {{ name: system, nodes: 1, version: "{nodes}" }}
  addons:
{addons}
  velero: {{ installed: false }}
  {TIMINGS}
{extra}
"#
    )
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

/// Polls DescribeUpdate until the update is no longer InProgress.
async fn finished(c: &Client, id: &str, nodegroup: Option<&str>, addon: Option<&str>) -> Update {
    poll_async(
        &format!("update `{id}` to finish"),
        POLL_TIMEOUT,
        async || {
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
            (update.status() != Some(&UpdateStatus::InProgress)).then_some(update)
        },
    )
    .await
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

const DEPRECATED_1_34: &str = "  deprecatedApiRequests:\n    - { group: resource.k8s.io, version: v1beta1, resource: resourceclaims, removedRelease: \"1.34\" }";

fn container_image(sb: &TestSandbox, plural: &str, name: &str) -> String {
    let store = &sb.sandbox.world.store;
    let rt = store.resource("apps", "v1", plural).unwrap();
    let obj = store.get(&rt, Some("kube-system"), name).unwrap();
    obj.pointer("/spec/template/spec/containers/0/image")
        .and_then(Value::as_str)
        .unwrap()
        .to_string()
}
