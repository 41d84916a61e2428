//! The sandbox's Kubernetes API server, driven by the real `kubectl` (with the kubeconfig the
//! sandbox writes, whose exec plugin runs the real `aws eks get-token`) and by kube-rs with a
//! token from `cloud::token`.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderValue, header};
use eks_upgrade::cloud::token;
use eks_upgrade::sandbox::kube::selector::Selector;
use eks_upgrade::sandbox::kube::store::{ResourceType, Subresource};
use eks_upgrade::sandbox::world::{ACCESS_KEY, SECRET_KEY};
use futures::{StreamExt, TryStreamExt};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde_json::{Value, json};
use wait_timeout::ChildExt;

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

/// Polls `check` until it holds (generous: a hang must fail, timing is not measured).
fn eventually(sb: &TestSandbox, what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..1200 {
        if check() {
            return;
        }
        sb.block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
    }
    panic!("timed out waiting for: {what}");
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

// ---------------------------------------------------------------------------------------------
// kubectl

/// The real kubectl, pointed at the sandbox with a private discovery cache.
struct Kubectl {
    cache: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Kubectl {
    fn new(sb: &TestSandbox) -> Kubectl {
        Kubectl {
            cache: tempfile::tempdir().expect("cache dir"),
            env: sb.env(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.arg(format!("--cache-dir={}", self.cache.path().display()))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut child = self.command(args).spawn().unwrap_or_else(|e| {
            panic!(
                "kubectl must be installed for these tests (it is part of the machine image): {e}"
            )
        });
        let mut out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let out = std::thread::spawn(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut out, &mut s).ok();
            s
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut err, &mut s).ok();
            s
        });
        let status = match child.wait_timeout(Duration::from_secs(120)).expect("wait") {
            Some(s) => s,
            None => {
                child.kill().ok();
                panic!("kubectl {args:?} did not finish");
            }
        };
        Run {
            code: status.code(),
            stdout: out.join().expect("stdout reader"),
            stderr: err.join().expect("stderr reader"),
        }
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code,
            Some(0),
            "kubectl {args:?} failed\n--- stdout\n{}\n--- stderr\n{}",
            r.stdout,
            r.stderr
        );
        r.stdout
    }
}

#[test]
fn kubectl_gets_seeded_nodes_pods_and_deployments() {
    let sb = sandbox();
    let k = Kubectl::new(&sb);
    let nodes = k.ok(&["get", "nodes"]);
    let (seeded, _) =
        sb.sandbox
            .world
            .store
            .list(&rt(&sb, "", "nodes"), None, &Selector::default());
    assert_eq!(seeded.len(), 3);
    for n in &seeded {
        let name = n["metadata"]["name"].as_str().expect("node name");
        assert!(nodes.contains(name), "{name} missing from:\n{nodes}");
    }

    // Server-side Tables give kubectl its usual columns.
    let header = nodes.lines().next().unwrap_or("");
    for column in ["NAME", "STATUS", "ROLES", "AGE", "VERSION"] {
        assert!(header.contains(column), "{nodes}");
    }
    assert!(nodes.contains("Ready"), "{nodes}");

    let pods = k.ok(&["get", "pods", "-A"]);
    assert!(
        pods.lines().next().unwrap_or("").contains("RESTARTS"),
        "{pods}"
    );
    assert!(pods.contains("shop"), "{pods}");
    assert!(pods.contains("web-"), "{pods}");
    assert!(pods.contains("Running"), "{pods}");

    let deploys: Value =
        serde_json::from_str(&k.ok(&["get", "deploy", "-n", "shop", "-o", "json"])).expect("JSON");
    let mut names: Vec<&str> = deploys["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|d| d["metadata"]["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["api", "web"]);
}

#[test]
fn kubectl_version_reports_the_control_plane_minor() {
    let sb = sandbox();
    let v: Value =
        serde_json::from_str(&Kubectl::new(&sb).ok(&["version", "-o", "json"])).expect("JSON");
    assert_eq!(v["serverVersion"]["major"], "1");
    assert_eq!(v["serverVersion"]["minor"], "33");
    let git = v["serverVersion"]["gitVersion"]
        .as_str()
        .expect("gitVersion");
    assert!(git.starts_with("v1.33.") && git.contains("-eks-"), "{git}");

    sb.sandbox
        .world
        .set_control_plane_version(eks_upgrade::types::Version::new(1, 34));
    let v: Value =
        serde_json::from_str(&Kubectl::new(&sb).ok(&["version", "-o", "json"])).expect("JSON");
    assert_eq!(v["serverVersion"]["minor"], "34");
}

