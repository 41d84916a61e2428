//! Comparing a backed-up object with the live one as Velero does before it decides to leave,
//! update or warn: both sides stripped of status and of the metadata the API server manages
//! (`resetMetadataAndStatus`), with the labels Velero adds to restored objects set aside. On top
//! of Velero's list, the comparison ignores what is noise to a person: `managedFields`, a
//! Service's cluster IPs (assigned by the cluster; Velero's Service action drops them), a pod's
//! node (the scheduler's choice; Velero's pod action drops it), and the annotations `kubectl`
//! and controllers maintain.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Metadata Velero removes from both sides (plus `managedFields`, which differs on every
/// object read twice).
const SERVER_METADATA: [&str; 10] = [
    "generateName",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
    "managedFields",
];

/// Labels Velero puts on what it restores.
const VELERO_LABELS: [&str; 2] = ["velero.io/backup-name", "velero.io/restore-name"];

/// Annotations written by tools and controllers rather than by the object's owner.
const MANAGED_ANNOTATIONS: [&str; 4] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
];

/// A short fingerprint of a normalized object.
pub type Fingerprint = [u8; 16];

/// The object as compared: `obj` with its namespace set to where it would be restored.
pub fn normalize(mut obj: Value, gr: &str, namespace: Option<&str>) -> Value {
    if let Some(o) = obj.as_object_mut() {
        o.remove("status");
        // The kind is matched before objects are compared, and list responses leave it out.
        o.remove("apiVersion");
        o.remove("kind");
        if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            for f in SERVER_METADATA {
                meta.remove(f);
            }
            if let Some(ns) = namespace {
                meta.insert("namespace".into(), Value::String(ns.to_string()));
            }
            prune(meta, "labels", |k| VELERO_LABELS.contains(&k));
            prune(meta, "annotations", |k| {
                MANAGED_ANNOTATIONS.contains(&k) || k.starts_with("velero.io/")
            });
        }
        if gr == "services"
            && let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut)
            && spec.get("clusterIP").and_then(Value::as_str) != Some("None")
        {
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
        }
        if gr == "pods"
            && let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut)
        {
            spec.remove("nodeName");
        }
    }
    obj
}

fn prune(meta: &mut Map<String, Value>, field: &str, drop: impl Fn(&str) -> bool) {
    let empty = match meta.get_mut(field).and_then(Value::as_object_mut) {
        Some(m) => {
            m.retain(|k, _| !drop(k));
            m.is_empty()
        }
        None => false,
    };
    if empty {
        meta.remove(field);
    }
}

