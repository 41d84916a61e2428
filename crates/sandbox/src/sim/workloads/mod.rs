//! The workload simulator: keeps pods and status of Deployments, StatefulSets and DaemonSets in
//! line with their spec and the nodes that exist, the way the controllers and kubelets of a real
//! cluster would. A pod template carrying [`BROKEN_ANNOTATION`] crash-loops, which is how the
//! sandbox models a workload that an upgrade broke (and that restoring its spec repairs).
//!
//! Pods are built in `pods`; PodDisruptionBudget status and eviction live in `pdbs`.

mod pdbs;
mod pods;

pub use pdbs::{eviction_blocked, reconcile_pdbs};

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::fargate::{self, Placement};
use super::names;
use crate::kube::selector::Selector;
use crate::kube::store::{ResourceType, Store, StoreError, Subresource};
use pods::{NodeInfo, nodes, pod_object};

/// On a pod template: the pods crash-loop.
pub const BROKEN_ANNOTATION: &str = "sandbox.eks-upgrade.dev/broken";
/// On pods: which workload owns them (`Kind/name`).
pub const OWNER_LABEL: &str = "sandbox.eks-upgrade.dev/owner";

pub const WORKLOAD_KINDS: [&str; 3] = ["Deployment", "StatefulSet", "DaemonSet"];

fn resource(store: &Store, kind: &str) -> Option<Arc<ResourceType>> {
    match kind {
        "Pod" => store.resource("", "v1", "pods"),
        "Node" => store.resource("", "v1", "nodes"),
        "Deployment" => store.resource("apps", "v1", "deployments"),
        "StatefulSet" => store.resource("apps", "v1", "statefulsets"),
        "DaemonSet" => store.resource("apps", "v1", "daemonsets"),
        "PodDisruptionBudget" => store.resource("policy", "v1", "poddisruptionbudgets"),
        _ => None,
    }
}

/// What a simulated workload is made of.
pub struct Template<'a> {
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub replicas: u32,
    pub container: &'a str,
    pub image: &'a str,
    pub labels: &'a Value,
    pub broken: bool,
}

/// A workload object as `kubectl create` would leave it.
pub fn workload_object(t: &Template) -> Value {
    let Template {
        kind,
        namespace,
        name,
        replicas,
        container,
        image,
        labels,
        broken,
    } = *t;
    let mut template_labels = labels.clone();
    if let Some(l) = template_labels.as_object_mut() {
        l.insert("app.kubernetes.io/name".into(), json!(name));
    }
    let mut template = json!({
        "metadata": { "labels": template_labels },
        "spec": { "containers": [ { "name": container, "image": image, "ports": [ { "containerPort": 8080 } ] } ] },
    });
    if broken {
        template["metadata"]["annotations"] = json!({ BROKEN_ANNOTATION: "true" });
    }
    let mut spec = json!({
        "selector": { "matchLabels": { "app.kubernetes.io/name": name } },
        "template": template,
    });
    match kind {
        "Deployment" => {
            spec["replicas"] = json!(replicas);
            spec["strategy"] = json!({ "type": "RollingUpdate", "rollingUpdate": { "maxSurge": "25%", "maxUnavailable": "25%" } });
        }
        "StatefulSet" => {
            spec["replicas"] = json!(replicas);
            spec["serviceName"] = json!(name);
        }
        _ => {}
    }
    json!({
        "metadata": { "name": name, "namespace": namespace, "labels": labels },
        "spec": spec,
    })
}

fn is_broken(workload: &Value) -> bool {
    workload
        .pointer("/spec/template/metadata/annotations")
        .and_then(|a| a.get(BROKEN_ANNOTATION))
        .and_then(Value::as_str)
        == Some("true")
}

/// Marks a workload's pod template broken or repaired, as a bad rollout or a restore would.
pub fn set_broken(
    store: &Store,
    kind: &str,
    namespace: &str,
    name: &str,
    broken: bool,
) -> Result<(), StoreError> {
    let rt = resource(store, kind)
        .ok_or_else(|| StoreError::Invalid(format!("unknown workload kind {kind}")))?;
    let value = if broken { json!("true") } else { Value::Null };
    store.patch(&rt, Some(namespace), name, &json!({ "spec": { "template": { "metadata": { "annotations": { BROKEN_ANNOTATION: value } } } } }), Subresource::Main)?;
    Ok(())
}