#[test]
fn kubectl_apply_creates_then_changes_a_configmap_and_a_backup() {
    let sb = sandbox();
    let k = Kubectl::new(&sb);
    let dir = tempfile::tempdir().expect("dir");
    let cm = dir.path().join("cm.yaml");
    let write_cm = |level: &str| {
        std::fs::write(
            &cm,
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: shop\ndata:\n  LEVEL: {level}\n  KEEP: \"yes\"\n"
            ),
        )
        .expect("write");
    };
    write_cm("info");
    let out = k.ok(&["apply", "-f", cm.to_str().expect("path")]);
    assert!(out.contains("configmap/settings created"), "{out}");
    write_cm("debug");
    let out = k.ok(&["apply", "-f", cm.to_str().expect("path")]);
    assert!(out.contains("configmap/settings configured"), "{out}");
    let stored = sb
        .sandbox
        .world
        .store
        .get(&rt(&sb, "", "configmaps"), Some("shop"), "settings")
        .expect("stored");
    assert_eq!(stored["data"], json!({"LEVEL": "debug", "KEEP": "yes"}));
    assert!(
        stored["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );

    let backup = dir.path().join("backup.yaml");
    std::fs::write(
        &backup,
        "apiVersion: velero.io/v1\nkind: Backup\nmetadata:\n  name: pre-upgrade\n  namespace: velero\n  labels: { run: test }\nspec:\n  excludedNamespaces: [kube-system]\n  ttl: 720h0m0s\n",
    )
    .expect("write");
    let out = k.ok(&["apply", "-f", backup.to_str().expect("path")]);
    assert!(
        out.contains("backup.velero.io/pre-upgrade created"),
        "{out}"
    );
    let stored = sb
        .sandbox
        .world
        .store
        .get(
            &rt(&sb, "velero.io", "backups"),
            Some("velero"),
            "pre-upgrade",
        )
        .expect("stored");
    assert_eq!(stored["spec"]["excludedNamespaces"], json!(["kube-system"]));
    // kubectl validated through the server (`fieldValidation`), not through OpenAPI v2.
    let records = sb.sandbox.world.requests.snapshot();
    assert!(
        records
            .iter()
            .any(|r| r.operation == "GET /openapi/v3" && r.status == 200)
    );
    assert!(
        !records
            .iter()
            .any(|r| r.operation.starts_with("GET /openapi/v2") && r.status == 200)
    );
}

#[test]
fn kubectl_create_sends_protobuf_and_scale_uses_the_subresource() {
    let sb = sandbox();
    let k = Kubectl::new(&sb);
    k.ok(&["create", "namespace", "team"]);
    k.ok(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "team",
        "--from-literal=a=b",
    ]);
    k.ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "-n",
        "team",
        "--from-literal=p=s3cret",
    ]);
    k.ok(&[
        "create",
        "deployment",
        "app",
        "-n",
        "team",
        "--image=nginx:1.27",
        "--replicas=2",
        "--port=80",
    ]);
    let store = &sb.sandbox.world.store;
    let cm = store
        .get(&rt(&sb, "", "configmaps"), Some("team"), "settings")
        .expect("configmap");
    assert_eq!(cm["data"], json!({"a": "b"}));
    let secret = store
        .get(&rt(&sb, "", "secrets"), Some("team"), "creds")
        .expect("secret");
    assert_eq!(
        (&secret["data"]["p"], &secret["type"]),
        (&json!("czNjcmV0"), &json!("Opaque"))
    );
    let d = store
        .get(&rt(&sb, "apps", "deployments"), Some("team"), "app")
        .expect("deployment");
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        80
    );

    let out = k.ok(&["scale", "deployment", "app", "-n", "team", "--replicas=0"]);
    assert!(out.contains("scaled"), "{out}");
    let d = store
        .get(&rt(&sb, "apps", "deployments"), Some("team"), "app")
        .expect("deployment");
    assert_eq!(d["spec"]["replicas"], 0);
    let table = k.ok(&["get", "deployments", "-n", "team"]);
    assert!(
        table.lines().next().unwrap_or("").contains("UP-TO-DATE"),
        "{table}"
    );
}

#[test]
fn kubectl_watch_sees_a_backup_created_meanwhile() {
    let sb = sandbox();
    let k = Kubectl::new(&sb);
    let mut child = k
        .command(&[
            "get",
            "backups.velero.io",
            "-A",
            "-w",
            "--request-timeout=60s",
        ])
        .spawn()
        .expect("kubectl must be installed");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The list, then the watch, on the same path.
    eventually(&sb, "kubectl to start watching", || {
        requests_to(&sb, "GET /apis/velero.io/v1/backups") >= 2
    });
    sb.sandbox
        .world
        .store
        .create(
            &rt(&sb, "velero.io", "backups"),
            Some("velero"),
            json!({"metadata": {"name": "made-meanwhile"}, "spec": {}}),
        )
        .expect("create");
    let mut seen = Vec::new();
    let found = loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.contains("made-meanwhile") => break true,
            Ok(line) => seen.push(line),
            Err(_) => break false,
        }
    };
    child.kill().ok();
    child.wait().ok();
    assert!(found, "the watch never showed the backup; saw {seen:?}");
}

