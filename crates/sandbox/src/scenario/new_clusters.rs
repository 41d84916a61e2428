//! Clusters made with CreateCluster (`spec.newClusters`): what a new cluster comes with, how its
//! creation or its node groups' creation fail, and the scenario a created cluster runs, derived
//! from the account's first cluster (same VPC and subnets, speed, timings and catalogues; none of
//! its workloads).

use serde::Deserialize;

use eks_upgrade_core::format::Problem;
use eks_upgrade_core::types::Version;

use super::{ComputeConfigSpec, Faults, Scenario, SubnetSpec};

/// `spec.newClusters`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewClustersSpec {
    /// A created cluster ends `FAILED` with this health issue instead of `ACTIVE`.
    #[serde(default)]
    pub create_fails: Option<CreateFailure>,
    /// Node groups (of created clusters) whose creation ends `CREATE_FAILED`.
    #[serde(default)]
    pub nodegroup_create_fails: Vec<NodegroupCreateFailure>,
    /// Whether the platform stack installed Velero on created clusters (default: yes), in the
    /// first cluster's namespace and without a BackupStorageLocation.
    #[serde(default)]
    pub velero: NewVelero,
    /// Faults of created clusters, as `spec.faults` for the first one. `faults.api` is
    /// account-wide and stays the first cluster's.
    #[serde(default)]
    pub faults: Faults,
}

/// `spec.newClusters.velero`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewVelero {
    #[serde(default = "yes")]
    pub installed: bool,
}

impl Default for NewVelero {
    fn default() -> Self {
        NewVelero { installed: true }
    }
}

fn yes() -> bool {
    true
}

/// `spec.newClusters.createFails`: the cluster's `health.issues` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateFailure {
    /// A `ClusterIssueCode`, such as `Ec2SubnetNotFound` or `InsufficientFreeAddresses`.
    pub code: String,
    pub message: String,
}

/// `spec.newClusters.nodegroupCreateFails[]`: the node group's `health.issues` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodegroupCreateFailure {
    pub nodegroup: String,
    /// A `NodegroupIssueCode`. Default: `NodeCreationFailure`.
    #[serde(default = "node_creation_failure")]
    pub code: String,
    #[serde(default = "instances_failed")]
    pub message: String,
}

fn node_creation_failure() -> String {
    "NodeCreationFailure".into()
}

fn instances_failed() -> String {
    "Instances failed to join the kubernetes cluster".into()
}

/// `ClusterIssueCode` in the EKS model.
const CLUSTER_ISSUE_CODES: &[&str] = &[
    "AccessDenied",
    "ClusterUnreachable",
    "ConfigurationConflict",
    "InternalFailure",
    "ResourceLimitExceeded",
    "ResourceNotFound",
    "IamRoleNotFound",
    "VpcNotFound",
    "InsufficientFreeAddresses",
    "Ec2ServiceNotSubscribed",
    "Ec2SubnetNotFound",
    "Ec2SecurityGroupNotFound",
    "KmsGrantRevoked",
    "KmsKeyNotFound",
    "KmsKeyMarkedForDeletion",
    "KmsKeyDisabled",
    "StsRegionalEndpointDisabled",
    "UnsupportedVersion",
    "Other",
];

/// The `NodegroupIssueCode`s a creation can end with.
const NODEGROUP_ISSUE_CODES: &[&str] = &[
    "AutoScalingGroupInvalidConfiguration",
    "Ec2SecurityGroupNotFound",
    "Ec2LaunchTemplateNotFound",
    "Ec2SubnetNotFound",
    "Ec2SubnetInvalidConfiguration",
    "IamInstanceProfileNotFound",
    "IamNodeRoleNotFound",
    "NodeCreationFailure",
    "AsgInstanceLaunchFailures",
    "InstanceLimitExceeded",
    "InsufficientFreeAddresses",
    "AccessDenied",
    "InternalFailure",
    "ClusterUnreachable",
    "AmiIdNotFound",
    "Ec2InstanceTypeDoesNotExist",
    "Unknown",
];

impl NewClustersSpec {
    pub(super) fn check(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if let Some(f) = &self.create_fails
            && !CLUSTER_ISSUE_CODES.contains(&f.code.as_str())
        {
            problems.push(
                Problem::new(format!(
                    "`newClusters.createFails.code` `{}` is not an EKS cluster issue code",
                    f.code
                ))
                .help(format!("use one of {}", CLUSTER_ISSUE_CODES.join(", "))),
            );
        }
        for f in &self.nodegroup_create_fails {
            if !NODEGROUP_ISSUE_CODES.contains(&f.code.as_str()) {
                problems.push(
                    Problem::new(format!(
                        "`newClusters.nodegroupCreateFails` code `{}` of node group `{}` is not an EKS node group issue code",
                        f.code, f.nodegroup
                    ))
                    .help(format!("use one of {}", NODEGROUP_ISSUE_CODES.join(", "))),
                );
            }
        }
        if !self.faults.api.is_empty() {
            problems.push(
                Problem::new("`newClusters.faults.api` is not read")
                    .help("API faults are account-wide: put them in `spec.faults.api`"),
            );
        }
        problems
    }
}

/// What a CreateCluster request decides about the cluster's scenario.
#[derive(Debug, Clone)]
pub struct NewCluster {
    pub name: String,
    pub version: Version,
    /// `resourcesVpcConfig.subnetIds`, already checked to be subnets of the account's VPC.
    pub subnet_ids: Vec<String>,
    /// `upgradePolicy.supportType`.
    pub support_type: String,
    pub compute: Option<ComputeConfigSpec>,
}

impl Scenario {
    /// The scenario of a cluster made with CreateCluster: `self` is the account's first
    /// cluster's. The new cluster shares its VPC, subnets, speed, timings and catalogues, and has
    /// nothing of its own yet: no node groups, add-ons, workloads, objects or insights.
    pub fn for_new_cluster(&self, request: &NewCluster) -> Scenario {
        let mut s = self.clone();
        let new = &self.spec.new_clusters;
        let spec = &mut s.spec;
        spec.vpc_override = Some(self.vpc_id());
        spec.subnets = self
            .subnets()
            .into_iter()
            .map(|subnet| SubnetSpec {
                cluster: request.subnet_ids.contains(&subnet.id),
                id: subnet.id,
                availability_zone: Some(subnet.availability_zone),
                cidr_block: Some(subnet.cidr_block),
                free_ips: subnet.free_ips,
            })
            .collect();
        spec.cluster.name = request.name.clone();
        spec.cluster.version = request.version;
        spec.cluster.platform_version = None;
        spec.cluster.support_type = request.support_type.clone();
        spec.cluster.last_upgrade_age = None;
        spec.cluster.last_upgrade_automatic = false;
        spec.cluster.health_issues = Vec::new();
        spec.cluster.compute_config = request.compute.clone();
        spec.nodegroups = Vec::new();
        spec.self_managed_nodes = Vec::new();
        spec.fargate_profiles = Vec::new();
        spec.node_pools = Vec::new();
        spec.karpenter = None;
        spec.addons = Vec::new();
        spec.workloads = Vec::new();
        spec.objects = Vec::new();
        spec.buckets = Vec::new();
        spec.deprecated_api_requests = Vec::new();
        spec.insights = Vec::new();
        spec.bulk = None;
        spec.velero.installed = new.velero.installed;
        spec.velero.without_location = true;
        spec.velero.unavailable = false;
        spec.velero.hold_queued = None;
        let mut faults = new.faults.clone();
        faults.api = self.spec.faults.api.clone();
        spec.faults = faults;
        s
    }
}
