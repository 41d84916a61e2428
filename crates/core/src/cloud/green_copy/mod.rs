//! What green is created with, derived from blue as EKS describes it: the cluster (role,
//! network, endpoint access, logging, authentication mode, encryption, support policy, Auto
//! Mode, tags plus the run's tags), one node group per blue group, one add-on per blue add-on,
//! and blue's STANDARD access entries. Pure: the requests are plain values that `eks_create`
//! sends and plans print, so what a run would create is tested without EKS.

use std::collections::BTreeMap;

use aws_sdk_eks::types::{AccessEntry, AssociatedAccessPolicy, Cluster, LogType, Nodegroup};
use serde::Serialize;

use crate::types::Version;

/// Tags every green cluster gets: the run that created it, and the blue it copies.
pub const RUN_TAG: &str = "eks-upgrade/run-id";
pub const BLUE_TAG: &str = "eks-upgrade/blue";

/// EKS takes at most this many tags per resource.
const MAX_TAGS: usize = 50;

/// Why green cannot be a copy of blue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CopyError {
    #[error("blue's description has no `{field}`")]
    Missing { field: &'static str },
    #[error(
        "node group `{nodegroup}` uses AMI type `{ami_type}`, which EKS does not offer for Kubernetes {version}"
    )]
    Al2Ami {
        nodegroup: String,
        ami_type: String,
        version: Version,
        /// The Amazon Linux 2023 type that replaces it.
        instead: &'static str,
    },
    #[error("`{what}` has {count} tags with the run's two; EKS takes at most {MAX_TAGS}")]
    TooManyTags { what: String, count: usize },
}

impl CopyError {
    pub fn hint(&self) -> Option<String> {
        match self {
            CopyError::Al2Ami {
                nodegroup, instead, ..
            } => Some(format!(
                "Amazon Linux 2 AMIs end with Kubernetes 1.32: move `{nodegroup}` to `{instead}` on blue first (or create green's group yourself and use `adoptGreen`)"
            )),
            CopyError::TooManyTags { .. } => {
                Some("remove a tag from blue, or create green yourself and use `adoptGreen`".into())
            }
            CopyError::Missing { .. } => None,
        }
    }
}

/// CreateCluster, as green gets it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRequest {
    pub name: String,
    pub version: Version,
    pub role_arn: String,
    pub subnet_ids: Vec<String>,
    /// Blue's additional security groups (the cluster security group EKS makes is green's own).
    pub security_group_ids: Vec<String>,
    pub endpoint_public_access: bool,
    pub endpoint_private_access: bool,
    pub public_access_cidrs: Vec<String>,
    pub service_ipv4_cidr: Option<String>,
    pub ip_family: Option<String>,
    /// Control-plane log types that are on.
    pub enabled_log_types: Vec<String>,
    pub authentication_mode: Option<String>,
    pub support_type: Option<String>,
    /// The KMS key of envelope encryption.
    pub encryption_key_arn: Option<String>,
    /// Auto Mode's node pools and node role, when blue runs Auto Mode.
    pub auto_mode: Option<AutoMode>,
    pub tags: BTreeMap<String, String>,
    /// Idempotency: a retried CreateCluster with the same token returns the same cluster.
    pub client_request_token: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoMode {
    pub node_pools: Vec<String>,
    pub node_role_arn: Option<String>,
}