#[test]
fn kubectl_wait_sees_a_status_change() {
    let sb = sandbox();
    let widgets = rt(&sb, "example.com", "widgets");
    let store = sb.sandbox.world.store.clone();
    store
        .create(
            &widgets,
            Some("shop"),
            json!({"metadata": {"name": "w1"}, "status": {"phase": "Pending"}}),
        )
        .expect("create");
    let k = Kubectl::new(&sb);
    let child = k
        .command(&[
            "wait",
            "widgets.example.com/w1",
            "-n",
            "shop",
            "--for=jsonpath={.status.phase}=Ready",
            "--timeout=90s",
        ])
        .spawn()
        .expect("kubectl must be installed");
    eventually(&sb, "kubectl wait to watch", || {
        requests_to(&sb, "GET /apis/example.com/v1/namespaces/shop/widgets") >= 2
    });
    store
        .patch(
            &widgets,
            Some("shop"),
            "w1",
            &json!({"status": {"phase": "Ready"}}),
            Subresource::Status,
        )
        .expect("patch");
    let out = child.wait_with_output().expect("kubectl wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("condition met"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kubectl_delete_reads_the_body_and_deletes() {
    let sb = sandbox();
    let k = Kubectl::new(&sb);
    let out = k.ok(&["delete", "configmap", "web-config", "-n", "shop"]);
    assert!(out.contains("deleted"), "{out}");
    assert!(
        sb.sandbox
            .world
            .store
            .get(&rt(&sb, "", "configmaps"), Some("shop"), "web-config")
            .is_err()
    );
    // The same kept-alive connection serves later requests.
    let out = k.ok(&["get", "configmaps", "-n", "shop"]);
    assert!(!out.contains("web-config"), "{out}");
    let missing = k.run(&["delete", "configmap", "web-config", "-n", "shop"]);
    assert_ne!(missing.code, Some(0));
    assert!(
        missing.stderr.contains("NotFound") || missing.stderr.contains("not found"),
        "{}",
        missing.stderr
    );
}

#[test]
fn kubectl_reads_metrics_and_refuses_a_bad_token() {
    let sb = sandbox();
    let k = Kubectl::new(&sb);
    let metrics = k.ok(&["get", "--raw", "/metrics"]);
    assert!(
        metrics.contains(
            "apiserver_requested_deprecated_apis{group=\"policy\",removed_release=\"1.25\",resource=\"podsecuritypolicies\",subresource=\"\",version=\"v1beta1\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("apiserver_request_total{"), "{metrics}");
    let bad = k.run(&["--token=k8s-aws-v1.bm9wZQ", "get", "nodes"]);
    assert_ne!(bad.code, Some(0));
    // kubectl's wording for a 401.
    assert!(
        bad.stderr.contains("You must be logged in to the server"),
        "{}",
        bad.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// kube-rs

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

#[test]
fn kube_crud_on_dynamic_objects() {
    let sb = sandbox();
    let c = client(&sb);
    let api = configmaps(&c, "shop");
    sb.block_on(async {
        let created = api
            .create(
                &PostParams::default(),
                &obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1", "labels": {"a": "1"}}, "data": {"k": "v"}})),
            )
            .await
            .expect("create");
        assert!(created.metadata.uid.is_some());
        let rv1 = created.metadata.resource_version.clone().expect("rv");

        let dry = api
            .create(
                &PostParams { dry_run: true, ..Default::default() },
                &obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry"}})),
            )
            .await
            .expect("dry-run create");
        assert_eq!(dry.metadata.name.as_deref(), Some("dry"));
        assert_eq!(api_error(api.get("dry").await).0, 404);

        let got = api.get("c1").await.expect("get");
        assert_eq!(got.data["data"]["k"], "v");

        let mut changed = got.clone();
        changed.data["data"]["k"] = json!("w");
        let replaced = api.replace("c1", &PostParams::default(), &changed).await.expect("replace");
        assert_ne!(replaced.metadata.resource_version.as_deref(), Some(rv1.as_str()));
        assert_eq!(replaced.data["data"]["k"], "w");

        let merged = api
            .patch("c1", &PatchParams::default(), &Patch::Merge(json!({"data": {"m": "1", "k": null}})))
            .await
            .expect("merge patch");
        assert_eq!(merged.data["data"], json!({"m": "1"}));

        let ops: json_patch::Patch = serde_json::from_value(json!([
            {"op": "add", "path": "/data/j", "value": "2"},
            {"op": "test", "path": "/data/m", "value": "1"},
        ]))
        .expect("json patch");
        let jp = api
            .patch("c1", &PatchParams::default(), &Patch::Json::<()>(ops))
            .await
            .expect("json patch");
        assert_eq!(jp.data["data"], json!({"m": "1", "j": "2"}));
        let failing: json_patch::Patch =
            serde_json::from_value(json!([{"op": "test", "path": "/data/m", "value": "nope"}])).expect("patch");
        assert_eq!(api_error(api.patch("c1", &PatchParams::default(), &Patch::Json::<()>(failing)).await).0, 422);

        let applied = api
            .patch(
                "c2",
                &PatchParams::apply("eks-upgrade").force(),
                &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c2"}, "data": {"x": "1"}})),
            )
            .await
            .expect("apply creates");
        assert_eq!(applied.data["data"]["x"], "1");
        let reapplied = api
            .patch(
                "c2",
                &PatchParams::apply("eks-upgrade").force(),
                &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c2"}, "data": {"y": "2"}})),
            )
            .await
            .expect("apply merges");
        assert_eq!(reapplied.data["data"]["y"], "2");

        let deleted = api.delete("c1", &DeleteParams::default()).await.expect("delete");
        assert!(deleted.left().is_some_and(|o| o.metadata.name.as_deref() == Some("c1")));
        assert_eq!(api_error(api.get("c1").await), (404, "NotFound".to_string()));

        for n in ["batch-1", "batch-2"] {
            api.create(
                &PostParams::default(),
                &obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n, "labels": {"batch": "yes"}}})),
            )
            .await
            .expect("create");
        }
        let gone = api
            .delete_collection(&DeleteParams::default(), &ListParams::default().labels("batch=yes"))
            .await
            .expect("deletecollection");
        assert_eq!(gone.left().map(|l| l.items.len()), Some(2));
        assert!(api.list(&ListParams::default().labels("batch=yes")).await.expect("list").items.is_empty());

        // Cluster-scoped objects and custom resources go through the same paths.
        let ns_api: Api<DynamicObject> = Api::all_with(
            c.clone(),
            &ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Namespace"), "namespaces"),
        );
        let ns = ns_api
            .create(&PostParams::default(), &obj(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})))
            .await
            .expect("namespace");
        assert_eq!(ns.data["status"]["phase"], "Active");
        let widgets = dynamic(&c, ("example.com", "v1", "Widget"), "widgets", "team-a");
        widgets
            .create(&PostParams::default(), &obj(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}})))
            .await
            .expect("custom resource");
        // Custom resources refuse strategic merge patches and unconditional updates.
        let smp = widgets
            .patch("w", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"size": 2}})))
            .await;
        assert_eq!(api_error(smp).0, 415);
        let mut w = widgets.get("w").await.expect("get widget");
        w.metadata.resource_version = None;
        assert_eq!(api_error(widgets.replace("w", &PostParams::default(), &w).await).0, 422);
    });
}