/// Brings a workload's pods and status in line with its spec. Missing workloads lose their pods.
/// Pods of a namespace a Fargate profile selects run on Fargate nodes of their own.
pub fn reconcile(
    store: &Store,
    placement: &Placement,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<(), StoreError> {
    let (Some(wrt), Some(prt)) = (resource(store, kind), resource(store, "Pod")) else {
        return Ok(());
    };
    let owner = format!("{kind}.{name}");
    let selector = Selector::labels(&format!("{OWNER_LABEL}={owner}"))
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    let existing: BTreeMap<String, Value> = store
        .list(&prt, Some(namespace), &selector)
        .0
        .into_iter()
        .map(|p| {
            (
                p.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                p,
            )
        })
        .collect();
    let workload = match store.get(&wrt, Some(namespace), name) {
        Ok(w) => w,
        Err(StoreError::NotFound { .. }) => {
            for pod in existing.keys() {
                let _ = store.delete(&prt, Some(namespace), pod);
            }
            return fargate::collect_garbage(store);
        }
        Err(e) => return Err(e),
    };
    let broken = is_broken(&workload);
    let all_nodes = nodes(store);
    // Fargate's nodes are tainted for the one pod each runs; DaemonSets do not run there.
    let schedulable: Vec<&NodeInfo> = all_nodes
        .iter()
        .filter(|n| n.schedulable && !n.fargate && !n.tainted)
        .collect();
    let profile = if kind == "DaemonSet" {
        None
    } else {
        placement.profile(namespace)
    };
    let template_hash = names::suffix(
        &workload
            .pointer("/spec/template")
            .map(Value::to_string)
            .unwrap_or_default(),
        10,
    );
    let replicas = workload
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .unwrap_or(1);

    // (pod name, node) for every pod that should exist.
    let desired: Vec<(String, Option<String>)> = match kind {
        "DaemonSet" => all_nodes
            .iter()
            .filter(|n| !n.fargate)
            .map(|n| {
                (
                    format!("{name}-{}", names::suffix(&format!("{name}{}", n.name), 5)),
                    Some(n.name.clone()),
                )
            })
            .collect(),
        _ => (0..replicas)
            .map(|i| {
                let pod = if kind == "StatefulSet" {
                    format!("{name}-{i}")
                } else {
                    format!(
                        "{name}-{template_hash}-{}",
                        names::suffix(&format!("{name}{template_hash}{i}"), 5)
                    )
                };
                // Keep a pod where it runs while its node is still schedulable (on Fargate:
                // while its node exists).
                let current = existing
                    .get(&pod)
                    .and_then(|p| p.pointer("/spec/nodeName"))
                    .and_then(Value::as_str)
                    .filter(|n| {
                        all_nodes.iter().any(|s| {
                            s.name == *n
                                && if profile.is_some() {
                                    s.fargate
                                } else {
                                    s.schedulable && !s.fargate
                                }
                        })
                    })
                    .map(str::to_string);
                (pod, current)
            })
            .collect(),
    };
    // Pods without a node get one: Fargate launches one for each, otherwise the scheduler
    // spreads them over the schedulable nodes.
    let mut desired = desired;
    for (pod, node) in desired.iter_mut() {
        if node.is_some() || kind == "DaemonSet" {
            continue;
        }
        *node = if profile.is_some() {
            fargate::launch(store, placement, namespace, pod).ok()
        } else {
            (!schedulable.is_empty()).then(|| {
                schedulable[(names::hash(pod) % schedulable.len() as u64) as usize]
                    .name
                    .clone()
            })
        };
    }

    for pod in existing.keys() {
        if !desired.iter().any(|(d, _)| d == pod) {
            let _ = store.delete(&prt, Some(namespace), pod);
        }
    }
    let mut ready = 0u64;
    for (pod, node) in &desired {
        let mut object = pod_object(&workload, kind, pod, node.as_deref(), broken);
        if let Some(p) = profile {
            // What Fargate's admission webhook sets on the pods it takes.
            object["spec"]["schedulerName"] = json!("fargate-scheduler");
            object["metadata"]["labels"]["eks.amazonaws.com/fargate-profile"] = json!(p);
        }
        if node.is_some() && !broken {
            ready += 1;
        }
        match existing.get(pod) {
            Some(current) if current.get("spec") == object.get("spec") => {
                if current.get("status") != object.get("status") {
                    store.patch(
                        &prt,
                        Some(namespace),
                        pod,
                        &json!({ "status": object["status"] }),
                        Subresource::Status,
                    )?;
                }
            }
            Some(_) => {
                // A pod's spec cannot change: replace the pod, as a controller would.
                let _ = store.delete(&prt, Some(namespace), pod);
                store.create(&prt, Some(namespace), object)?;
            }
            None => {
                store.create(&prt, Some(namespace), object)?;
            }
        }
    }

    let observed = workload
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    let total = desired.len() as u64;
    let available = if ready == total { "True" } else { "False" };
    let status = match kind {
        "DaemonSet" => json!({
            "currentNumberScheduled": total, "desiredNumberScheduled": total, "numberMisscheduled": 0,
            "numberReady": ready, "numberAvailable": ready, "numberUnavailable": total - ready,
            "updatedNumberScheduled": total, "observedGeneration": observed,
        }),
        "StatefulSet" => json!({
            "replicas": total, "readyReplicas": ready, "availableReplicas": ready, "currentReplicas": total,
            "updatedReplicas": total, "observedGeneration": observed,
        }),
        _ => json!({
            "replicas": total, "readyReplicas": ready, "availableReplicas": ready, "updatedReplicas": total,
            "unavailableReplicas": total - ready, "observedGeneration": observed,
            "conditions": [
                { "type": "Available", "status": available,
                  "reason": if available == "True" { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" } },
                { "type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable" },
            ],
        }),
    };
    if workload.get("status") != Some(&status) {
        store.patch(
            &wrt,
            Some(namespace),
            name,
            &json!({ "status": status }),
            Subresource::Status,
        )?;
    }
    if profile.is_some() {
        fargate::collect_garbage(store)?;
    }
    Ok(())
}

/// Reconciles every workload, for changes that affect them all (nodes coming and going).
pub fn reconcile_all(store: &Store, placement: &Placement) -> Result<(), StoreError> {
    for kind in WORKLOAD_KINDS {
        let Some(rt) = resource(store, kind) else {
            continue;
        };
        for w in store.list(&rt, None, &Selector::default()).0 {
            let ns = w
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("");
            let name = w
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            reconcile(store, placement, kind, ns, name)?;
        }
    }
    fargate::collect_garbage(store)?;
    reconcile_pdbs(store)
}
