//! Nodes: created per node group, self-managed group, Auto Mode NodePool and Fargate pod, and
//! replaced when EKS rolls a managed node group or drifts Auto Mode nodes to a new version (new
//! node joins, old node is cordoned, drained and removed).

use serde_json::{Value, json};

use super::names;
use crate::kube::selector::Selector;
use crate::kube::store::{Store, StoreError, Subresource};
use eks_upgrade_core::types::Version;

// The labels and annotation the sandbox writes are the ones the tool reads: one definition.
pub use eks_upgrade_core::cloud::nodes::{
    COMPUTE_TYPE_LABEL, DISRUPTED_TAINT, DO_NOT_DISRUPT, NODEGROUP_LABEL, NODEPOOL_LABEL,
    UNREGISTERED_TAINT,
};

/// Where a node comes from, which decides its labels.
#[derive(Debug, Clone)]
pub enum Origin<'a> {
    Managed {
        nodegroup: &'a str,
        instance_type: &'a str,
        labels: &'a std::collections::BTreeMap<String, String>,
    },
    SelfManaged {
        asg: &'a str,
    },
    /// An EKS Auto Mode node of a NodePool.
    Auto {
        pool: &'a str,
        instance_type: &'a str,
    },
    /// A node of a self-installed Karpenter's NodePool.
    Karpenter {
        pool: &'a str,
        class: &'a str,
        instance_type: &'a str,
    },
    /// The node Fargate runs one pod on.
    Fargate,
}

pub fn node_object(name: &str, version: Version, origin: &Origin, zone: &str) -> Value {
    let mut labels = json!({
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "topology.kubernetes.io/zone": zone,
        "topology.kubernetes.io/region": zone.trim_end_matches(char::is_alphabetic),
    });
    let instance_type = match origin {
        Origin::Managed {
            nodegroup,
            instance_type,
            labels: extra,
        } => {
            labels[NODEGROUP_LABEL] = json!(nodegroup);
            labels["eks.amazonaws.com/capacityType"] = json!("ON_DEMAND");
            labels["eks.amazonaws.com/nodegroup-image"] = json!(format!(
                "ami-0{}",
                names::suffix(&format!("{nodegroup}{version}"), 16)
            ));
            for (k, v) in extra.iter() {
                labels[k.as_str()] = json!(v);
            }
            *instance_type
        }
        Origin::SelfManaged { asg } => {
            labels["alpha.eksctl.io/nodegroup-name"] = json!(asg);
            "m5.large"
        }
        Origin::Auto {
            pool,
            instance_type,
        } => {
            labels[COMPUTE_TYPE_LABEL] = json!("auto");
            labels[NODEPOOL_LABEL] = json!(pool);
            labels["eks.amazonaws.com/nodeclass"] = json!("default");
            labels["karpenter.sh/capacity-type"] = json!("on-demand");
            labels["karpenter.sh/registered"] = json!("true");
            labels["karpenter.sh/initialized"] = json!("true");
            *instance_type
        }
        Origin::Karpenter {
            pool,
            class,
            instance_type,
        } => {
            labels[NODEPOOL_LABEL] = json!(pool);
            labels[super::karpenter::CLASS_LABEL] = json!(class);
            labels["karpenter.sh/capacity-type"] = json!("on-demand");
            labels["karpenter.sh/registered"] = json!("true");
            labels["karpenter.sh/initialized"] = json!("true");
            *instance_type
        }
        Origin::Fargate => {
            labels[COMPUTE_TYPE_LABEL] = json!("fargate");
            "fargate"
        }
    };
    if !matches!(origin, Origin::Fargate) {
        labels["node.kubernetes.io/instance-type"] = json!(instance_type);
    }
    let instance = if name.starts_with("i-") {
        name.to_string()
    } else {
        format!("i-0{}", names::suffix(name, 16))
    };
    let spec = match origin {
        // Fargate's nodes take only the pod the Fargate scheduler placed there.
        Origin::Fargate => json!({
            "providerID": format!("aws:///{zone}/{}", names::suffix(name, 12)),
            "taints": [ { "key": COMPUTE_TYPE_LABEL, "value": "fargate", "effect": "NoSchedule" } ],
        }),
        _ => json!({ "providerID": format!("aws:///{zone}/{instance}") }),
    };
    let os_image = match origin {
        Origin::Auto { .. } => "Bottlerocket (EKS Auto, Standard) 2025.6.12 (aws-k8s)",
        _ => "Amazon Linux 2023.7.20250512",
    };
    json!({
        "metadata": { "name": name, "labels": labels },
        "spec": spec,
        "status": {
            "conditions": [
                { "type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory" },
                { "type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure" },
                { "type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID" },
                { "type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status" },
            ],
            "nodeInfo": {
                "kubeletVersion": names::kubelet_version(version),
                "kubeProxyVersion": names::kubelet_version(version),
                "containerRuntimeVersion": "containerd://1.7.27",
                "osImage": os_image,
                "operatingSystem": "linux",
                "architecture": "amd64",
                "kernelVersion": "6.1.134-150.224.amzn2023.x86_64",
            },
            "addresses": [ { "type": "InternalDNS", "address": name }, { "type": "Hostname", "address": name } ],
            "capacity": { "cpu": "2", "memory": "7934464Ki", "pods": "29" },
            "allocatable": { "cpu": "1930m", "memory": "7244288Ki", "pods": "29" },
        },
    })
}

