//! The cluster as it is at the end of a run, read through the APIs the tool trusts (EKS for
//! versions, Kubernetes for nodes), and whether it is in a configuration Kubernetes and EKS
//! support: every kubelet at most the control plane's version and no more than three minors
//! older (two before 1.25), kube-proxy no newer than the control plane, every EKS add-on at a
//! version EKS lists for the control plane's version. A recovery ends "restored" (exit 4) only
//! when nothing here is wrong.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use kube::api::{Api, ListParams};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::checks::skew::first_violation;
use crate::cloud::connect::{Connection, describe_cluster};
use crate::cloud::eks;
use crate::cloud::nodes::{self, Manager};
use crate::journal::Fact;
use crate::types::version::minor_of;

/// The state recorded when a recovery ended, for the report.
pub const FINAL_STATE: Fact<ClusterState> = Fact::new("finalState");

/// The state the cluster was left in.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterState {
    pub control_plane: Option<String>,
    pub nodegroups: Vec<NamedVersion>,
    pub addons: Vec<NamedVersion>,
    /// Nodes by what manages them and their kubelet's minor version.
    #[serde(default)]
    pub kubelets: Vec<KubeletCount>,
    /// kube-proxy's version: the EKS add-on's, or the DaemonSet image's.
    #[serde(default)]
    pub kube_proxy: Option<String>,
    /// What is outside the supported configuration, one line each.
    #[serde(default)]
    pub unsupported: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamedVersion {
    pub name: String,
    pub version: String,
    pub status: String,
}

/// How many nodes of one manager run one kubelet minor version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeletCount {
    /// ``node group `general` ``, `Karpenter`, `Auto Mode`, `Fargate`, `hybrid nodes`,
    /// `self-managed nodes` or ``self-managed nodes in `asg` ``.
    pub manager: String,
    /// The NodePool of Karpenter and Auto Mode nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    pub version: String,
    pub nodes: usize,
}

impl KubeletCount {
    /// Who the nodes belong to, for a person: ``Karpenter NodePool `default` ``.
    pub fn owner(&self) -> String {
        match &self.pool {
            Some(pool) => format!("{} NodePool `{pool}`", self.manager),
            None => self.manager.clone(),
        }
    }
}

/// Reads the cluster and judges it. Reads that fail leave their part unknown and are named in
/// `unsupported`: a state that cannot be read is not one the tool can call supported.
pub async fn cluster_state(conn: &Connection) -> ClusterState {
    let cluster = conn.cluster.name.as_str();
    let mut state = ClusterState::default();
    let cp = match describe_cluster(&conn.eks, cluster, &conn.cluster.region).await {
        Ok(c) => Some(c.version),
        Err(e) => {
            state
                .unsupported
                .push(format!("cannot read the control plane's version: {e}"));
            None
        }
    };
    state.control_plane = cp.map(|v| v.to_string());
    match eks::nodegroups(&conn.eks, cluster).await {
        Ok(groups) => {
            state.nodegroups = groups
                .into_iter()
                .map(|n| NamedVersion {
                    name: n.name,
                    version: n.version.map(|v| v.to_string()).unwrap_or_default(),
                    status: n.status,
                })
                .collect()
        }
        Err(e) => state
            .unsupported
            .push(format!("cannot read the node groups: {e}")),
    }
    let addons = match eks::addons(&conn.eks, cluster).await {
        Ok(a) => a,
        Err(e) => {
            state
                .unsupported
                .push(format!("cannot read the add-ons: {e}"));
            Vec::new()
        }
    };
    state.addons = addons
        .iter()
        .map(|a| NamedVersion {
            name: a.name.clone(),
            version: a.version.clone(),
            status: a.status.clone(),
        })
        .collect();
    match kubelets(conn.kube.clone()).await {
        Ok(k) => state.kubelets = k,
        Err(e) => state
            .unsupported
            .push(format!("cannot list the nodes: {e}")),
    }
    state.kube_proxy = match addons.iter().find(|a| a.name == "kube-proxy") {
        Some(a) => Some(a.version.clone()),
        None => kube_proxy_image(conn.kube.clone()).await,
    };
    let Some(cp) = cp else {
        return state;
    };
    for k in &state.kubelets {
        let Some(v) = minor_of(&k.version) else {
            continue;
        };
        if first_violation(v, &[cp]).is_some() {
            state.unsupported.push(format!(
                "{} {} of {} run kubelet {v}, {} the control plane's {cp}",
                k.nodes,
                if k.nodes == 1 { "node" } else { "nodes" },
                k.owner(),
                if v > cp {
                    "newer than"
                } else {
                    "too far behind"
                }
            ));
        }
    }
    if let Some(v) = state.kube_proxy.as_deref().and_then(minor_of)
        && v > cp
    {
        state.unsupported.push(format!(
            "kube-proxy runs {v}, newer than the control plane's {cp}"
        ));
    }
    for a in &addons {
        match eks::addon_versions(&conn.eks, &a.name, cp).await {
            Ok(offered) if offered.iter().any(|o| o.version == a.version) => {}
            Ok(_) => state.unsupported.push(format!(
                "add-on `{}` {} is not a version EKS supports on {cp}",
                a.name, a.version
            )),
            Err(e) => state.unsupported.push(format!(
                "cannot check add-on `{}` against {cp}: {e}",
                a.name
            )),
        }
    }
    state
}

/// Nodes counted by manager and kubelet minor version.
async fn kubelets(kube: kube::Client) -> Result<Vec<KubeletCount>, kube::Error> {
    let mut counts: BTreeMap<(String, Option<String>, String), usize> = BTreeMap::new();
    for node in nodes::inventory(kube).await? {
        let manager = match &node.manager {
            Manager::Nodegroup(_) | Manager::SelfManaged(_) => node.manager.to_string(),
            other => other.kind().to_string(),
        };
        let version = node
            .version
            .map_or_else(|| "unknown".to_string(), |v| v.to_string());
        let pool = node.manager.pool().map(str::to_string);
        *counts.entry((manager, pool, version)).or_default() += 1;
    }
    Ok(counts
        .into_iter()
        .map(|((manager, pool, version), nodes)| KubeletCount {
            manager,
            pool,
            version,
            nodes,
        })
        .collect())
}

/// The kube-proxy DaemonSet's image tag, when kube-proxy is not an EKS add-on. Read with a
/// `list` (by name), which the tool's ClusterRole already grants for DaemonSets.
async fn kube_proxy_image(kube: kube::Client) -> Option<String> {
    let api: Api<DaemonSet> = Api::namespaced(kube, "kube-system");
    let found = api
        .list(&ListParams::default().fields("metadata.name=kube-proxy"))
        .await
        .ok()?;
    let ds = found.items.into_iter().next()?;
    let image = ds.spec?.template.spec?.containers.first()?.image.clone()?;
    image.rsplit(':').next().map(str::to_string)
}