/// The fingerprint of a normalized object. `serde_json` keeps object keys sorted, so equal
/// objects serialize to equal bytes.
pub fn fingerprint(normalized: &Value) -> Fingerprint {
    let mut hasher = Sha256::new();
    let _ = serde_json::to_writer(HashWriter(&mut hasher), normalized);
    let full = hasher.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Fields reported per object at most; the rest are counted.
const MAX_CHANGES: usize = 6;
/// Values longer than this are cut in summaries.
const MAX_VALUE: usize = 48;

/// What a restore would change in `live` to make it `backup`, field by field:
/// `spec.replicas: 1 → 3`. Values of Secrets' `data` and `stringData` are never shown.
pub fn changes(live: &Value, backup: &Value, secret: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut total = 0usize;
    walk(live, backup, String::new(), secret, &mut out, &mut total);
    if total > out.len() {
        out.push(format!("… and {} more", total - out.len()));
    }
    out
}

fn hidden(path: &str, secret: bool) -> bool {
    secret && (path.starts_with("data.") || path.starts_with("stringData."))
}

fn show(v: Option<&Value>) -> String {
    let Some(v) = v else { return "∅".into() };
    let text = match v {
        Value::Array(a) => format!("[{} items]", a.len()),
        Value::Object(m) => format!("{{{} fields}}", m.len()),
        other => other.to_string(),
    };
    if text.chars().count() > MAX_VALUE {
        let cut: String = text.chars().take(MAX_VALUE).collect();
        format!("{cut}…")
    } else {
        text
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Objects with at most this many fields are named field by field when one side lacks them.
const SMALL_OBJECT: usize = 4;

fn record(
    path: &str,
    from: Option<&Value>,
    to: Option<&Value>,
    secret: bool,
    out: &mut Vec<String>,
    total: &mut usize,
) {
    // `annotations: {1 fields} → ∅` says little; the annotation's name says what changed.
    let only = match (from, to) {
        (Some(Value::Object(m)), None) => Some((m, true)),
        (None, Some(Value::Object(m))) => Some((m, false)),
        _ => None,
    };
    if let Some((fields, live_side)) = only
        && !fields.is_empty()
        && fields.len() <= SMALL_OBJECT
    {
        for (k, v) in fields {
            let (f, t) = if live_side {
                (Some(v), None)
            } else {
                (None, Some(v))
            };
            record(&join(path, k), f, t, secret, out, total);
        }
        return;
    }
    *total += 1;
    if out.len() >= MAX_CHANGES {
        return;
    }
    let shown = if hidden(path, secret) {
        match (from, to) {
            (None, _) => format!("{path}: added (value hidden)"),
            (_, None) => format!("{path}: removed"),
            _ => format!("{path}: changed (value hidden)"),
        }
    } else {
        format!("{path}: {} → {}", show(from), show(to))
    };
    out.push(shown);
}

fn walk(
    live: &Value,
    backup: &Value,
    path: String,
    secret: bool,
    out: &mut Vec<String>,
    total: &mut usize,
) {
    match (live, backup) {
        (Value::Object(l), Value::Object(b)) => {
            for (k, lv) in l {
                match b.get(k) {
                    Some(bv) if bv == lv => {}
                    Some(bv) => walk(lv, bv, join(&path, k), secret, out, total),
                    None => record(&join(&path, k), Some(lv), None, secret, out, total),
                }
            }
            for (k, bv) in b {
                if !l.contains_key(k) {
                    record(&join(&path, k), None, Some(bv), secret, out, total);
                }
            }
        }
        (Value::Array(l), Value::Array(b)) if l.len() == b.len() => {
            for (i, (lv, bv)) in l.iter().zip(b).enumerate() {
                if lv != bv {
                    walk(lv, bv, format!("{path}[{i}]"), secret, out, total);
                }
            }
        }
        _ if live != backup => record(&path, Some(live), Some(backup), secret, out, total),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_managed_fields_do_not_count_and_real_changes_are_named() {
        let backup = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "web", "namespace": "shop", "uid": "a", "resourceVersion": "1",
                "annotations": { "deployment.kubernetes.io/revision": "1" } },
            "spec": { "replicas": 3, "template": { "spec": { "containers": [{ "name": "web", "image": "web:1" }] } } },
            "status": { "readyReplicas": 3 },
        });
        let mut live = backup.clone();
        live["metadata"]["uid"] = json!("b");
        live["metadata"]["resourceVersion"] = json!("9");
        live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("2");
        live["metadata"]["labels"] = json!({ "velero.io/restore-name": "r" });
        live["status"] = json!({ "readyReplicas": 0 });
        let (b, l) = (
            normalize(backup.clone(), "deployments.apps", Some("shop")),
            normalize(live.clone(), "deployments.apps", Some("shop")),
        );
        assert_eq!(fingerprint(&b), fingerprint(&l));
        live["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:2");
        live["spec"]["replicas"] = json!(1);
        let l = normalize(live, "deployments.apps", Some("shop"));
        assert_ne!(fingerprint(&b), fingerprint(&l));
        assert_eq!(
            changes(&l, &b, false),
            [
                "spec.replicas: 1 → 3",
                "spec.template.spec.containers[0].image: \"web:2\" → \"web:1\""
            ]
        );
        let mut restarted = b.clone();
        restarted["spec"]["template"]["metadata"] =
            json!({ "annotations": { "kubectl.kubernetes.io/restartedAt": "now" } });
        assert_eq!(
            changes(&restarted, &b, false),
            ["spec.template.metadata.annotations.kubectl.kubernetes.io/restartedAt: \"now\" → ∅"]
        );
    }

    #[test]
    fn secret_values_stay_hidden() {
        let live = json!({ "data": { "password": "b2xk" } });
        let backup = json!({ "data": { "password": "bmV3", "token": "dA==" } });
        let c = changes(&live, &backup, true);
        assert_eq!(
            c,
            [
                "data.password: changed (value hidden)",
                "data.token: added (value hidden)"
            ]
        );
        assert!(c.iter().all(|x| !x.contains("bmV3")));
    }
}
