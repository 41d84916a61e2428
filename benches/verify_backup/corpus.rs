//! The benchmark's two corpora, written as Velero writes a backup: a gzip'd tar whose first
//! entry is `metadata/version`, then every item twice (the unversioned path and the
//! `-preferredversion` path), and the resource list (`apiVersion/Kind` → names) that goes beside
//! it.
//!
//! - `noise`: Secrets whose data is base64 noise that gzip cannot shrink; few items per byte, so
//!   inflate dominates.
//! - `real`: objects shaped like a real cluster's — Deployments with their managed fields and
//!   last-applied annotation, ConfigMaps of configuration text, Secrets with short base64
//!   values, Helm release Secrets (a gzip'd, doubly base64'd release), and a few large
//!   CustomResourceDefinitions — compressed at gzip's default level as Velero does (Go's
//!   `gzip.NewWriter`). They shrink about 5–10×, so the same compressed size holds many more
//!   items, and tar and JSON cost more than inflate.

use std::collections::BTreeMap;
use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};

/// A reproducible pseudo-random stream (xorshift64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16) as usize]))
            .collect()
    }

    pub fn base64(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        (0..len)
            .map(|_| char::from(ALPHABET[self.below(64) as usize]))
            .collect()
    }

    fn uid(&mut self) -> String {
        format!(
            "{}-{}-4{}-8{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(3),
            self.hex(3),
            self.hex(12)
        )
    }
}

/// Which corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corpus {
    Noise,
    Real,
}

impl Corpus {
    pub fn word(self) -> &'static str {
        match self {
            Corpus::Noise => "noise",
            Corpus::Real => "real",
        }
    }
}

/// Writes the tarball at `path`; returns the resource list and the item count.
pub fn write(
    path: &std::path::Path,
    corpus: Corpus,
    items: u64,
    item_bytes: usize,
) -> (Value, u64) {
    let file = std::fs::File::create(path).expect("create tarball");
    let level = match corpus {
        // Level does not matter for noise; `fast` keeps generation quick.
        Corpus::Noise => Compression::fast(),
        Corpus::Real => Compression::default(),
    };
    let mut tar = tar::Builder::new(GzEncoder::new(
        std::io::BufWriter::with_capacity(1 << 20, file),
        level,
    ));
    append(&mut tar, "metadata/version", b"1.1.0\n");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut list: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut batch = Vec::new();
    // 200 namespaces, each a run of consecutive items.
    let team = |i: u64| i * 200 / items.max(1);
    for i in 0..items {
        // Namespace by namespace, names ascending: the order Velero writes a kind's items in
        // (it lists them from the API server, which returns them sorted).
        let ns = format!("team-{:03}", team(i));
        let (gr, api_version, kind, namespace, name, body) = match corpus {
            Corpus::Noise => {
                let name = format!("secret-{i:06}");
                let body = json!({
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": { "name": name, "namespace": ns,
                        "uid": format!("{i:08x}-0000-4000-8000-000000000000"),
                        "resourceVersion": i.to_string() },
                    "type": "Opaque",
                    "data": { "blob": rng.base64(item_bytes) },
                });
                ("secrets", "v1", "Secret", Some(ns), name, body)
            }
            Corpus::Real => real_item(&mut rng, i, ns),
        };
        let bytes = serde_json::to_vec(&body).expect("JSON");
        batch.push((gr, api_version, kind, namespace, name, bytes));
        // One namespace at a time, each kind's items by name.
        let last = i + 1 == items;
        if last || team(i + 1) != team(i) {
            batch.sort_by(|a, b| (a.0, &a.4).cmp(&(b.0, &b.4)));
            for (gr, api_version, kind, namespace, name, bytes) in batch.drain(..) {
                let (unversioned, preferred) = match &namespace {
                    Some(n) => (
                        format!("resources/{gr}/namespaces/{n}/{name}.json"),
                        format!("resources/{gr}/v1-preferredversion/namespaces/{n}/{name}.json"),
                    ),
                    None => (
                        format!("resources/{gr}/cluster/{name}.json"),
                        format!("resources/{gr}/v1-preferredversion/cluster/{name}.json"),
                    ),
                };
                append(&mut tar, &unversioned, &bytes);
                append(&mut tar, &preferred, &bytes);
                list.entry(format!("{api_version}/{kind}"))
                    .or_default()
                    .push(match namespace {
                        Some(n) => format!("{n}/{name}"),
                        None => name,
                    });
            }
        }
    }
    let encoder = tar.into_inner().expect("finish tar");
    encoder
        .finish()
        .expect("finish gzip")
        .flush()
        .expect("flush");
    for names in list.values_mut() {
        names.sort();
    }
    (json!(list), items)
}