#[test]
fn kube_lists_page_by_page_with_continue_tokens() {
    let sb = sandbox();
    let store = sb.sandbox.world.store.clone();
    let ns_rt = rt(&sb, "", "namespaces");
    let cm_rt = rt(&sb, "", "configmaps");
    store
        .create(&ns_rt, None, json!({"metadata": {"name": "bulk"}}))
        .expect("namespace");
    for i in 0..1234 {
        store
            .create(
                &cm_rt,
                Some("bulk"),
                json!({"metadata": {"name": format!("cm-{i:05}"), "labels": {"parity": if i % 2 == 0 { "even" } else { "odd" }}}}),
            )
            .expect("create");
    }
    let c = client(&sb);
    let api = configmaps(&c, "bulk");
    sb.block_on(async {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        let mut first_rv = None;
        loop {
            let mut lp = ListParams::default().limit(100);
            if let Some(t) = &token {
                lp = lp.continue_token(t);
            }
            let page = api.list(&lp).await.expect("page");
            assert!(page.items.len() <= 100);
            pages += 1;
            let rv = page.metadata.resource_version.clone();
            assert_eq!(
                *first_rv.get_or_insert(rv.clone()),
                rv,
                "every page reports the first page's version"
            );
            names.extend(page.items.iter().filter_map(|o| o.metadata.name.clone()));
            match page.metadata.continue_ {
                Some(t) if !t.is_empty() => {
                    assert_eq!(
                        page.metadata.remaining_item_count,
                        Some((1234 - names.len()) as i64)
                    );
                    token = Some(t)
                }
                _ => break,
            }
        }
        assert_eq!(pages, 13);
        assert_eq!(names.len(), 1234);
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            sorted, names,
            "pages are in order and never repeat an object"
        );

        // Filtered pages, an unlimited list, a huge limit, and a bad token.
        let odd = api
            .list(&ListParams::default().labels("parity=odd").limit(1000))
            .await
            .expect("odd");
        assert_eq!(odd.items.len(), 617);
        let all = api.list(&ListParams::default()).await.expect("all");
        assert_eq!(all.items.len(), 1234);
        let huge = api
            .list(&ListParams::default().limit(u32::MAX))
            .await
            .expect("huge");
        assert_eq!(huge.items.len(), 1234);
        assert_eq!(
            api_error(
                api.list(&ListParams::default().continue_token("garbage"))
                    .await
            )
            .0,
            400
        );
    });
}

