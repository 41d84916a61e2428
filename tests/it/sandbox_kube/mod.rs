//! The sandbox's Kubernetes API server, driven by the real `kubectl` (with the kubeconfig the
//! sandbox writes, whose exec plugin runs the real `aws eks get-token`) and by kube-rs with a
//! token from `cloud::token`.
//!
//! By client and topic: `kubectl` (the real CLI), `jobs` (Jobs run to their end and their pods'
//! logs, through kubectl), then kube-rs: `objects` (CRUD, lists,
//! selectors, status), `watch`, `tokens` (authentication) and `robustness` (injected throttling
//! and hostile requests).

mod jobs;
mod kubectl;
mod objects;
mod robustness;
mod tokens;
mod tool_jobs;
mod watch;

use std::sync::Arc;
use std::time::SystemTime;

use axum::http::{HeaderValue, header};
use eks_upgrade_core::cloud::token;
use eks_upgrade_sandbox::kube::store::ResourceType;
use eks_upgrade_sandbox::world::{ACCESS_KEY, SECRET_KEY};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use serde_json::Value;

use crate::common::TestSandbox;

/// A small cluster, a custom resource type nothing else reacts to, the deprecated-API metric,
/// and a throttled path for the fault test.
const SCENARIO: &str = r#"
apiVersion: eks-upgrade/v1
kind: Scenario
metadata: { name: kube-api }
spec:
  cluster: { name: demo, region: us-east-1, version: "1.33" }
  nodegroups:
    - { name: general, nodes: 3 }
  workloads:
    - { kind: Deployment, namespace: shop, name: web, replicas: 2 }
    - { kind: Deployment, namespace: shop, name: api, replicas: 1 }
  objects:
    - apiVersion: v1
      kind: ConfigMap
      metadata: { name: web-config, namespace: shop, labels: { app: web } }
      data: { LOG_LEVEL: info }
  resources:
    - { group: example.com, version: v1, kind: Widget, plural: widgets }
  deprecatedApiRequests:
    - { group: policy, version: v1beta1, resource: podsecuritypolicies, removedRelease: "1.25" }
  faults:
    api:
      - { service: kubernetes, operation: "GET /api/v1/namespaces/faulty", fault: throttle, count: 1 }
"#;

fn sandbox() -> TestSandbox {
    TestSandbox::start(Some(SCENARIO))
}

fn requests_to(sb: &TestSandbox, operation: &str) -> usize {
    sb.sandbox
        .world
        .requests
        .snapshot()
        .iter()
        .filter(|r| r.service == "kubernetes" && r.operation == operation)
        .count()
}

fn rt(sb: &TestSandbox, group: &str, plural: &str) -> Arc<ResourceType> {
    sb.sandbox
        .world
        .store
        .resource(group, "v1", plural)
        .expect("resource type")
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("CA PEM")
}

fn make_token(cluster: &str, secret: &str, at: SystemTime) -> String {
    let creds = aws_credential_types::Credentials::new(ACCESS_KEY, secret, None, None, "test");
    token::get_token(&creds, "us-east-1", cluster, at)
        .expect("token")
        .as_str()
        .to_string()
}

/// A client as the tool builds it: endpoint and CA from EKS, a presigned token, no kubeconfig.
fn client_with(sb: &TestSandbox, token: Option<&str>, retry: bool) -> kube::Client {
    let mut cfg = kube::Config::new(sb.sandbox.endpoints.kubernetes.parse().expect("URL"));
    cfg.root_cert = Some(vec![pem_to_der(&sb.sandbox.world.ca_pem)]);
    cfg.default_retry = retry;
    if let Some(t) = token {
        cfg.headers.push((
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {t}")).expect("header"),
        ));
    }
    let _guard = sb.runtime.enter();
    kube::Client::try_from(cfg).expect("client")
}

fn client(sb: &TestSandbox) -> kube::Client {
    client_with(
        sb,
        Some(&make_token("demo", SECRET_KEY, SystemTime::now())),
        true,
    )
}

fn dynamic(
    client: &kube::Client,
    gvk: (&str, &str, &str),
    plural: &str,
    ns: &str,
) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(gvk.0, gvk.1, gvk.2), plural);
    Api::namespaced_with(client.clone(), ns, &ar)
}

fn configmaps(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    dynamic(client, ("", "v1", "ConfigMap"), "configmaps", ns)
}

fn obj(value: Value) -> DynamicObject {
    serde_json::from_value(value).expect("object")
}

#[track_caller]
fn api_error<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> (u16, String) {
    match r {
        Err(kube::Error::Api(s)) => (s.code, s.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}