/// Blue's tags without the ones AWS reserves, plus the run's.
fn tags(
    what: &str,
    blue: Option<&std::collections::HashMap<String, String>>,
    extra: &[(&str, &str)],
) -> Result<BTreeMap<String, String>, CopyError> {
    let mut out: BTreeMap<String, String> = blue
        .into_iter()
        .flatten()
        .filter(|(k, _)| !k.starts_with("aws:"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in extra {
        out.insert(k.to_string(), v.to_string());
    }
    if out.len() > MAX_TAGS {
        return Err(CopyError::TooManyTags {
            what: what.to_string(),
            count: out.len(),
        });
    }
    Ok(out)
}

/// Green's CreateCluster from blue's DescribeCluster.
pub fn cluster_request(
    blue: &Cluster,
    green: &str,
    version: Version,
    run_id: &str,
    token: &str,
) -> Result<ClusterRequest, CopyError> {
    let blue_name = blue.name().ok_or(CopyError::Missing { field: "name" })?;
    let role_arn = blue
        .role_arn()
        .ok_or(CopyError::Missing { field: "roleArn" })?;
    let vpc = blue.resources_vpc_config().ok_or(CopyError::Missing {
        field: "resourcesVpcConfig",
    })?;
    let network = blue.kubernetes_network_config();
    let enabled_log_types = blue
        .logging()
        .map(|l| {
            l.cluster_logging()
                .iter()
                .filter(|s| s.enabled() == Some(true))
                .flat_map(|s| s.types().iter().map(|t| t.as_str().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let encryption_key_arn = blue
        .encryption_config()
        .iter()
        .find_map(|e| e.provider()?.key_arn())
        .map(str::to_string);
    let auto_mode = blue
        .compute_config()
        .filter(|c| c.enabled() == Some(true))
        .map(|c| AutoMode {
            node_pools: c.node_pools().to_vec(),
            node_role_arn: c.node_role_arn().map(str::to_string),
        });
    Ok(ClusterRequest {
        name: green.to_string(),
        version,
        role_arn: role_arn.to_string(),
        subnet_ids: vpc.subnet_ids().to_vec(),
        security_group_ids: vpc.security_group_ids().to_vec(),
        endpoint_public_access: vpc.endpoint_public_access(),
        endpoint_private_access: vpc.endpoint_private_access(),
        // EKS answers `0.0.0.0/0` for an open public endpoint; sent back, it means the same.
        public_access_cidrs: if vpc.endpoint_public_access() {
            vpc.public_access_cidrs().to_vec()
        } else {
            Vec::new()
        },
        service_ipv4_cidr: network
            .and_then(|n| n.service_ipv4_cidr())
            .map(str::to_string),
        ip_family: network
            .and_then(|n| n.ip_family())
            .map(|f| f.as_str().to_string()),
        enabled_log_types,
        authentication_mode: blue
            .access_config()
            .and_then(|a| a.authentication_mode())
            .map(|m| m.as_str().to_string()),
        support_type: blue
            .upgrade_policy()
            .and_then(|u| u.support_type())
            .map(|s| s.as_str().to_string()),
        encryption_key_arn,
        auto_mode,
        tags: tags(
            green,
            blue.tags(),
            &[(RUN_TAG, run_id), (BLUE_TAG, blue_name)],
        )?,
        client_request_token: token.to_string(),
    })
}

/// The log types EKS knows, for turning names back into the SDK's enum.
pub fn log_type(name: &str) -> LogType {
    LogType::from(name)
}

/// A taint as CreateNodegroup takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaintSpec {
    pub key: String,
    pub value: Option<String>,
    pub effect: String,
}

/// A launch template reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchTemplateRef {
    pub id: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
}

/// CreateNodegroup, as green gets it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodegroupRequest {
    pub name: String,
    /// `None` for a custom AMI (the launch template's AMI decides the version).
    pub version: Option<Version>,
    pub node_role: String,
    pub subnets: Vec<String>,
    pub instance_types: Vec<String>,
    pub ami_type: Option<String>,
    pub capacity_type: Option<String>,
    pub min_size: Option<i32>,
    pub max_size: Option<i32>,
    pub desired_size: Option<i32>,
    /// Only without a launch template (EKS refuses both).
    pub disk_size: Option<i32>,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<TaintSpec>,
    pub max_unavailable: Option<i32>,
    pub max_unavailable_percentage: Option<i32>,
    pub launch_template: Option<LaunchTemplateRef>,
    /// SSH access (key pair and source security groups), only without a launch template.
    pub ssh_key: Option<String>,
    pub remote_access_security_groups: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub client_request_token: String,
}

/// The Amazon Linux 2 AMI types and what replaces each.
const AL2: &[(&str, &str)] = &[
    ("AL2_x86_64", "AL2023_x86_64_STANDARD"),
    ("AL2_x86_64_GPU", "AL2023_x86_64_NVIDIA"),
    ("AL2_ARM_64", "AL2023_ARM_64_STANDARD"),
];

/// The first version EKS publishes no Amazon Linux 2 AMIs for.
pub const AL2_LAST_OFFERED_BEFORE: Version = Version::new(1, 33);

/// Green's CreateNodegroup from one of blue's DescribeNodegroup.
pub fn nodegroup_request(
    blue: &Nodegroup,
    version: Version,
    run_id: &str,
    blue_cluster: &str,
    token: &str,
) -> Result<NodegroupRequest, CopyError> {
    let name = blue.nodegroup_name().ok_or(CopyError::Missing {
        field: "nodegroupName",
    })?;
    let node_role = blue
        .node_role()
        .ok_or(CopyError::Missing { field: "nodeRole" })?;
    let ami_type = blue.ami_type().map(|a| a.as_str().to_string());
    if let Some(ami) = &ami_type
        && version >= AL2_LAST_OFFERED_BEFORE
        && let Some((_, instead)) = AL2.iter().find(|(al2, _)| al2 == ami)
    {
        return Err(CopyError::Al2Ami {
            nodegroup: name.to_string(),
            ami_type: ami.clone(),
            version,
            instead,
        });
    }
    let custom = ami_type.as_deref() == Some("CUSTOM");
    let launch_template = blue.launch_template().map(|l| LaunchTemplateRef {
        id: l.id().map(str::to_string),
        name: l.name().map(str::to_string),
        version: l.version().map(str::to_string),
    });
    let with_template = launch_template.is_some();
    let scaling = blue.scaling_config();
    let update = blue.update_config();
    Ok(NodegroupRequest {
        name: name.to_string(),
        version: (!custom).then_some(version),
        node_role: node_role.to_string(),
        subnets: blue.subnets().to_vec(),
        instance_types: blue.instance_types().to_vec(),
        // With a custom AMI the type comes from the launch template; EKS refuses it in the
        // request.
        ami_type: ami_type.filter(|_| !custom),
        capacity_type: blue.capacity_type().map(|c| c.as_str().to_string()),
        min_size: scaling.and_then(|s| s.min_size()),
        max_size: scaling.and_then(|s| s.max_size()),
        desired_size: scaling.and_then(|s| s.desired_size()),
        disk_size: blue.disk_size().filter(|_| !with_template),
        labels: blue
            .labels()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        taints: blue
            .taints()
            .iter()
            .filter_map(|t| {
                Some(TaintSpec {
                    key: t.key()?.to_string(),
                    value: t.value().map(str::to_string),
                    effect: t.effect()?.as_str().to_string(),
                })
            })
            .collect(),
        max_unavailable: update.and_then(|u| u.max_unavailable()),
        max_unavailable_percentage: update.and_then(|u| u.max_unavailable_percentage()),
        launch_template,
        ssh_key: blue
            .remote_access()
            .and_then(|r| r.ec2_ssh_key())
            .filter(|_| !with_template)
            .map(str::to_string),
        remote_access_security_groups: if with_template {
            Vec::new()
        } else {
            blue.remote_access()
                .map(|r| r.source_security_groups().to_vec())
                .unwrap_or_default()
        },
        tags: tags(
            name,
            blue.tags(),
            &[(RUN_TAG, run_id), (BLUE_TAG, blue_cluster)],
        )?,
        client_request_token: token.to_string(),
    })
}

/// CreateAddon, as green gets it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddonRequest {
    pub name: String,
    /// The default version for green's Kubernetes version (`DescribeAddonVersions`).
    pub version: Option<String>,
    pub configuration_values: Option<String>,
    pub service_account_role_arn: Option<String>,
}

/// Green's CreateAddon from blue's add-on and the version EKS defaults to for green.
pub fn addon_request(blue: &crate::cloud::eks::AddonInfo, version: Option<&str>) -> AddonRequest {
    AddonRequest {
        name: blue.name.clone(),
        version: version.map(str::to_string),
        configuration_values: blue
            .configuration_values
            .clone()
            .filter(|c| !c.trim().is_empty()),
        service_account_role_arn: blue.service_account_role_arn.clone(),
    }
}

/// An access policy association to copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyAssociation {
    pub policy_arn: String,
    /// `cluster` or `namespace`.
    pub scope: String,
    pub namespaces: Vec<String>,
}

/// CreateAccessEntry (and its AssociateAccessPolicy calls), as green gets it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessEntryRequest {
    pub principal_arn: String,
    pub kubernetes_groups: Vec<String>,
    pub username: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub policies: Vec<PolicyAssociation>,
}

