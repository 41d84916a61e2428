//! Fargate: a pod of a namespace a Fargate profile selects runs on a node of its own, launched
//! for it with the kubelet of the control plane's version at that moment, and gone with it.
//! Fargate cannot be upgraded or rolled back in place: a pod moves to another version only by
//! being deleted and started again.

use serde_json::{Value, json};

use super::{names, nodes};
use crate::kube::selector::Selector;
use crate::kube::store::{Store, StoreError};
use crate::scenario::Scenario;
use eks_upgrade_core::types::Version;

/// What the workload simulator needs to place pods beyond EC2 nodes.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    /// `(namespace, Fargate profile)` for every namespace a profile selects.
    pub fargate: Vec<(String, String)>,
    /// The control plane's version now: Fargate starts pods with the matching kubelet.
    pub version: Option<Version>,
    pub region: String,
}

impl Placement {
    pub fn new(scenario: &Scenario, version: Version) -> Placement {
        let fargate = scenario
            .spec
            .fargate_profiles
            .iter()
            .flat_map(|p| {
                p.namespaces()
                    .iter()
                    .map(|ns| (ns.clone(), p.name().to_string()))
            })
            .collect();
        Placement {
            fargate,
            version: Some(version),
            region: scenario.spec.cluster.region.clone(),
        }
    }

    /// The Fargate profile that runs pods of `namespace`, if one does.
    pub fn profile(&self, namespace: &str) -> Option<&str> {
        self.fargate
            .iter()
            .find(|(ns, _)| ns == namespace)
            .map(|(_, p)| p.as_str())
    }
}

/// Launches the node for one pod and returns its name.
pub fn launch(
    store: &Store,
    placement: &Placement,
    namespace: &str,
    pod: &str,
) -> Result<String, StoreError> {
    let rt = store
        .resource("", "v1", "nodes")
        .ok_or_else(|| StoreError::Invalid("no nodes resource".into()))?;
    let version = placement
        .version
        .ok_or_else(|| StoreError::Invalid("the control plane version is unknown".into()))?;
    // A fresh name per launch: a pod started again gets a new node, never its old one.
    let seed = format!("{namespace}/{pod}/{version}/{}", store.resource_version());
    let name = names::fargate_node_name(&placement.region, &seed);
    let zones = ["a", "b", "c"];
    let zone = format!(
        "{}{}",
        placement.region,
        zones[(names::hash(&seed) % 3) as usize]
    );
    let mut node = nodes::node_object(&name, version, &nodes::Origin::Fargate, &zone);
    node["status"]["capacity"] = json!({ "cpu": "2", "memory": "3999360Ki", "pods": "1" });
    node["status"]["allocatable"] = json!({ "cpu": "2", "memory": "3896960Ki", "pods": "1" });
    store.create(&rt, None, node)?;
    Ok(name)
}

/// Removes Fargate nodes whose pod is gone, as Fargate stops the micro-VM with its pod.
pub fn collect_garbage(store: &Store) -> Result<(), StoreError> {
    let (Some(nrt), Some(prt)) = (
        store.resource("", "v1", "nodes"),
        store.resource("", "v1", "pods"),
    ) else {
        return Ok(());
    };
    let selector = Selector::labels(&format!("{}=fargate", nodes::COMPUTE_TYPE_LABEL))
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    let fargate_nodes = store.list(&nrt, None, &selector).0;
    if fargate_nodes.is_empty() {
        return Ok(());
    }
    let pods = store.list(&prt, None, &Selector::default()).0;
    for node in fargate_nodes {
        let name = node
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let used = pods
            .iter()
            .any(|p| p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(name));
        if !used {
            match store.delete(&nrt, None, name) {
                Ok(_) | Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}
