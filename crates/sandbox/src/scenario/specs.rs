//! What a scenario seeds and how fast it moves: the cluster, the version and add-on catalogues,
//! node groups, add-ons, workloads, extra resource types, Velero, insights and timings.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use eks_upgrade_core::types::{HumanDuration, Version};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterSpec {
    pub name: String,
    pub region: String,
    pub version: Version,
    /// `eks.N`. Default: the catalogue's default platform version.
    #[serde(default)]
    pub platform_version: Option<String>,
    /// `STANDARD` or `EXTENDED` (default).
    #[serde(default = "default_support")]
    pub support_type: String,
    /// When the last in-place upgrade completed, as an age (`3d`): rollback is allowed within
    /// seven days of it. Default: no earlier upgrade, so no rollback.
    #[serde(default)]
    pub last_upgrade_age: Option<HumanDuration>,
    /// Whether the last upgrade was an EKS auto-upgrade (rollback is then not allowed).
    #[serde(default)]
    pub last_upgrade_automatic: bool,
    /// Control-plane health issues DescribeCluster reports (`health.issues`).
    #[serde(default)]
    pub health_issues: Vec<ClusterIssueSpec>,
    /// EKS Auto Mode (`computeConfig.enabled: true`); its nodes are `spec.nodePools`.
    #[serde(default)]
    pub compute_config: Option<super::ComputeConfigSpec>,
}

