//! What manages each node, read from the labels its manager puts on it, and one paged read of
//! every node with what the tool needs to know about it.
//!
//! One classification for the whole tool: pre-flight skew, the node-group steps, the health
//! baseline and the end-of-run assessment all ask "who moves this node to a new version?", and
//! the answer decides what the tool may promise. Karpenter nodes carry `karpenter.sh/nodepool`
//! but no EKS label; reading them as self-managed (as the tool once did) tells the operator to
//! replace by hand nodes that Karpenter replaces by drift.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

use super::list;
use crate::types::Version;
use crate::types::version::minor_of;

/// EKS labels the nodes of a managed node group with the group's name.
pub const NODEGROUP_LABEL: &str = "eks.amazonaws.com/nodegroup";
/// `auto` on EKS Auto Mode nodes, `fargate` on Fargate's, `hybrid` on hybrid nodes.
pub const COMPUTE_TYPE_LABEL: &str = "eks.amazonaws.com/compute-type";
/// Karpenter (self-installed or Auto Mode's) labels its nodes with their NodePool.
pub const NODEPOOL_LABEL: &str = "karpenter.sh/nodepool";
/// On a node or pod: Karpenter must not disrupt it voluntarily (drift included).
pub const DO_NOT_DISRUPT: &str = "karpenter.sh/do-not-disrupt";
/// Karpenter taints a node it is about to replace, before it launches the replacement.
pub const DISRUPTED_TAINT: &str = "karpenter.sh/disrupted";
/// Karpenter taints a node that has not registered yet.
pub const UNREGISTERED_TAINT: &str = "karpenter.sh/unregistered";
/// The label eksctl puts on the nodes of its self-managed node groups. (The Auto Scaling group's
/// own `aws:autoscaling:groupName` is an EC2 tag; a colon is not allowed in a label key, so no
/// node carries it as a label.)
const GROUP_LABEL: &str = "alpha.eksctl.io/nodegroup-name";

/// Who moves a node to a new Kubernetes version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Manager {
    /// A managed node group: `UpdateNodegroupVersion` moves it.
    Nodegroup(String),
    /// A NodePool of a Karpenter the cluster's owners installed: its nodes drift to a new AMI
    /// only when their EC2NodeClass selects one for the control plane's version.
    Karpenter(String),
    /// A NodePool of EKS Auto Mode: EKS replaces its nodes after the control plane moves.
    AutoMode(String),
    /// Fargate: a pod's node takes the control plane's version when the pod restarts.
    Fargate,
    /// EKS hybrid nodes: on-premises machines their owners upgrade.
    Hybrid,
    /// Nothing the tool can drive: an Auto Scaling group (named when a label says which) or
    /// bare instances.
    SelfManaged(Option<String>),
}

impl Manager {
    /// Reads a node's labels. The order matters: Auto Mode nodes carry the NodePool label too,
    /// and a managed node group's label is the most specific of all.
    pub fn of(labels: &BTreeMap<String, String>) -> Manager {
        if let Some(group) = labels.get(NODEGROUP_LABEL) {
            return Manager::Nodegroup(group.clone());
        }
        let pool = labels.get(NODEPOOL_LABEL).cloned();
        match labels.get(COMPUTE_TYPE_LABEL).map(String::as_str) {
            Some("fargate") => return Manager::Fargate,
            Some("hybrid") => return Manager::Hybrid,
            Some("auto") => return Manager::AutoMode(pool.unwrap_or_default()),
            _ => {}
        }
        if let Some(pool) = pool {
            return Manager::Karpenter(pool);
        }
        Manager::SelfManaged(labels.get(GROUP_LABEL).cloned())
    }

    /// The kind of manager, without its name: `node group`, `Karpenter`, `Auto Mode`, `Fargate`,
    /// `hybrid nodes`, `self-managed nodes`.
    pub fn kind(&self) -> &'static str {
        match self {
            Manager::Nodegroup(_) => "node group",
            Manager::Karpenter(_) => "Karpenter",
            Manager::AutoMode(_) => "Auto Mode",
            Manager::Fargate => "Fargate",
            Manager::Hybrid => "hybrid nodes",
            Manager::SelfManaged(_) => "self-managed nodes",
        }
    }

    /// The NodePool, for Karpenter and Auto Mode nodes.
    pub fn pool(&self) -> Option<&str> {
        match self {
            Manager::Karpenter(p) | Manager::AutoMode(p) => Some(p),
            _ => None,
        }
    }
}

impl fmt::Display for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Manager::Nodegroup(g) => write!(f, "node group `{g}`"),
            Manager::Karpenter(p) => write!(f, "Karpenter NodePool `{p}`"),
            Manager::AutoMode(p) => write!(f, "Auto Mode NodePool `{p}`"),
            Manager::SelfManaged(Some(g)) => write!(f, "self-managed nodes in `{g}`"),
            other => f.write_str(other.kind()),
        }
    }
}