fn append<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(bytes.len() as u64);
    h.set_mode(0o755);
    h.set_cksum();
    tar.append_data(&mut h, path, bytes).expect("append");
}

type Item = (
    &'static str,
    &'static str,
    &'static str,
    Option<String>,
    String,
    Value,
);

fn metadata(rng: &mut Rng, name: &str, namespace: Option<&str>, app: &str) -> Value {
    let mut m = json!({
        "name": name,
        "uid": rng.uid(),
        "resourceVersion": (10_000_000 + rng.below(90_000_000)).to_string(),
        "generation": 1 + rng.below(40),
        "creationTimestamp": format!("2026-{:02}-{:02}T{:02}:{:02}:{:02}Z", 1 + rng.below(11), 1 + rng.below(28), rng.below(24), rng.below(60), rng.below(60)),
        "labels": {
            "app.kubernetes.io/name": app,
            "app.kubernetes.io/instance": format!("{app}-prod"),
            "app.kubernetes.io/managed-by": "Helm",
            "app.kubernetes.io/part-of": "platform",
            "helm.sh/chart": format!("{app}-{}.{}.{}", rng.below(5), rng.below(20), rng.below(10)),
        },
        "annotations": { "meta.helm.sh/release-name": format!("{app}-prod"), "meta.helm.sh/release-namespace": namespace.unwrap_or("default") },
        "managedFields": [{
            "manager": "helm", "operation": "Update", "apiVersion": "apps/v1",
            "time": "2026-10-02T08:15:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": { "f:metadata": { "f:annotations": { ".": {}, "f:meta.helm.sh/release-name": {}, "f:meta.helm.sh/release-namespace": {} }, "f:labels": { ".": {}, "f:app.kubernetes.io/instance": {}, "f:app.kubernetes.io/managed-by": {}, "f:app.kubernetes.io/name": {}, "f:helm.sh/chart": {} } } }
        }],
    });
    if let Some(ns) = namespace {
        m["namespace"] = json!(ns);
    }
    m
}

const APPS: &[&str] = &[
    "checkout",
    "cart",
    "payments",
    "search",
    "catalog",
    "auth",
    "gateway",
    "orders",
    "billing",
    "notifications",
    "inventory",
    "recommendations",
];