#[test]
fn kube_label_and_field_selectors() {
    let sb = sandbox();
    let c = client(&sb);
    let api = configmaps(&c, "shop");
    sb.block_on(async {
        for (name, tier) in [("a", "front"), ("b", "back"), ("c", "front")] {
            api.create(
                &PostParams::default(),
                &obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"tier": tier}}})),
            )
            .await
            .expect("create");
        }
        let names = |l: kube::core::ObjectList<DynamicObject>| {
            l.items.into_iter().filter_map(|o| o.metadata.name).collect::<Vec<_>>()
        };
        assert_eq!(names(api.list(&ListParams::default().labels("tier=front")).await.expect("eq")), ["a", "c"]);
        assert_eq!(names(api.list(&ListParams::default().labels("tier in (back),tier!=front")).await.expect("set")), ["b"]);
        assert_eq!(names(api.list(&ListParams::default().fields("metadata.name=c")).await.expect("field")), ["c"]);
        assert_eq!(names(api.list(&ListParams::default().labels("tier").fields("metadata.name!=a")).await.expect("both")), ["b", "c"]);
        assert_eq!(api_error(api.list(&ListParams::default().fields("data.x=1")).await).0, 400);
        assert_eq!(api_error(api.list(&ListParams::default().labels("a in x")).await).0, 400);

        let pods = dynamic(&c, ("", "v1", "Pod"), "pods", "shop");
        let running = pods.list(&ListParams::default().fields("status.phase=Running")).await.expect("pods");
        assert_eq!(running.items.len(), 3, "the simulator runs 2 web and 1 api pods");
    });
}

#[test]
fn kube_watch_from_a_resource_version() {
    let sb = sandbox();
    let c = client(&sb);
    let api = configmaps(&c, "shop");
    sb.block_on(async {
        let rv = api
            .list(&ListParams::default())
            .await
            .expect("list")
            .metadata
            .resource_version
            .expect("rv");
        api.create(
            &PostParams::default(),
            &obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w1"}})),
        )
        .await
        .expect("create");
        api.patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"x": "1"}})),
        )
        .await
        .expect("patch");
        api.delete("w1", &DeleteParams::default())
            .await
            .expect("delete");

        let events: Vec<WatchEvent<DynamicObject>> = api
            .watch(&WatchParams::default().timeout(2), &rv)
            .await
            .expect("watch")
            .try_collect()
            .await
            .expect("events");
        let kinds: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                WatchEvent::Added(o) if o.metadata.name.as_deref() == Some("w1") => {
                    Some("ADDED".into())
                }
                WatchEvent::Modified(o) if o.metadata.name.as_deref() == Some("w1") => {
                    Some("MODIFIED".into())
                }
                WatchEvent::Deleted(o) if o.metadata.name.as_deref() == Some("w1") => {
                    Some("DELETED".into())
                }
                WatchEvent::Error(s) => Some(format!("ERROR {}", s.code)),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"]);
        // Bookmarks were allowed (kube-rs asks for them): one closes the stream.
        assert!(
            matches!(events.last(), Some(WatchEvent::Bookmark(_))),
            "{events:?}"
        );

        // From "0": the current objects first, as ADDED; then live changes, with selectors.
        let mut stream = api
            .watch(&WatchParams::default().labels("app=web").timeout(30), "0")
            .await
            .expect("watch")
            .boxed();
        match stream.try_next().await.expect("event") {
            Some(WatchEvent::Added(o)) => {
                assert_eq!(o.metadata.name.as_deref(), Some("web-config"))
            }
            other => panic!("expected the synthetic ADDED, got {other:?}"),
        }
        api.patch(
            "web-config",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
        )
        .await
        .expect("relabel");
        match stream.try_next().await.expect("event") {
            Some(WatchEvent::Deleted(o)) => {
                assert_eq!(o.metadata.name.as_deref(), Some("web-config"))
            }
            other => panic!("an object leaving the selector is DELETED, got {other:?}"),
        }
    });
}

