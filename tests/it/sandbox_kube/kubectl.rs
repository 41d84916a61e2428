//! The real `kubectl`, with the kubeconfig the sandbox writes: get, version, apply, create and
//! scale, watch, wait, delete, and raw metrics.

use std::process::Command;
use std::time::Duration;

use super::{requests_to, rt, sandbox};
use crate::common::{Output, POLL_TIMEOUT, TestSandbox, Timed, poll};
use eks_upgrade_sandbox::kube::selector::Selector;
use eks_upgrade_sandbox::kube::store::Subresource;
use serde_json::{Value, json};

/// The real kubectl, pointed at the sandbox with a private discovery cache.
pub(super) struct Kubectl {
    cache: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
}

impl Kubectl {
    pub(super) fn new(sb: &TestSandbox) -> Kubectl {
        Kubectl {
            cache: tempfile::tempdir().expect("cache dir"),
            env: sb.env(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.arg(format!("--cache-dir={}", self.cache.path().display()))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        c
    }

    pub(super) fn run(&self, args: &[&str]) -> Output {
        self.command(args).output_timed().unwrap_or_else(|e| {
            panic!(
                "kubectl must be installed for these tests (it is part of the machine image): {e}"
            )
        })
    }

    #[track_caller]
    pub(super) fn ok(&self, args: &[&str]) -> String {
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
        .set_control_plane_version(eks_upgrade_core::types::Version::new(1, 34));
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
    let child = k
        .command(&[
            "get",
            "backups.velero.io",
            "-A",
            "-w",
            "--request-timeout=60s",
        ])
        .spawn_timed()
        .expect("kubectl must be installed");
    // The list, then the watch, on the same path.
    poll("kubectl to start watching", POLL_TIMEOUT, || {
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
    poll(
        "the watch to show the backup",
        Duration::from_secs(60),
        || {
            let seen = child.stdout_so_far();
            if seen.lines().any(|l| l.contains("made-meanwhile")) {
                Ok(())
            } else {
                Err(format!("the watch never showed the backup; saw {seen:?}"))
            }
        },
    );
    child.kill();
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
        .spawn_timed()
        .expect("kubectl must be installed");
    poll("kubectl wait to watch", POLL_TIMEOUT, || {
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
    let out = child.wait();
    assert!(
        out.code == Some(0) && out.stdout.contains("condition met"),
        "{}\n{}",
        out.stdout,
        out.stderr
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
    // A request counts once it is answered, so the `/metrics` request itself is not in its own
    // answer: make sure one request was answered before.
    k.ok(&["get", "namespaces"]);
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

/// The cells of the row of `table` (kubectl's plain output) whose first column is `name`.
fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&name))
        .unwrap_or_else(|| panic!("no row `{name}` in:\n{table}"))
}

#[test]
fn kubectl_lists_karpenter_objects_with_their_crd_columns_and_category() {
    let text = std::fs::read_to_string(crate::common::repo().join("examples/sandbox/mixed.yaml"))
        .expect("mixed.yaml");
    let sb = TestSandbox::start(Some(&text));
    let k = Kubectl::new(&sb);

    let pools = k.ok(&["get", "nodepools"]);
    assert_eq!(
        row(&pools, "NAME"),
        ["NAME", "NODECLASS", "NODES", "READY", "AGE"]
    );
    assert_eq!(
        row(&pools, "default")[..4],
        ["default", "default", "3", "True"]
    );

    let claims = k.ok(&["get", "nodeclaims", "-o", "wide"]);
    assert_eq!(
        row(&claims, "NAME"),
        [
            "NAME",
            "TYPE",
            "CAPACITY",
            "ZONE",
            "NODE",
            "READY",
            "AGE",
            "IMAGEID",
            "ID",
            "NODEPOOL",
            "NODECLASS",
            "DRIFTED"
        ]
    );
    let gpu = claims
        .lines()
        .find(|l| l.starts_with("gpu-"))
        .unwrap_or_else(|| panic!("no gpu claim in:\n{claims}"));
    for cell in [
        "g5.xlarge",
        "on-demand",
        "True",
        "ami-0123456789abcdef0",
        " gpu ",
    ] {
        assert!(gpu.contains(cell), "`{cell}` not in: {gpu}");
    }

    let classes = k.ok(&["get", "ec2nc", "-o", "wide"]);
    assert_eq!(row(&classes, "NAME"), ["NAME", "READY", "AGE", "ROLE"]);
    let default = row(&classes, "default");
    assert_eq!((default[1], default[3]), ("True", "KarpenterNodeRole-demo"));

    // The `karpenter` category lists all three kinds.
    let all = k.ok(&["get", "karpenter"]);
    for object in [
        "nodepool.karpenter.sh/default",
        "nodeclaim.karpenter.sh/gpu-",
        "ec2nodeclass.karpenter.k8s.aws/gpu",
    ] {
        assert!(all.contains(object), "`{object}` not in:\n{all}");
    }
}