/// One node, as the tool sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    pub manager: Manager,
    /// The kubelet's version as the node reports it (`v1.33.2-eks-5e0fdde`); empty when absent.
    pub kubelet: String,
    /// Its minor version, when it has one.
    pub version: Option<Version>,
    pub ready: bool,
    /// On its way out: tainted by Karpenter for disruption or not registered yet, or cordoned
    /// (what a node-group rolling update does before it drains).
    pub replacing: bool,
    /// Annotated `karpenter.sh/do-not-disrupt: "true"`.
    pub do_not_disrupt: bool,
}

impl NodeInfo {
    pub fn from_node(node: Node) -> NodeInfo {
        let labels = node.metadata.labels.unwrap_or_default();
        let do_not_disrupt = node
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DO_NOT_DISRUPT))
            .is_some_and(|v| v == "true");
        let spec = node.spec.unwrap_or_default();
        let tainted = spec
            .taints
            .iter()
            .flatten()
            .any(|t| t.key == DISRUPTED_TAINT || t.key == UNREGISTERED_TAINT);
        let status = node.status.unwrap_or_default();
        let kubelet = status
            .node_info
            .map(|i| i.kubelet_version)
            .unwrap_or_default();
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        NodeInfo {
            name: node.metadata.name.unwrap_or_default(),
            manager: Manager::of(&labels),
            version: minor_of(&kubelet),
            kubelet,
            ready,
            replacing: tainted || spec.unschedulable == Some(true),
            do_not_disrupt,
        }
    }

    /// `NAME (KUBELET)`, how node lists name a node for a person.
    pub fn with_kubelet(&self) -> String {
        format!("{} ({})", self.name, self.kubelet)
    }
}

/// Every node, read a page at a time, in the order the API server lists them (by name).
pub async fn inventory(kube: kube::Client) -> Result<Vec<NodeInfo>, kube::Error> {
    let mut out = Vec::new();
    list::each(&Api::<Node>::all(kube), ListParams::default(), |node| {
        out.push(NodeInfo::from_node(node));
    })
    .await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn each_manager_is_told_by_its_labels() {
        let cases: [(&[(&str, &str)], Manager); 7] = [
            (
                &[(NODEGROUP_LABEL, "general"), (NODEPOOL_LABEL, "odd")],
                Manager::Nodegroup("general".into()),
            ),
            (
                &[
                    (NODEPOOL_LABEL, "default"),
                    ("karpenter.sh/capacity-type", "spot"),
                ],
                Manager::Karpenter("default".into()),
            ),
            (
                &[
                    (COMPUTE_TYPE_LABEL, "auto"),
                    (NODEPOOL_LABEL, "general-purpose"),
                ],
                Manager::AutoMode("general-purpose".into()),
            ),
            (&[(COMPUTE_TYPE_LABEL, "fargate")], Manager::Fargate),
            (&[(COMPUTE_TYPE_LABEL, "hybrid")], Manager::Hybrid),
            (
                &[("alpha.eksctl.io/nodegroup-name", "ng-1")],
                Manager::SelfManaged(Some("ng-1".into())),
            ),
            (&[("kubernetes.io/os", "linux")], Manager::SelfManaged(None)),
        ];
        for (pairs, want) in cases {
            assert_eq!(Manager::of(&labels(pairs)), want, "{pairs:?}");
        }
    }

    #[test]
    fn managers_name_themselves_for_a_person() {
        assert_eq!(
            Manager::Karpenter("default".into()).to_string(),
            "Karpenter NodePool `default`"
        );
        assert_eq!(
            Manager::SelfManaged(Some("legacy".into())).to_string(),
            "self-managed nodes in `legacy`"
        );
        assert_eq!(Manager::SelfManaged(None).to_string(), "self-managed nodes");
        assert_eq!(Manager::Fargate.to_string(), "Fargate");
    }

    #[test]
    fn a_tainted_or_cordoned_node_is_being_replaced() {
        let node = |spec: serde_json::Value| -> NodeInfo {
            let node: Node = serde_json::from_value(serde_json::json!({
                "metadata": {
                    "name": "ip-10-0-1-1.ec2.internal",
                    "labels": { NODEPOOL_LABEL: "default" },
                    "annotations": { DO_NOT_DISRUPT: "true" },
                },
                "spec": spec,
                "status": {
                    "conditions": [ { "type": "Ready", "status": "True" } ],
                    "nodeInfo": {
                        "kubeletVersion": "v1.33.2-eks-5e0fdde", "kubeProxyVersion": "",
                        "architecture": "amd64", "bootID": "", "containerRuntimeVersion": "",
                        "kernelVersion": "", "machineID": "", "operatingSystem": "linux",
                        "osImage": "", "systemUUID": "",
                    },
                },
            }))
            .expect("a valid Node");
            NodeInfo::from_node(node)
        };
        let plain = node(serde_json::json!({}));
        assert_eq!(plain.version, Some(Version::new(1, 33)));
        assert!(plain.ready && plain.do_not_disrupt && !plain.replacing);
        assert_eq!(
            plain.with_kubelet(),
            "ip-10-0-1-1.ec2.internal (v1.33.2-eks-5e0fdde)"
        );
        let tainted = node(serde_json::json!({
            "taints": [ { "key": DISRUPTED_TAINT, "effect": "NoSchedule" } ],
        }));
        assert!(tainted.replacing);
        assert!(node(serde_json::json!({ "unschedulable": true })).replacing);
    }
}