#[test]
fn kube_runtime_watcher_lists_then_follows_in_both_modes() {
    use kube::runtime::watcher::{self, Event};
    let sb = sandbox();
    let c = client(&sb);
    let api = configmaps(&c, "shop");
    for (mode, config) in [
        ("list then watch", watcher::Config::default()),
        (
            "streaming list",
            watcher::Config::default().streaming_lists(),
        ),
    ] {
        sb.block_on(async {
            let mut events = watcher::watcher(api.clone(), config).boxed();
            let mut initial = Vec::new();
            loop {
                match tokio::time::timeout(Duration::from_secs(30), events.try_next()).await {
                    Ok(Ok(Some(Event::Init))) => {}
                    Ok(Ok(Some(Event::InitApply(o)))) => initial.extend(o.metadata.name),
                    Ok(Ok(Some(Event::InitDone))) => break,
                    other => panic!("{mode}: unexpected {other:?}"),
                }
            }
            assert!(
                initial.iter().any(|n| n == "web-config"),
                "{mode}: {initial:?}"
            );
            let name = format!("new-{}", mode.len());
            api.create(
                &PostParams::default(),
                &obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})),
            )
            .await
            .expect("create");
            loop {
                match tokio::time::timeout(Duration::from_secs(30), events.try_next()).await {
                    Ok(Ok(Some(Event::Apply(o))))
                        if o.metadata.name.as_deref() == Some(name.as_str()) =>
                    {
                        break;
                    }
                    Ok(Ok(Some(_))) => {}
                    other => panic!("{mode}: unexpected {other:?}"),
                }
            }
        });
    }
}

#[test]
fn kube_watch_from_a_compacted_version_is_410() {
    let sb = sandbox();
    let store = sb.sandbox.world.store.clone();
    let cm_rt = rt(&sb, "", "configmaps");
    for i in 0..20_100 {
        store
            .patch(
                &cm_rt,
                Some("shop"),
                "web-config",
                &json!({"data": {"i": i.to_string()}}),
                Subresource::Main,
            )
            .expect("patch");
    }
    let c = client(&sb);
    let api = configmaps(&c, "shop");
    sb.block_on(async {
        let events: Vec<WatchEvent<DynamicObject>> = api
            .watch(&WatchParams::default().timeout(5), "2")
            .await
            .expect("a too-old watch is still a 200 stream")
            .try_collect()
            .await
            .expect("events");
        match events.as_slice() {
            [WatchEvent::Error(s)] => {
                assert_eq!((s.code, s.reason.as_str()), (410, "Expired"));
                assert!(
                    s.message.starts_with("too old resource version: 2"),
                    "{}",
                    s.message
                );
            }
            other => panic!("expected one ERROR event, got {other:?}"),
        }
    });
}

#[test]
fn kube_status_errors_carry_code_and_reason() {
    let sb = sandbox();
    let c = client(&sb);
    let api = configmaps(&c, "shop");
    sb.block_on(async {
        assert_eq!(api_error(api.get("missing").await), (404, "NotFound".into()));
        let dup = api
            .create(&PostParams::default(), &obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config"}})))
            .await;
        assert_eq!(api_error(dup), (409, "AlreadyExists".into()));
        let mut stale = api.get("web-config").await.expect("get");
        api.patch("web-config", &PatchParams::default(), &Patch::Merge(json!({"data": {"x": "1"}})))
            .await
            .expect("patch");
        stale.data["data"] = json!({"y": "2"});
        assert_eq!(api_error(api.replace("web-config", &PostParams::default(), &stale).await), (409, "Conflict".into()));
        let bad = api
            .create(&PostParams::default(), &obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}})))
            .await;
        assert_eq!(api_error(bad), (422, "Invalid".into()));
        let nowhere = configmaps(&c, "no-such-namespace")
            .create(&PostParams::default(), &obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})))
            .await;
        assert_eq!(api_error(nowhere), (404, "NotFound".into()));
        let unknown = dynamic(&c, ("nope.io", "v1", "Thing"), "things", "shop");
        assert_eq!(api_error(unknown.list(&ListParams::default()).await).0, 404);
    });
}