/// Names of the nodes of a managed node group, oldest first.
pub fn nodegroup_nodes(store: &Store, nodegroup: &str) -> Vec<String> {
    labelled_nodes(store, &format!("{NODEGROUP_LABEL}={nodegroup}"))
}

/// Names of the nodes a label selector picks, oldest first.
pub fn labelled_nodes(store: &Store, selector: &str) -> Vec<String> {
    let Some(rt) = store.resource("", "v1", "nodes") else {
        return Vec::new();
    };
    let selector = Selector::labels(selector).unwrap_or_default();
    let mut nodes: Vec<(String, String)> = store
        .list(&rt, None, &selector)
        .0
        .iter()
        .map(|n| {
            let name = n
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let rv = n
                .pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            (rv, name)
        })
        .collect();
    nodes.sort();
    nodes.into_iter().map(|(_, n)| n).collect()
}

/// The kubelet minor version a node reports.
pub fn node_version(node: &Value) -> Option<Version> {
    let v = node.pointer("/status/nodeInfo/kubeletVersion")?.as_str()?;
    let core = v.trim_start_matches('v');
    let mut parts = core.split('.');
    Some(Version::new(
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    ))
}

/// Cordons a node (`spec.unschedulable`), as a drain does first.
pub fn cordon(store: &Store, node: &str) -> Result<(), StoreError> {
    let rt = store
        .resource("", "v1", "nodes")
        .ok_or_else(|| StoreError::Invalid("no nodes resource".into()))?;
    store.patch(&rt, None, node, &json!({ "spec": { "unschedulable": true }, "metadata": { "labels": { "node.kubernetes.io/exclude-from-external-load-balancers": "true" } } }), Subresource::Main)?;
    Ok(())
}

/// Replaces `old` with a new node of the same group at `version`; returns the new node's name.
/// The workload simulator moves pods off the old node when it disappears.
pub fn replace(
    store: &Store,
    region: &str,
    old: &str,
    version: Version,
) -> Result<String, StoreError> {
    let rt = store
        .resource("", "v1", "nodes")
        .ok_or_else(|| StoreError::Invalid("no nodes resource".into()))?;
    let fresh = successor(&store.get(&rt, None, old)?, region, version);
    let name = fresh
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    store.create(&rt, None, fresh)?;
    cordon(store, old)?;
    store.delete(&rt, None, old)?;
    Ok(name)
}

/// The node that replaces `current` (a Node object) at `version`: same pool, group, zone and
/// labels, a new name and instance. Not yet stored: Karpenter launches it before it exists.
pub fn successor(current: &Value, region: &str, version: Version) -> Value {
    let old = current
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut fresh = current.clone();
    let auto = current
        .pointer("/metadata/labels")
        .and_then(|l| l.get(COMPUTE_TYPE_LABEL))
        .and_then(Value::as_str)
        == Some("auto");
    // Auto Mode names its nodes after their EC2 instances.
    let name = if auto {
        names::instance_id(&format!("{old}/{version}"))
    } else {
        names::node_name(region, &format!("{old}/{version}"))
    };
    if let Some(m) = fresh.get_mut("metadata").and_then(Value::as_object_mut) {
        m.retain(|k, _| k == "labels" || k == "annotations");
        m.insert("name".into(), json!(name));
    }
    fresh["metadata"]["labels"]["kubernetes.io/hostname"] = json!(name);
    if let Some(l) = fresh
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        l.remove("node.kubernetes.io/exclude-from-external-load-balancers");
        if let Some(ng) = l
            .get(NODEGROUP_LABEL)
            .and_then(Value::as_str)
            .map(str::to_string)
        {
            l.insert(
                "eks.amazonaws.com/nodegroup-image".into(),
                json!(format!(
                    "ami-0{}",
                    names::suffix(&format!("{ng}{version}"), 16)
                )),
            );
        }
    }
    let zone = current
        .pointer("/metadata/labels/topology.kubernetes.io~1zone")
        .and_then(Value::as_str)
        .unwrap_or("us-east-1a");
    let instance = if auto {
        name.clone()
    } else {
        format!("i-0{}", names::suffix(&name, 16))
    };
    fresh["spec"] = json!({ "providerID": format!("aws:///{zone}/{instance}") });
    fresh["status"]["nodeInfo"]["kubeletVersion"] = json!(names::kubelet_version(version));
    fresh["status"]["nodeInfo"]["kubeProxyVersion"] = json!(names::kubelet_version(version));
    fresh["status"]["addresses"] = json!([ { "type": "InternalDNS", "address": name }, { "type": "Hostname", "address": name } ]);
    fresh
}
