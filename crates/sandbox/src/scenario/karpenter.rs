//! A Karpenter the cluster's owners installed themselves (`spec.karpenter`): its controller
//! Deployment, EC2NodeClasses, NodePools with their disruption budgets, and the nodes (with their
//! NodeClaims) each pool runs. Any cluster may have one, Auto Mode ones included.

use serde::{Deserialize, Serialize};

use super::faults::LaunchFailure;
use eks_upgrade_core::format::Problem;
use eks_upgrade_core::types::Version;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KarpenterSpec {
    /// The controller's version: the image tag of `public.ecr.aws/karpenter/controller`.
    pub version: String,
    /// Where the controller's Deployment `karpenter` runs. Default: `kube-system`.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Controller replicas; `0` is a controller that is down: nothing drifts. Default: 2.
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    #[serde(default)]
    pub node_classes: Vec<Ec2NodeClassSpec>,
    #[serde(default)]
    pub node_pools: Vec<KarpenterPoolSpec>,
}

fn default_namespace() -> String {
    "kube-system".into()
}
fn default_replicas() -> u32 {
    2
}

/// An EC2NodeClass (`karpenter.k8s.aws/v1`) and how it selects its AMI.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Ec2NodeClassSpec {
    pub name: String,
    /// `amiSelectorTerms: [{ alias }]`: `FAMILY@latest` or `FAMILY@vYYYYMMDD`.
    #[serde(default)]
    pub alias: Option<String>,
    /// `amiSelectorTerms: [{ id }, …]`: fixed AMIs, whatever the control plane's version.
    #[serde(default)]
    pub ami_ids: Vec<String>,
}

/// A NodePool (`karpenter.sh/v1`) and the nodes it runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KarpenterPoolSpec {
    pub name: String,
    /// The EC2NodeClass its nodes use. Default: `default`.
    #[serde(default = "default_class")]
    pub node_class: String,
    #[serde(default = "default_nodes")]
    pub nodes: u32,
    /// The kubelet version of its nodes. Default: the cluster's version.
    #[serde(default)]
    pub version: Option<Version>,
    /// `spec.disruption.budgets`. Default: Karpenter's own, `[{ nodes: "10%" }]`.
    #[serde(default)]
    pub budgets: Vec<BudgetSpec>,
    /// `spec.template.spec.terminationGracePeriod`, a Go duration such as `1h`.
    #[serde(default)]
    pub termination_grace_period: Option<String>,
    /// Annotate the pool's nodes `karpenter.sh/do-not-disrupt: "true"`.
    #[serde(default)]
    pub do_not_disrupt: bool,
    #[serde(default = "default_instance")]
    pub instance_type: String,
}

fn default_class() -> String {
    "default".into()
}
fn default_nodes() -> u32 {
    2
}
fn default_instance() -> String {
    "m6i.large".into()
}

/// One disruption budget, written into the NodePool as given.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BudgetSpec {
    pub nodes: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

/// Whether `nodes` is what Karpenter's CRD accepts: a count, or a percentage up to 100.
pub fn valid_budget_nodes(nodes: &str) -> bool {
    match nodes.strip_suffix('%') {
        Some(p) => {
            (1..=3).contains(&p.len())
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u32>().is_ok_and(|n| n <= 100)
                && (p.len() < 3 || p == "100")
        }
        None => !nodes.is_empty() && nodes.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// `FAMILY@VERSION` with a family Karpenter knows and `latest` or `vYYYYMMDD`.
fn valid_alias(alias: &str) -> bool {
    let Some((family, version)) = alias.split_once('@') else {
        return false;
    };
    let dated = version
        .strip_prefix('v')
        .is_some_and(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()));
    ["al2023", "al2", "bottlerocket"].contains(&family) && (version == "latest" || dated)
}

impl KarpenterSpec {
    /// The scenario rules for Karpenter: what its CRDs refuse, and references that must resolve.
    pub fn check(&self, cluster: Version, faults: &[LaunchFailure]) -> Vec<Problem> {
        let mut problems = Vec::new();
        for f in faults {
            if !self.node_pools.iter().any(|p| p.name == f.node_pool) {
                problems.push(
                    Problem::new(format!(
                        "`faults.launchFailures` names NodePool `{}`, which `karpenter.nodePools` does not list",
                        f.node_pool
                    ))
                    .help("name a NodePool of `karpenter.nodePools`"),
                );
            }
        }
        let semver = self.version.split('.').collect::<Vec<_>>();
        if semver.len() != 3 || semver.iter().any(|p| p.parse::<u32>().is_err()) {
            problems.push(
                Problem::new(format!(
                    "`karpenter.version` is `{}`, not a release",
                    self.version
                ))
                .help("write the controller's image tag, such as `\"1.6.2\"`"),
            );
        }
        for class in &self.node_classes {
            match (&class.alias, class.ami_ids.is_empty()) {
                (Some(alias), true) if !valid_alias(alias) => problems.push(
                    Problem::new(format!(
                        "EC2NodeClass `{}` has alias `{alias}`",
                        class.name
                    ))
                    .help("an alias is `al2023`, `al2` or `bottlerocket`, `@`, then `latest` or `vYYYYMMDD`"),
                ),
                (Some(_), true) | (None, false) => {}
                _ => problems.push(Problem::new(format!(
                    "EC2NodeClass `{}` needs exactly one of `alias` and `amiIds`",
                    class.name
                ))),
            }
        }
        for pool in &self.node_pools {
            if !self.node_classes.iter().any(|c| c.name == pool.node_class) {
                problems.push(Problem::new(format!(
                    "NodePool `{}` uses EC2NodeClass `{}`, which `karpenter.nodeClasses` does not list",
                    pool.name, pool.node_class
                )));
            }
            if pool.version.is_some_and(|v| v > cluster) {
                problems.push(Problem::new(format!(
                    "NodePool `{}` is newer than the control plane",
                    pool.name
                )));
            }
            for (i, b) in pool.budgets.iter().enumerate() {
                if !valid_budget_nodes(&b.nodes) {
                    problems.push(
                        Problem::new(format!(
                            "NodePool `{}` budgets[{i}] has nodes `{}`",
                            pool.name, b.nodes
                        ))
                        .help("a budget is a node count or a percentage up to 100%, such as `\"0\"` or `\"10%\"`"),
                    );
                }
                if b.schedule.is_some() != b.duration.is_some() {
                    problems.push(Problem::new(format!(
                        "NodePool `{}` budgets[{i}]: `schedule` and `duration` go together",
                        pool.name
                    )));
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_nodes_follow_the_crd_pattern() {
        for ok in ["0", "10", "10%", "0%", "100%", "5%"] {
            assert!(valid_budget_nodes(ok), "{ok}");
        }
        for bad in ["", "ten", "150%", "101%", "-1", "10 %", "%"] {
            assert!(!valid_budget_nodes(bad), "{bad}");
        }
    }

    #[test]
    fn aliases_name_a_family_and_a_release() {
        assert!(valid_alias("al2023@latest"));
        assert!(valid_alias("bottlerocket@v20250601"));
        assert!(!valid_alias("al2023"));
        assert!(!valid_alias("windows2022@latest"));
        assert!(!valid_alias("al2023@2025"));
    }
}
