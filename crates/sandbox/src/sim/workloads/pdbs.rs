//! PodDisruptionBudgets: their status as the disruption controller keeps it, and which pods on a
//! node they forbid evicting.

use serde_json::{Value, json};

use super::resource;
use crate::kube::selector::Selector;
use crate::kube::store::{Store, StoreError, Subresource};

/// Keeps PodDisruptionBudget status (`disruptionsAllowed` and friends) current.
pub fn reconcile_pdbs(store: &Store) -> Result<(), StoreError> {
    let (Some(rt), Some(prt)) = (
        resource(store, "PodDisruptionBudget"),
        resource(store, "Pod"),
    ) else {
        return Ok(());
    };
    for pdb in store.list(&rt, None, &Selector::default()).0 {
        let ns = pdb
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let name = pdb
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let match_labels = pdb
            .pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object);
        let selector_text = match_labels
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let selector = Selector::labels(&selector_text).unwrap_or_default();
        let pods = store.list(&prt, Some(&ns), &selector).0;
        let expected = pods.len() as i64;
        let healthy = pods
            .iter()
            .filter(|p| {
                p.pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
            })
            .count() as i64;
        let desired = match (
            pdb.pointer("/spec/minAvailable"),
            pdb.pointer("/spec/maxUnavailable"),
        ) {
            (Some(v), _) => resolve_count(v, expected),
            (None, Some(v)) => expected - resolve_count(v, expected),
            _ => expected,
        };
        let allowed = (healthy - desired).max(0);
        let status = json!({
            "currentHealthy": healthy, "desiredHealthy": desired, "disruptionsAllowed": allowed,
            "expectedPods": expected, "observedGeneration": pdb.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
        });
        if pdb.get("status") != Some(&status) {
            store.patch(
                &rt,
                Some(&ns),
                &name,
                &json!({ "status": status }),
                Subresource::Status,
            )?;
        }
    }
    Ok(())
}

/// An int-or-percent PDB value as a pod count.
fn resolve_count(value: &Value, total: i64) -> i64 {
    match value {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            // Kubernetes rounds minAvailable percentages up.
            Some(p) => (total * p + 99) / 100,
            None => s.parse().unwrap_or(0),
        },
        _ => 0,
    }
}

/// Pods on `node` whose eviction a PodDisruptionBudget forbids right now (`namespace/name`).
pub fn eviction_blocked(store: &Store, node: &str) -> Vec<String> {
    let (Some(rt), Some(prt)) = (
        resource(store, "PodDisruptionBudget"),
        resource(store, "Pod"),
    ) else {
        return Vec::new();
    };
    let field = Selector::parse(None, Some(&format!("spec.nodeName={node}"))).unwrap_or_default();
    let pods = store.list(&prt, None, &field).0;
    let mut blocked = Vec::new();
    for pdb in store.list(&rt, None, &Selector::default()).0 {
        if pdb
            .pointer("/status/disruptionsAllowed")
            .and_then(Value::as_i64)
            .unwrap_or(1)
            > 0
        {
            continue;
        }
        let ns = pdb
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some(labels) = pdb
            .pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object)
        else {
            continue;
        };
        for pod in &pods {
            let same_ns = pod.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns);
            let matches = labels
                .iter()
                .all(|(k, v)| pod.pointer("/metadata/labels").and_then(|l| l.get(k)) == Some(v));
            if same_ns && matches {
                let name = pod
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                blocked.push(format!("{ns}/{name}"));
            }
        }
    }
    blocked.sort();
    blocked.dedup();
    blocked
}