/// Whether an access entry's principal is the caller (an IAM role entry matches the role's
/// sessions: `arn:aws:sts::A:assumed-role/R/s` is role `R` of account `A`, whatever its
/// path).
pub fn is_caller(principal: &str, caller: &str) -> bool {
    if principal == caller {
        return true;
    }
    let parts = |arn: &str| -> Option<(String, String)> {
        let mut it = arn.splitn(6, ':');
        let (_, _, _, _, account, resource) = (
            it.next()?,
            it.next()?,
            it.next()?,
            it.next()?,
            it.next()?,
            it.next()?,
        );
        let role = if let Some(rest) = resource.strip_prefix("assumed-role/") {
            rest.split('/').next()?.to_string()
        } else if let Some(rest) = resource.strip_prefix("role/") {
            rest.rsplit('/').next()?.to_string()
        } else {
            return None;
        };
        Some((account.to_string(), role))
    };
    matches!((parts(principal), parts(caller)), (Some(a), Some(b)) if a == b)
}

/// The access entries green gets: blue's STANDARD entries, without the caller's (EKS gives
/// the creator an admin entry itself) and without node entries (`EC2_LINUX` and the like,
/// which EKS makes for green's own managed node groups).
pub fn access_entry_requests(
    blue: &[(AccessEntry, Vec<AssociatedAccessPolicy>)],
    caller: Option<&str>,
) -> Vec<AccessEntryRequest> {
    blue.iter()
        .filter(|(e, _)| e.r#type().unwrap_or("STANDARD") == "STANDARD")
        .filter_map(|(e, policies)| {
            let principal = e.principal_arn()?;
            if caller.is_some_and(|c| is_caller(principal, c)) {
                return None;
            }
            Some(AccessEntryRequest {
                principal_arn: principal.to_string(),
                kubernetes_groups: e.kubernetes_groups().to_vec(),
                username: e.username().map(str::to_string),
                tags: e
                    .tags()
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| !k.starts_with("aws:"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                policies: policies
                    .iter()
                    .filter_map(|p| {
                        Some(PolicyAssociation {
                            policy_arn: p.policy_arn()?.to_string(),
                            scope: p
                                .access_scope()
                                .and_then(|s| s.r#type())
                                .map_or("cluster", |t| t.as_str())
                                .to_string(),
                            namespaces: p
                                .access_scope()
                                .map(|s| s.namespaces().to_vec())
                                .unwrap_or_default(),
                        })
                    })
                    .collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
