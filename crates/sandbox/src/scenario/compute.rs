//! Compute beyond managed node groups: EKS Auto Mode (its `computeConfig` and the Karpenter
//! NodePools whose nodes EKS drives) and Fargate profiles (pods of the selected namespaces run
//! each on a node of its own, at the control plane's version when they started).

use serde::Deserialize;

use eks_upgrade_core::types::Version;

/// `cluster.computeConfig`: EKS Auto Mode. DescribeCluster returns it as `computeConfig`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ComputeConfigSpec {
    #[serde(default)]
    pub enabled: bool,
    /// The built-in NodePools enabled. Default: `general-purpose` and `system`.
    #[serde(default = "default_builtin_pools")]
    pub node_pools: Vec<String>,
    /// Default: `arn:aws:iam::ACCOUNT:role/CLUSTER-auto-node-role`.
    #[serde(default)]
    pub node_role_arn: Option<String>,
}

fn default_builtin_pools() -> Vec<String> {
    vec!["general-purpose".into(), "system".into()]
}

/// A Karpenter NodePool (`karpenter.sh/v1`) of an Auto Mode cluster and the nodes it runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodePoolSpec {
    pub name: String,
    #[serde(default = "default_pool_nodes")]
    pub nodes: u32,
    /// The kubelet version of its nodes. Default: the cluster's version.
    #[serde(default)]
    pub version: Option<Version>,
    /// `spec.disruption.budgets[0].nodes`: `"10%"` (Karpenter's default), a count, or `"0"`
    /// to forbid voluntary disruption (drift included).
    #[serde(default = "default_budget")]
    pub budget: String,
    /// Annotate the pool's nodes `karpenter.sh/do-not-disrupt: "true"`.
    #[serde(default)]
    pub do_not_disrupt: bool,
    #[serde(default = "default_pool_instance")]
    pub instance_type: String,
}

fn default_pool_nodes() -> u32 {
    2
}
fn default_budget() -> String {
    "10%".to_string()
}
fn default_pool_instance() -> String {
    "c6a.large".to_string()
}

/// A Fargate profile. Written as a bare name (selects nothing) or with the namespaces whose
/// pods it runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FargateProfileSpec {
    Name(String),
    Full(FargateProfile),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FargateProfile {
    pub name: String,
    #[serde(default)]
    pub namespaces: Vec<String>,
}

impl FargateProfileSpec {
    pub fn name(&self) -> &str {
        match self {
            FargateProfileSpec::Name(n) => n,
            FargateProfileSpec::Full(p) => &p.name,
        }
    }

    pub fn namespaces(&self) -> &[String] {
        match self {
            FargateProfileSpec::Name(_) => &[],
            FargateProfileSpec::Full(p) => &p.namespaces,
        }
    }
}