impl ClusterSpec {
    /// Whether EKS Auto Mode manages compute for the cluster.
    pub fn auto_mode(&self) -> bool {
        self.compute_config.as_ref().is_some_and(|c| c.enabled)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterIssueSpec {
    /// `SUBNET_NOT_FOUND`, `SECURITY_GROUP_NOT_FOUND`, `IP_NOT_AVAILABLE`, …
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub resource_ids: Vec<String>,
}

fn default_support() -> String {
    "EXTENDED".to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VersionSpec {
    pub version: Version,
    pub release_date: String,
    pub end_of_standard_support: String,
    pub end_of_extended_support: String,
    #[serde(default)]
    pub platform_version: Option<String>,
    #[serde(default)]
    pub default: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodegroupSpec {
    pub name: String,
    /// Default: the cluster's version.
    #[serde(default)]
    pub version: Option<Version>,
    #[serde(default = "default_nodes")]
    pub nodes: u32,
    #[serde(default = "default_instance")]
    pub instance_type: String,
    #[serde(default = "default_ami")]
    pub ami_type: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `updateConfig.maxUnavailable`: how many nodes a version update replaces at a time.
    #[serde(default = "default_max_unavailable")]
    pub max_unavailable: u32,
    /// `updateConfig.maxUnavailablePercentage` (1–100): replaces `maxUnavailable` when set,
    /// as EKS keeps only one of the two.
    #[serde(default)]
    pub max_unavailable_percentage: Option<u32>,
    /// The group's subnets, from `spec.subnets`. Default: the cluster's subnets.
    #[serde(default)]
    pub subnets: Option<Vec<String>>,
}

fn default_max_unavailable() -> u32 {
    1
}

fn default_nodes() -> u32 {
    2
}
fn default_instance() -> String {
    "m6i.large".to_string()
}
fn default_ami() -> String {
    "AL2023_x86_64_STANDARD".to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SelfManagedSpec {
    /// The Auto Scaling group's name.
    pub name: String,
    pub version: Version,
    #[serde(default = "default_nodes")]
    pub nodes: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddonSpec {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub configuration_values: Option<String>,
    #[serde(default)]
    pub service_account_role_arn: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddonCatalogEntry {
    pub name: String,
    #[serde(default = "default_addon_type")]
    pub r#type: String,
    pub versions: Vec<AddonVersionSpec>,
}

fn default_addon_type() -> String {
    "networking".to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddonVersionSpec {
    pub version: String,
    /// Kubernetes versions this add-on version supports.
    pub compatible: Vec<Version>,
    /// Kubernetes versions for which this is the default.
    #[serde(default)]
    pub default_for: Vec<Version>,
}

/// A workload the sandbox runs: the object, its pods and its status.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadSpec {
    /// `Deployment`, `StatefulSet` or `DaemonSet`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    #[serde(default = "default_image")]
    pub image: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The workload is already broken when the sandbox starts (a pre-existing problem).
    #[serde(default)]
    pub broken: bool,
    /// Create a PodDisruptionBudget for it with this `minAvailable`.
    #[serde(default)]
    pub pdb_min_available: Option<u32>,
    /// Annotate its pods `karpenter.sh/do-not-disrupt: "true"` (Auto Mode will not drain them).
    #[serde(default)]
    pub do_not_disrupt: bool,
}

fn default_replicas() -> u32 {
    2
}
fn default_image() -> String {
    "public.ecr.aws/nginx/nginx:1.27".to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResourceSpec {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    #[serde(default = "default_true")]
    pub namespaced: bool,
    /// The Kubernetes version that started serving this group/version. Objects of it that exist
    /// raise the rollback-readiness API-usage insight when a rollback would go below it.
    #[serde(default)]
    pub served_since: Option<Version>,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VeleroSpec {
    #[serde(default = "default_true")]
    pub installed: bool,
    #[serde(default = "default_velero_ns")]
    pub namespace: String,
    #[serde(default = "default_bucket")]
    pub bucket: String,
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default = "default_bsl")]
    pub storage_location: String,
    /// The BackupStorageLocation reports `Unavailable`.
    #[serde(default)]
    pub unavailable: bool,
    /// The Velero server version emulated: `1.17` (default) or `1.18`, whose Backups pass
    /// through `Queued` (with `status.queuePosition`) and `ReadyToStart` before `InProgress`.
    #[serde(default = "default_velero_version")]
    pub version: String,
    /// Velero 1.18: how long each Backup stays `Queued` before it may start (emulated time), as
    /// when other backups hold the queue.
    #[serde(default)]
    pub hold_queued: Option<HumanDuration>,
    /// Velero runs without a BackupStorageLocation: a created cluster's platform stack installs
    /// Velero, the tool attaches the location. Not a scenario field.
    #[serde(skip)]
    pub without_location: bool,
}

fn default_velero_version() -> String {
    "1.17".to_string()
}

impl VeleroSpec {
    /// Whether Backups go through Velero 1.18's queue.
    pub fn queues_backups(&self) -> bool {
        self.version == "1.18"
    }
}

impl Default for VeleroSpec {
    fn default() -> Self {
        VeleroSpec {
            installed: true,
            namespace: default_velero_ns(),
            bucket: default_bucket(),
            prefix: None,
            storage_location: default_bsl(),
            unavailable: false,
            version: default_velero_version(),
            hold_queued: None,
            without_location: false,
        }
    }
}

fn default_velero_ns() -> String {
    "velero".to_string()
}
fn default_bucket() -> String {
    "velero-backups".to_string()
}
fn default_bsl() -> String {
    "default".to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeprecatedRequest {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub removed_release: Version,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InsightSpec {
    pub name: String,
    /// `UPGRADE_READINESS` (default), `MISCONFIGURATION` or `ROLLBACK_READINESS`.
    #[serde(default = "default_category")]
    pub category: String,
    pub kubernetes_version: Version,
    /// `PASSING`, `WARNING`, `ERROR` or `UNKNOWN`.
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub recommendation: Option<String>,
}

fn default_category() -> String {
    "UPGRADE_READINESS".to_string()
}

/// How long operations take, in emulated time. Any field left out keeps its default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Timings {
    pub control_plane_update: HumanDuration,
    pub control_plane_rollback: HumanDuration,
    pub nodegroup_update_per_node: HumanDuration,
    pub addon_update: HumanDuration,
    /// Time for Velero to back up one item.
    pub backup_per_item: HumanDuration,
    pub restore_per_item: HumanDuration,
    /// How long after UpdateClusterVersion DescribeCluster still says ACTIVE (eventual consistency).
    pub status_lag: HumanDuration,
    /// How long a Route 53 change stays `PENDING` before `INSYNC`.
    pub dns_propagation: HumanDuration,
    /// CreateCluster: `CREATING` to `ACTIVE` (or `FAILED`).
    pub cluster_create: HumanDuration,
    /// DeleteCluster: `DELETING` to gone.
    pub cluster_delete: HumanDuration,
    /// CreateNodegroup: `CREATING` to `ACTIVE` (or `CREATE_FAILED`).
    pub nodegroup_create: HumanDuration,
    /// DeleteNodegroup: `DELETING` to gone.
    pub nodegroup_delete: HumanDuration,
    /// CreateAddon (and DeleteAddon): `CREATING` to `ACTIVE`.
    pub addon_create: HumanDuration,
    /// How long each pod of a `batch/v1` Job runs before it succeeds (or fails).
    pub job_run: HumanDuration,
}

impl Default for Timings {
    fn default() -> Self {
        let d = |s: u64| HumanDuration(Duration::from_secs(s));
        Timings {
            control_plane_update: d(12 * 60),
            control_plane_rollback: d(15 * 60),
            nodegroup_update_per_node: d(4 * 60),
            addon_update: d(2 * 60),
            backup_per_item: HumanDuration(Duration::from_millis(2_000)),
            restore_per_item: HumanDuration(Duration::from_millis(3_000)),
            status_lag: d(5),
            dns_propagation: d(60),
            cluster_create: d(10 * 60),
            cluster_delete: d(8 * 60),
            nodegroup_create: d(4 * 60),
            nodegroup_delete: d(4 * 60),
            addon_create: d(60),
            job_run: d(30),
        }
    }
}
