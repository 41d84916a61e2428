//! Nodes: created per node group at seed time, and replaced one by one when EKS rolls a managed
//! node group to a new version (new node joins, old node is cordoned, drained and removed).

use serde_json::{Value, json};

use super::names;
use crate::kube::selector::Selector;
use crate::kube::store::{Store, StoreError, Subresource};
use eks_upgrade_core::types::Version;

/// The label EKS puts on nodes of a managed node group.
pub const NODEGROUP_LABEL: &str = "eks.amazonaws.com/nodegroup";

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
            labels["aws:autoscaling:groupName"] = json!(asg);
            "m5.large"
        }
    };
    labels["node.kubernetes.io/instance-type"] = json!(instance_type);
    json!({
        "metadata": { "name": name, "labels": labels },
        "spec": { "providerID": format!("aws:///{zone}/i-0{}", names::suffix(name, 16)) },
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
                "osImage": "Amazon Linux 2023.7.20250512",
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
    let Some(rt) = store.resource("", "v1", "nodes") else {
        return Vec::new();
    };
    let selector = Selector::labels(&format!("{NODEGROUP_LABEL}={nodegroup}")).unwrap_or_default();
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
    let current = store.get(&rt, None, old)?;
    let mut fresh = current.clone();
    let name = names::node_name(region, &format!("{old}/{version}"));
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
    fresh["spec"] = json!({ "providerID": format!("aws:///{}/i-0{}", current.pointer("/metadata/labels/topology.kubernetes.io~1zone").and_then(Value::as_str).unwrap_or("us-east-1a"), names::suffix(&name, 16)) });
    fresh["status"]["nodeInfo"]["kubeletVersion"] = json!(names::kubelet_version(version));
    fresh["status"]["nodeInfo"]["kubeProxyVersion"] = json!(names::kubelet_version(version));
    fresh["status"]["addresses"] = json!([ { "type": "InternalDNS", "address": name }, { "type": "Hostname", "address": name } ]);
    store.create(&rt, None, fresh)?;
    cordon(store, old)?;
    store.delete(&rt, None, old)?;
    Ok(name)
}
