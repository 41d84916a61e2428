//! The pods of Jobs: where one runs (a schedulable EC2 node), what the controller creates and
//! the kubelet reports while it runs, and its status once every container has ended.

use serde_json::{Value, json};

use super::{now, str_at};
use crate::kube::selector::Selector;
use crate::kube::store::Store;
use crate::sim::names;

/// `~1` for `/` in a JSON pointer.
pub(super) fn escape(label: &str) -> String {
    label.replace('~', "~0").replace('/', "~1")
}

/// A schedulable EC2 node for the pod (by a stable hash), if any.
pub(super) fn pick_node(store: &Store, pod: &str) -> Option<String> {
    let rt = store.resource("", "v1", "nodes")?;
    let nodes: Vec<String> = store
        .list(&rt, None, &Selector::default())
        .0
        .iter()
        .filter(|n| n.pointer("/spec/unschedulable") != Some(&json!(true)))
        .filter(|n| {
            str_at(
                n,
                &format!(
                    "/metadata/labels/{}",
                    escape(crate::sim::nodes::COMPUTE_TYPE_LABEL)
                ),
            ) != "fargate"
        })
        .filter(|n| {
            !n.pointer("/spec/taints")
                .and_then(Value::as_array)
                .is_some_and(|ts| ts.iter().any(|t| str_at(t, "/effect") == "NoSchedule"))
        })
        .map(|n| str_at(n, "/metadata/name").to_string())
        .collect();
    (!nodes.is_empty()).then(|| nodes[(names::hash(pod) % nodes.len() as u64) as usize].clone())
}

fn containers(spec: &Value) -> Vec<Value> {
    spec.get("containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// A Job's pod as the controller creates it and the kubelet starts it.
pub(super) fn pod_object(job: &Value, pod_name: &str, node: Option<&str>) -> Value {
    let template = job
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
    let started = now();
    let status = match node {
        Some(n) => {
            if let Some(o) = spec.as_object_mut() {
                o.insert("nodeName".into(), json!(n));
            }
            let statuses: Vec<Value> = containers(&spec)
                .iter()
                .map(|c| {
                    json!({
                        "name": c.get("name").cloned().unwrap_or(Value::Null),
                        "image": c.get("image").cloned().unwrap_or(Value::Null),
                        "ready": true, "started": true, "restartCount": 0,
                        "state": { "running": { "startedAt": started } },
                    })
                })
                .collect();
            json!({
                "phase": "Running",
                "conditions": [
                    { "type": "PodReadyToStartContainers", "status": "True" },
                    { "type": "Initialized", "status": "True" },
                    { "type": "Ready", "status": "True" },
                    { "type": "ContainersReady", "status": "True" },
                    { "type": "PodScheduled", "status": "True" },
                ],
                "containerStatuses": statuses,
                "hostIP": "10.0.0.10",
                "podIP": format!("10.0.{}.{}", names::hash(pod_name) % 200, names::hash(pod_name) % 250 + 2),
                "startTime": started,
            })
        }
        None => json!({
            "phase": "Pending",
            "conditions": [ { "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                              "message": "0/0 nodes are available" } ],
        }),
    };
    json!({
        "metadata": {
            "name": pod_name,
            "generateName": format!("{}-", str_at(job, "/metadata/name")),
            "namespace": str_at(job, "/metadata/namespace"),
            "labels": template.pointer("/metadata/labels").cloned().unwrap_or_else(|| json!({})),
            "annotations": template.pointer("/metadata/annotations").cloned().unwrap_or_else(|| json!({})),
            "ownerReferences": [ {
                "apiVersion": "batch/v1", "kind": "Job", "name": str_at(job, "/metadata/name"),
                "uid": str_at(job, "/metadata/uid"), "controller": true, "blockOwnerDeletion": true,
            } ],
        },
        "spec": spec,
        "status": status,
    })
}

/// A finished pod's status: every container terminated with `exit_code`.
pub(super) fn finished_status(pod: &Value, exit_code: i64) -> Value {
    let (phase, reason) = if exit_code == 0 {
        ("Succeeded", "Completed")
    } else {
        ("Failed", "Error")
    };
    let started = str_at(pod, "/status/startTime").to_string();
    let finished = now();
    let statuses: Vec<Value> = containers(pod.get("spec").unwrap_or(&Value::Null))
        .iter()
        .map(|c| {
            json!({
                "name": c.get("name").cloned().unwrap_or(Value::Null),
                "image": c.get("image").cloned().unwrap_or(Value::Null),
                "ready": false, "started": false, "restartCount": 0,
                "state": { "terminated": { "exitCode": exit_code, "reason": reason,
                                           "startedAt": started, "finishedAt": finished } },
            })
        })
        .collect();
    json!({
        "phase": phase,
        "conditions": [
            { "type": "PodReadyToStartContainers", "status": "False" },
            { "type": "Initialized", "status": "True", "reason": "PodCompleted" },
            { "type": "Ready", "status": "False", "reason": "PodCompleted" },
            { "type": "ContainersReady", "status": "False", "reason": "PodCompleted" },
            { "type": "PodScheduled", "status": "True" },
        ],
        "containerStatuses": statuses,
    })
}