#[test]
fn kube_status_subresource_is_separate() {
    let sb = sandbox();
    let c = client(&sb);
    let pvcs = dynamic(
        &c,
        ("", "v1", "PersistentVolumeClaim"),
        "persistentvolumeclaims",
        "shop",
    );
    sb.block_on(async {
        let created = pvcs
            .create(
                &PostParams::default(),
                &obj(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"]}, "status": {"phase": "Bound"}})),
            )
            .await
            .expect("create");
        assert!(created.data.get("status").is_none(), "create ignores status");
        let st = pvcs
            .patch_status("data", &PatchParams::default(), &Patch::Merge(json!({"spec": {"volumeName": "x"}, "status": {"phase": "Pending"}})))
            .await
            .expect("patch status");
        assert_eq!(st.data["status"]["phase"], "Pending");
        assert!(st.data["spec"].get("volumeName").is_none(), "/status does not change spec");
        let main = pvcs
            .patch("data", &PatchParams::default(), &Patch::Merge(json!({"spec": {"volumeName": "y"}, "status": {"phase": "Lost"}})))
            .await
            .expect("patch main");
        assert_eq!(main.data["status"]["phase"], "Pending", "the main resource does not change status");
        assert_eq!(main.data["spec"]["volumeName"], "y");
        assert_eq!(main.metadata.generation, Some(2));
        let got = pvcs.get_status("data").await.expect("get status");
        assert_eq!(got.data["status"]["phase"], "Pending");
    });
}

#[test]
fn kube_refuses_bad_expired_and_foreign_tokens() {
    let sb = sandbox();
    let now = SystemTime::now();
    let cases = [
        ("garbage", "not-a-token".to_string()),
        ("wrong cluster", make_token("prod", SECRET_KEY, now)),
        ("wrong secret", make_token("demo", "not-the-secret", now)),
        (
            "expired",
            make_token("demo", SECRET_KEY, now - Duration::from_secs(16 * 60)),
        ),
    ];
    for (what, t) in cases {
        let c = client_with(&sb, Some(&t), false);
        let r = sb.block_on(async { configmaps(&c, "shop").list(&ListParams::default()).await });
        assert_eq!(api_error(r), (401, "Unauthorized".into()), "{what}");
        let v = sb.block_on(c.apiserver_version());
        assert!(
            v.is_err(),
            "{what}: a bad token is refused even for /version"
        );
    }
    // A token signed 14 minutes ago is still good; anonymous callers see only public paths.
    let old = client_with(
        &sb,
        Some(&make_token(
            "demo",
            SECRET_KEY,
            now - Duration::from_secs(14 * 60),
        )),
        false,
    );
    sb.block_on(async { configmaps(&old, "shop").list(&ListParams::default()).await })
        .expect("still valid");
    let anonymous = client_with(&sb, None, false);
    let v = sb
        .block_on(anonymous.apiserver_version())
        .expect("/version is public");
    assert_eq!(v.minor, "33");
    let r = sb.block_on(async {
        configmaps(&anonymous, "shop")
            .list(&ListParams::default())
            .await
    });
    assert_eq!(api_error(r), (403, "Forbidden".into()));
}

#[test]
fn the_aws_cli_token_is_accepted() {
    let sb = sandbox();
    let get_token = |cluster: &str| -> String {
        let out = Command::new("aws")
            .args([
                "--region",
                "us-east-1",
                "eks",
                "get-token",
                "--cluster-name",
                cluster,
                "--output",
                "json",
            ])
            .envs(sb.env())
            .output()
            .unwrap_or_else(|e| panic!("the AWS CLI must be installed for this test: {e}"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("ExecCredential JSON");
        v["status"]["token"].as_str().expect("token").to_string()
    };
    let good = client_with(&sb, Some(&get_token("demo")), false);
    let node_api: Api<DynamicObject> = Api::all_with(
        good,
        &ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Node"), "nodes"),
    );
    let nodes = sb
        .block_on(async { node_api.list(&ListParams::default()).await })
        .expect("nodes with the AWS CLI's token");
    assert_eq!(nodes.items.len(), 3);
    let foreign = client_with(&sb, Some(&get_token("prod")), false);
    let r = sb.block_on(async {
        configmaps(&foreign, "shop")
            .list(&ListParams::default())
            .await
    });
    assert_eq!(api_error(r).0, 401);
}

#[test]
fn injected_throttling_answers_429_with_retry_after() {
    let sb = sandbox();
    let c = client_with(
        &sb,
        Some(&make_token("demo", SECRET_KEY, SystemTime::now())),
        false,
    );
    let req = || {
        axum::http::Request::builder()
            .uri("/api/v1/namespaces/faulty/configmaps")
            .body(kube::client::Body::from(Vec::new()))
            .expect("request")
    };
    let first = sb.block_on(c.send(req())).expect("response");
    assert_eq!(first.status().as_u16(), 429);
    assert_eq!(
        first
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let second = sb.block_on(c.send(req())).expect("response");
    assert_eq!(
        second.status().as_u16(),
        200,
        "the fault was for one request only"
    );
    let statuses: Vec<u16> = sb
        .sandbox
        .world
        .requests
        .snapshot()
        .iter()
        .filter(|r| r.operation == "GET /api/v1/namespaces/faulty/configmaps")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [429, 200]);
}

#[test]
fn hostile_requests_get_status_errors_not_panics() {
    let sb = sandbox();
    // No retries: a 504 is the answer under test, not something to wait out.
    let c = client_with(
        &sb,
        Some(&make_token("demo", SECRET_KEY, SystemTime::now())),
        false,
    );
    let send = |method: &str, uri: &str, content_type: &str, body: Vec<u8>| -> (u16, Value) {
        let req = axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", content_type)
            .body(kube::client::Body::from(body))
            .expect("request");
        sb.block_on(async {
            let resp = c.send(req).await.expect("response");
            let code = resp.status().as_u16();
            let bytes = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .expect("body")
                .to_bytes();
            (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
        })
    };
    let cm = "/api/v1/namespaces/shop/configmaps";
    let (code, body) = send("POST", cm, "application/json", b"{not json".to_vec());
    assert_eq!((code, body["reason"].as_str()), (400, Some("BadRequest")));
    assert_eq!(
        send("POST", cm, "application/json", b"[1,2]".to_vec()).0,
        400
    );
    assert_eq!(
        send(
            "POST",
            cm,
            "application/vnd.kubernetes.protobuf",
            vec![0, 1]
        )
        .0,
        400,
        "malformed protobuf"
    );
    assert_eq!(send("POST", cm, "application/cbor", vec![0xa0]).0, 415);
    assert_eq!(
        send("POST", cm, "application/json", vec![b' '; 4 * 1024 * 1024]).0,
        413
    );
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(
        send("POST", cm, "application/json", deep.into_bytes()).0,
        400
    );
    assert_eq!(
        send(
            "PATCH",
            &format!("{cm}/web-config"),
            "text/plain",
            b"{}".to_vec()
        )
        .0,
        415
    );
    assert_eq!(
        send(
            "PATCH",
            &format!("{cm}/web-config"),
            "application/json-patch+json",
            b"{}".to_vec()
        )
        .0,
        400
    );
    assert_eq!(send("GET", "/apis/../../etc/passwd", "", Vec::new()).0, 404);
    assert_eq!(send("GET", "/api/v1/nodes/x/y/z/w", "", Vec::new()).0, 404);
    assert_eq!(
        send("GET", "/api/v1/namespaces/shop/nodes", "", Vec::new()).0,
        404
    );
    assert_eq!(
        send("GET", &format!("{cm}?limit=-5"), "", Vec::new()).0,
        200
    );
    assert_eq!(
        send(
            "GET",
            &format!("{cm}?limit=99999999999999999999"),
            "",
            Vec::new()
        )
        .0,
        400
    );
    assert_eq!(
        send(
            "GET",
            &format!("{cm}?watch=true&resourceVersion=abc"),
            "",
            Vec::new()
        )
        .0,
        400
    );
    assert_eq!(
        send(
            "GET",
            &format!("{cm}?resourceVersion=999999999"),
            "",
            Vec::new()
        )
        .0,
        504
    );
    assert_eq!(
        send("PUT", "/version", "application/json", b"{}".to_vec()).0,
        405
    );
    assert_eq!(
        send(
            "DELETE",
            &format!("{cm}/web-config"),
            "application/json",
            b"{oops".to_vec()
        )
        .0,
        400
    );
    assert_eq!(send("GET", "/openapi/v2", "", Vec::new()).0, 404);
    for health in ["/healthz", "/livez", "/readyz", "/readyz/ping"] {
        assert_eq!(send("GET", health, "", Vec::new()).0, 200, "{health}");
    }
    // Server-side apply takes YAML as well as JSON, and needs a field manager.
    let yaml =
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: b\n".to_vec();
    let applied = send(
        "PATCH",
        &format!("{cm}/from-yaml?fieldManager=t"),
        "application/apply-patch+yaml",
        yaml.clone(),
    );
    assert_eq!((applied.0, &applied.1["data"]["a"]), (201, &json!("b")));
    assert_eq!(
        send(
            "PATCH",
            &format!("{cm}/from-yaml"),
            "application/apply-patch+yaml",
            yaml
        )
        .0,
        400
    );

    // Discovery and OpenAPI, as kubectl reads them.
    let (_, apis) = send("GET", "/apis", "", Vec::new());
    assert!(
        apis["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .any(|g| g["name"] == "velero.io")
    );
    let (_, core) = send("GET", "/api/v1", "", Vec::new());
    let resources = core["resources"].as_array().expect("resources");
    assert!(
        resources
            .iter()
            .any(|r| r["name"] == "pods/status" && r["verbs"] == json!(["get", "patch", "update"]))
    );
    assert!(resources.iter().any(|r| r["name"] == "nodes"
        && r["namespaced"] == false
        && r["shortNames"] == json!(["no"])));
    let (_, index) = send("GET", "/openapi/v3", "", Vec::new());
    let url = index["paths"]["apis/velero.io/v1"]["serverRelativeURL"]
        .as_str()
        .expect("velero GV")
        .to_string();
    let (code, doc) = send("GET", &url, "", Vec::new());
    assert_eq!(code, 200);
    let patch = &doc["paths"]["/apis/velero.io/v1/namespaces/{namespace}/backups/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({"group": "velero.io", "version": "v1", "kind": "Backup"})
    );
    assert!(
        patch["parameters"]
            .as_array()
            .expect("params")
            .iter()
            .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
    );
}
