//! Scenarios: YAML files that seed the sandbox — the cluster, its node groups, add-ons and
//! workloads, how long each AWS operation takes, and which faults to inject.
//!
//! Durations are in emulated time (what the operation would take on AWS); `speed` says how many
//! emulated seconds pass per real second, so a 12-minute control-plane upgrade takes a fraction of
//! a second in tests.

mod catalog;

pub use catalog::{builtin_addon_catalog, builtin_versions};

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::types::{HumanDuration, Version};
use crate::workflow::{LoadError, Problem};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scenario {
    pub api_version: String,
    pub kind: String,
    pub metadata: ScenarioMetadata,
    pub spec: ScenarioSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScenarioMetadata {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScenarioSpec {
    /// Emulated seconds per real second. Default: 600 (ten minutes pass in a second).
    #[serde(default = "default_speed")]
    pub speed: f64,
    /// The AWS account id in ARNs.
    #[serde(default = "default_account")]
    pub account: String,
    pub cluster: ClusterSpec,
    /// The versions EKS offers. Default: the built-in catalogue with real support dates.
    #[serde(default)]
    pub versions: Option<Vec<VersionSpec>>,
    #[serde(default)]
    pub nodegroups: Vec<NodegroupSpec>,
    /// Nodes that belong to no managed node group (self-managed Auto Scaling groups).
    #[serde(default)]
    pub self_managed_nodes: Vec<SelfManagedSpec>,
    #[serde(default)]
    pub fargate_profiles: Vec<String>,
    #[serde(default)]
    pub addons: Vec<AddonSpec>,
    /// Add-on versions EKS offers. Default: the built-in catalogue.
    #[serde(default)]
    pub addon_catalog: Option<Vec<AddonCatalogEntry>>,
    #[serde(default)]
    pub workloads: Vec<WorkloadSpec>,
    /// Further Kubernetes objects, as JSON-compatible YAML (ConfigMaps, Secrets, PDBs, CRs…).
    #[serde(default)]
    pub objects: Vec<serde_json::Value>,
    /// Resource types beyond the built-in ones, served generically.
    #[serde(default)]
    pub resources: Vec<ResourceSpec>,
    #[serde(default)]
    pub velero: VeleroSpec,
    /// Deprecated API requests the API server reports in `/metrics`.
    #[serde(default)]
    pub deprecated_api_requests: Vec<DeprecatedRequest>,
    /// EKS upgrade insights.
    #[serde(default)]
    pub insights: Vec<InsightSpec>,
    #[serde(default)]
    pub timings: Timings,
    #[serde(default)]
    pub faults: Faults,
}

fn default_speed() -> f64 {
    600.0
}

fn default_account() -> String {
    "111122223333".to_string()
}

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
    /// `UPGRADE_READINESS` (default) or `MISCONFIGURATION`.
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
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Faults {
    /// EKS updates that end `Failed`.
    #[serde(default)]
    pub failed_updates: Vec<FailedUpdate>,
    /// UpdateClusterVersion refuses with InvalidStateException unless `force` (insight enforcement).
    #[serde(default)]
    pub enforce_insights: bool,
    /// The phase Velero backups end in instead of `Completed`.
    #[serde(default)]
    pub backup_phase: Option<String>,
    /// Damage to the files Velero writes to the bucket.
    #[serde(default)]
    pub bucket: Vec<BucketFault>,
    /// Errors injected in front of API operations.
    #[serde(default)]
    pub api: Vec<ApiFault>,
    /// Workloads that break when the control plane reaches a version.
    #[serde(default)]
    pub break_after: Vec<BreakAfter>,
    /// Velero restores end `Failed`.
    #[serde(default)]
    pub restore_fails: bool,
    /// Add-ons that end `DEGRADED` when updated for a version.
    #[serde(default)]
    pub addon_degrades: Vec<AddonDegrades>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FailedUpdate {
    /// `controlPlane`, `nodegroup/NAME` or `addon/NAME`.
    pub target: String,
    /// Only updates to this version fail. Default: any.
    #[serde(default)]
    pub version: Option<Version>,
    /// The `ErrorCode` to report, such as `PodEvictionFailure`. Default: `Unknown`.
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// Resource ids to name in the error (pods, instances).
    #[serde(default)]
    pub resource_ids: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BucketFault {
    /// `velero-backup.json`, `tarball`, `resource-list`, `logs`, `results`, `podvolumebackups`,
    /// `volumesnapshots`, `itemoperations`, `volumeinfo`, `csi-volumesnapshotclasses`.
    pub object: String,
    /// `missing`, `truncate`, `corrupt`, `uid-mismatch`, `phase-finalizing`, `extra-item`,
    /// `missing-item`.
    pub fault: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiFault {
    /// `eks`, `kubernetes` or `s3`.
    pub service: String,
    /// An EKS operation name (`UpdateClusterVersion`), or for Kubernetes an HTTP method and path
    /// prefix (`GET /api/v1/nodes`).
    pub operation: String,
    /// `throttle` (429) or `unavailable` (503) or `internal` (500).
    pub fault: String,
    /// How many requests fail before the operation works again. Default: 1.
    #[serde(default = "default_count")]
    pub count: u32,
}

fn default_count() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BreakAfter {
    /// The control-plane version whose arrival breaks the workload.
    pub version: Version,
    /// `NAMESPACE/NAME` of a Deployment, StatefulSet or DaemonSet.
    pub workload: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddonDegrades {
    pub addon: String,
    pub version: Version,
}

/// The scenario the sandbox uses without `--scenario`: a healthy cluster `demo` in `us-east-1`
/// at 1.33, two managed node groups, the usual add-ons, a few workloads and Velero.
pub const DEFAULT_SCENARIO: &str = include_str!("../../../examples/sandbox/healthy.yaml");

impl Scenario {
    pub fn default_scenario() -> Scenario {
        // The shipped file is checked by a test; a failure here is a build defect, not input.
        Scenario::parse(Path::new("examples/sandbox/healthy.yaml"), DEFAULT_SCENARIO)
            .expect("the built-in scenario is valid")
    }

    pub fn load(path: &Path) -> Result<Scenario, LoadError> {
        let text = crate::workflow::source::read(path)?;
        Scenario::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Scenario, LoadError> {
        let invalid = |problems: Vec<Problem>| LoadError::Invalid {
            path: path.to_path_buf(),
            text: text.into(),
            problems,
        };
        let scenario: Scenario =
            serde_saphyr::from_str_with_options(text, crate::workflow::parse_options())
                .map_err(|e| invalid(vec![crate::workflow::yaml_problem(&e, text)]))?;
        let problems = scenario.check();
        if problems.is_empty() {
            Ok(scenario)
        } else {
            Err(invalid(problems))
        }
    }

    /// Rules serde cannot express. Problems here have no location; they name the field.
    fn check(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.api_version != "eks-upgrade/v1" || self.kind != "Scenario" {
            problems.push(
                Problem::new(
                    "a scenario starts with `apiVersion: eks-upgrade/v1` and `kind: Scenario`",
                )
                .help("see `examples/sandbox/healthy.yaml`"),
            );
        }
        if !(self.spec.speed.is_finite() && self.spec.speed > 0.0) {
            problems.push(
                Problem::new("`spec.speed` must be a positive number")
                    .help("600 makes ten emulated minutes pass in a real second"),
            );
        }
        let versions = self.versions();
        if !versions
            .iter()
            .any(|v| v.version == self.spec.cluster.version)
        {
            problems.push(Problem::new(format!(
                "the cluster's version {} is not in the version catalogue",
                self.spec.cluster.version
            )));
        }
        for ng in &self.spec.nodegroups {
            if ng.version.is_some_and(|v| v > self.spec.cluster.version) {
                problems.push(Problem::new(format!(
                    "node group `{}` is newer than the control plane",
                    ng.name
                )));
            }
        }
        let catalog = self.addon_catalog();
        for addon in &self.spec.addons {
            if !catalog.iter().any(|c| {
                c.name == addon.name && c.versions.iter().any(|v| v.version == addon.version)
            }) {
                problems.push(Problem::new(format!(
                    "add-on `{}` version `{}` is not in the add-on catalogue",
                    addon.name, addon.version
                )));
            }
        }
        for w in &self.spec.workloads {
            if !matches!(w.kind.as_str(), "Deployment" | "StatefulSet" | "DaemonSet") {
                problems.push(Problem::new(format!(
                    "workload `{}/{}` has kind `{}`; use Deployment, StatefulSet or DaemonSet",
                    w.namespace, w.name, w.kind
                )));
            }
        }
        for b in &self.spec.faults.break_after {
            let known = b.workload.split_once('/').is_some_and(|(ns, name)| {
                self.spec
                    .workloads
                    .iter()
                    .any(|w| w.namespace == ns && w.name == name)
            });
            if !known {
                problems.push(Problem::new(format!(
                    "`faults.breakAfter` names `{}`, which is not a workload of the scenario",
                    b.workload
                )));
            }
        }
        if let Some(phase) = &self.spec.faults.backup_phase
            && !matches!(
                phase.as_str(),
                "Completed" | "PartiallyFailed" | "Failed" | "FailedValidation"
            )
        {
            problems.push(Problem::new(format!(
                "`faults.backupPhase` `{phase}` is not a Velero terminal phase"
            )));
        }
        for f in &self.spec.faults.api {
            if !matches!(f.service.as_str(), "eks" | "kubernetes" | "s3")
                || !matches!(f.fault.as_str(), "throttle" | "unavailable" | "internal")
            {
                problems.push(Problem::new(format!(
                    "`faults.api` entry `{} {}` needs service eks|kubernetes|s3 and fault throttle|unavailable|internal",
                    f.service, f.operation
                )));
            }
        }
        problems
    }

    /// The EKS version catalogue in effect.
    pub fn versions(&self) -> Vec<VersionSpec> {
        self.spec.versions.clone().unwrap_or_else(builtin_versions)
    }

    /// The add-on catalogue in effect.
    pub fn addon_catalog(&self) -> Vec<AddonCatalogEntry> {
        self.spec
            .addon_catalog
            .clone()
            .unwrap_or_else(builtin_addon_catalog)
    }

    /// Converts an emulated duration to real time under the scenario's speed.
    pub fn real(&self, emulated: HumanDuration) -> Duration {
        Duration::from_secs_f64(emulated.0.as_secs_f64() / self.spec.speed)
    }
}
