//! Pods as the controllers and kubelets would leave them: scheduled on a node (or Pending when
//! none is schedulable), running, or crash-looping when the workload is broken.

use serde_json::{Value, json};

use super::{OWNER_LABEL, resource};
use crate::kube::selector::Selector;
use crate::kube::store::Store;
use crate::sim::names;

pub(super) struct NodeInfo {
    pub(super) name: String,
    pub(super) schedulable: bool,
    /// Tainted by Karpenter for a replacement (or not registered yet): no new pods go there,
    /// but the pods it runs stay until they are evicted (a `NoSchedule` taint evicts nothing).
    pub(super) tainted: bool,
    /// A Fargate node: it runs the one pod Fargate placed there, and no DaemonSet pods.
    pub(super) fargate: bool,
}

pub(super) fn nodes(store: &Store) -> Vec<NodeInfo> {
    let Some(rt) = resource(store, "Node") else {
        return Vec::new();
    };
    store
        .list(&rt, None, &Selector::default())
        .0
        .iter()
        .map(|n| NodeInfo {
            name: n
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            schedulable: n.pointer("/spec/unschedulable").and_then(Value::as_bool) != Some(true),
            tainted: n
                .pointer("/spec/taints")
                .and_then(Value::as_array)
                .is_some_and(|ts| {
                    ts.iter().any(|t| {
                        t["key"] == crate::sim::nodes::DISRUPTED_TAINT
                            || t["key"] == crate::sim::nodes::UNREGISTERED_TAINT
                    })
                }),
            fargate: n
                .pointer("/metadata/labels")
                .and_then(|l| l.get(crate::sim::nodes::COMPUTE_TYPE_LABEL))
                .and_then(Value::as_str)
                == Some("fargate"),
        })
        .collect()
}

pub(super) fn pod_object(
    workload: &Value,
    kind: &str,
    pod_name: &str,
    node: Option<&str>,
    broken: bool,
) -> Value {
    let namespace = workload
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let name = workload
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut labels = workload
        .pointer("/spec/template/metadata/labels")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Some(l) = labels.as_object_mut() {
        l.insert(OWNER_LABEL.into(), json!(format!("{kind}.{name}")));
    }
    let spec = workload
        .pointer("/spec/template/spec")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let containers: Vec<String> = spec
        .get("containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let image_of = |c: &str| {
        spec.get("containers")
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|x| x.get("name").and_then(Value::as_str) == Some(c))
            })
            .and_then(|x| x.get("image"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let status = match node {
        None => json!({
            "phase": "Pending",
            "conditions": [ { "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/0 nodes are available" } ],
        }),
        Some(_) => {
            let statuses: Vec<Value> = containers
                .iter()
                .map(|c| {
                    if broken {
                        json!({ "name": c, "image": image_of(c), "ready": false, "started": false, "restartCount": 5,
                                "state": { "waiting": { "reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container" } },
                                "lastState": { "terminated": { "exitCode": 1, "reason": "Error" } } })
                    } else {
                        json!({ "name": c, "image": image_of(c), "ready": true, "started": true, "restartCount": 0,
                                "state": { "running": { "startedAt": "2026-01-01T00:00:00Z" } } })
                    }
                })
                .collect();
            let ready = if broken { "False" } else { "True" };
            json!({
                "phase": "Running",
                "conditions": [
                    { "type": "PodScheduled", "status": "True" },
                    { "type": "Initialized", "status": "True" },
                    { "type": "ContainersReady", "status": ready },
                    { "type": "Ready", "status": ready },
                ],
                "containerStatuses": statuses,
                "hostIP": "10.0.0.10",
                "podIP": format!("10.0.{}.{}", names::hash(pod_name) % 200, names::hash(pod_name) % 250 + 2),
            })
        }
    };
    let mut pod_spec = spec;
    if let (Some(n), Some(o)) = (node, pod_spec.as_object_mut()) {
        o.insert("nodeName".into(), json!(n));
    }
    // Only the annotation that changes how the cluster treats the pod is carried over.
    let mut annotations = serde_json::Map::new();
    if let Some(v) = workload
        .pointer("/spec/template/metadata/annotations")
        .and_then(|a| a.get(crate::sim::nodes::DO_NOT_DISRUPT))
    {
        annotations.insert(crate::sim::nodes::DO_NOT_DISRUPT.into(), v.clone());
    }
    let mut pod = json!({
        "metadata": {
            "name": pod_name,
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [ {
                "apiVersion": "apps/v1", "kind": kind, "name": name, "controller": true,
                "uid": workload.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
            } ],
        },
        "spec": pod_spec,
        "status": status,
    });
    if !annotations.is_empty() {
        pod["metadata"]["annotations"] = Value::Object(annotations);
    }
    pod
}