fn real_item(rng: &mut Rng, i: u64, ns: String) -> Item {
    let app = APPS[(i % APPS.len() as u64) as usize];
    match i % 20 {
        // Deployments: 30%.
        0..=5 => {
            let name = format!("{app}-{i:06}");
            let mut meta = metadata(rng, &name, Some(&ns), app);
            let image = format!(
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/{app}@sha256:{}",
                rng.hex(64)
            );
            let env: Vec<Value> = (0..8)
                .map(|k| json!({ "name": format!("{}_SETTING_{k}", app.to_uppercase()), "value": format!("{}", rng.below(100_000)) }))
                .collect();
            let spec = json!({
                "replicas": 1 + rng.below(6),
                "revisionHistoryLimit": 10,
                "selector": { "matchLabels": { "app.kubernetes.io/name": app, "app.kubernetes.io/instance": format!("{app}-prod") } },
                "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxSurge": "25%", "maxUnavailable": "25%" } },
                "template": {
                    "metadata": { "labels": { "app.kubernetes.io/name": app, "app.kubernetes.io/instance": format!("{app}-prod") }, "annotations": { "checksum/config": rng.hex(64) } },
                    "spec": {
                        "serviceAccountName": app,
                        "securityContext": { "runAsNonRoot": true, "runAsUser": 1000, "fsGroup": 2000 },
                        "containers": [{
                            "name": app, "image": image, "imagePullPolicy": "IfNotPresent",
                            "ports": [{ "name": "http", "containerPort": 8080, "protocol": "TCP" }],
                            "env": env,
                            "resources": { "requests": { "cpu": "250m", "memory": "256Mi" }, "limits": { "cpu": "1", "memory": "512Mi" } },
                            "livenessProbe": { "httpGet": { "path": "/healthz", "port": "http", "scheme": "HTTP" }, "initialDelaySeconds": 10, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3 },
                            "readinessProbe": { "httpGet": { "path": "/ready", "port": "http", "scheme": "HTTP" }, "periodSeconds": 5, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3 },
                            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                            "volumeMounts": [{ "name": "config", "mountPath": "/etc/app" }]
                        }],
                        "volumes": [{ "name": "config", "configMap": { "name": format!("{app}-config"), "defaultMode": 420 } }],
                        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler"
                    }
                }
            });
            meta["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = json!(
                json!({ "apiVersion": "apps/v1", "kind": "Deployment", "spec": spec }).to_string()
            );
            meta["annotations"]["deployment.kubernetes.io/revision"] =
                json!(rng.below(40).to_string());
            let body = json!({
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec,
                "status": { "observedGeneration": 3, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3,
                    "conditions": [
                        { "type": "Available", "status": "True", "lastUpdateTime": "2026-10-02T08:16:00Z", "lastTransitionTime": "2026-10-02T08:16:00Z", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability." },
                        { "type": "Progressing", "status": "True", "lastUpdateTime": "2026-10-02T08:16:00Z", "lastTransitionTime": "2026-10-02T08:15:00Z", "reason": "NewReplicaSetAvailable", "message": format!("ReplicaSet \"{name}-{}\" has successfully progressed.", rng.hex(10)) }
                    ] }
            });
            (
                "deployments.apps",
                "apps/v1",
                "Deployment",
                Some(ns),
                name,
                body,
            )
        }
        // ConfigMaps: 35%.
        6..=12 => {
            let name = format!("{app}-config-{i:06}");
            let meta = metadata(rng, &name, Some(&ns), app);
            let mut conf = String::new();
            for k in 0..(20 + rng.below(60)) {
                conf.push_str(&format!(
                    "{app}.feature_{k}.enabled = {}\n{app}.feature_{k}.timeout_ms = {}\n",
                    rng.below(2) == 1,
                    rng.below(30_000)
                ));
            }
            let body = json!({
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                "data": { "application.properties": conf, "LOG_LEVEL": "info", "REGION": "us-east-1" }
            });
            ("configmaps", "v1", "ConfigMap", Some(ns), name, body)
        }
        // Secrets with short base64 values: 25%.
        13..=17 => {
            let name = format!("{app}-credentials-{i:06}");
            let meta = metadata(rng, &name, Some(&ns), app);
            let body = json!({
                "apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
                "data": { "username": rng.base64(16), "password": rng.base64(44), "api-key": rng.base64(88), "tls.key": rng.base64(2200) }
            });
            ("secrets", "v1", "Secret", Some(ns), name, body)
        }
        // Helm release Secrets: 9%; a release is a gzip'd JSON manifest, base64 twice.
        18 => {
            let name = format!("sh.helm.release.v1.{app}-{i:06}.v{}", 1 + rng.below(9));
            let mut meta = metadata(rng, &name, Some(&ns), app);
            meta["labels"] = json!({ "owner": "helm", "name": format!("{app}-{i:06}"), "status": "deployed", "version": "3" });
            let mut manifest = String::new();
            for k in 0..40 {
                manifest.push_str(&format!("---\n# Source: {app}/templates/object-{k}.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {app}-{k}\ndata:\n  value: \"{}\"\n", rng.hex(24)));
            }
            let release = json!({ "name": app, "info": { "status": "deployed" }, "manifest": manifest, "version": 3 });
            let mut gz = GzEncoder::new(Vec::new(), Compression::default());
            let _ = gz.write_all(release.to_string().as_bytes());
            let once = b64(&gz.finish().unwrap_or_default());
            let body = json!({
                "apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "helm.sh/release.v1",
                "data": { "release": b64(once.as_bytes()) }
            });
            ("secrets", "v1", "Secret", Some(ns), name, body)
        }
        // CustomResourceDefinitions, cluster-scoped, with a large schema: one item in 1,000 (a
        // cluster has dozens, not thousands); the other items of this slot are small
        // ConfigMaps.
        _ if i % 1000 == 19 => {
            let name = format!("widgets{i}.example.com");
            let meta = metadata(rng, &name, None, "crds");
            let mut props = serde_json::Map::new();
            for k in 0..400 {
                props.insert(format!("field{k}"), json!({ "type": "string", "description": format!("Field {k} of the widget: what it configures and its default, {}.", rng.hex(8)) }));
            }
            let body = json!({
                "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": meta,
                "spec": { "group": "example.com", "scope": "Namespaced",
                    "names": { "plural": format!("widgets{i}"), "singular": format!("widget{i}"), "kind": format!("Widget{i}") },
                    "versions": [{ "name": "v1", "served": true, "storage": true, "schema": { "openAPIV3Schema": { "type": "object", "properties": { "spec": { "type": "object", "properties": props } } } } }] }
            });
            (
                "customresourcedefinitions.apiextensions.k8s.io",
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                name,
                body,
            )
        }
        _ => {
            let name = format!("{app}-env-{i:06}");
            let meta = metadata(rng, &name, Some(&ns), app);
            let body = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": { "ENV": "production", "FLAGS": rng.hex(32) } });
            ("configmaps", "v1", "ConfigMap", Some(ns), name, body)
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
