//! The faults a scenario injects: failed EKS updates, insight enforcement, Velero backup phases
//! and bucket damage, API errors, workloads an upgrade breaks, failed or partly failed restores,
//! degraded add-ons and failing Jobs.

use serde::Deserialize;

use eks_upgrade_core::types::Version;

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
    /// Namespaces whose items a Velero restore cannot restore: each gets an error in the
    /// restore's results and the Restore ends `PartiallyFailed` (say, a webhook refusing them).
    #[serde(default)]
    pub restore_errors: Vec<String>,
    /// Every pod of a `batch/v1` Job fails (exit code 1), so the Job ends `Failed` with
    /// `BackoffLimitExceeded` once its retries are used up.
    #[serde(default)]
    pub jobs_fail: bool,
    /// Add-ons that end `DEGRADED` when updated for a version.
    #[serde(default)]
    pub addon_degrades: Vec<AddonDegrades>,
    /// Karpenter launches that fail, per NodePool.
    #[serde(default)]
    pub launch_failures: Vec<LaunchFailure>,
    /// Workloads (`namespace/name`) whose pods are Ready but answer requests with HTTP 500:
    /// broken in a way only traffic shows.
    #[serde(default)]
    pub serves_errors: Vec<String>,
}

/// Karpenter cannot launch nodes for a NodePool: the replacement NodeClaim's `Launched`
/// condition turns `False` with this reason, the NodePool reports `NodeRegistrationHealthy`
/// `False`, and the node it was to replace is released and tried again later.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LaunchFailure {
    /// A NodePool of `karpenter.nodePools`.
    pub node_pool: String,
    /// Default: `InsufficientCapacityError`, what EC2 answers when no capacity is left.
    #[serde(default = "insufficient_capacity")]
    pub reason: String,
    #[serde(default)]
    pub message: Option<String>,
    /// How many launches fail before they succeed again. Default: every one.
    #[serde(default)]
    pub count: Option<u32>,
}

fn insufficient_capacity() -> String {
    "InsufficientCapacityError".into()
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
    /// For an add-on: only updates to this add-on version fail (an upgrade and a rollback
    /// happen on the same cluster version). Default: any.
    #[serde(default)]
    pub addon_version: Option<String>,
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
    /// `eks`, `ec2`, `kubernetes` or `s3`.
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
    /// The version whose arrival breaks the workload.
    pub version: Version,
    /// `NAMESPACE/NAME` of a Deployment, StatefulSet or DaemonSet.
    pub workload: String,
    /// What must reach `version`: the control plane (default), or a managed node group — a
    /// workload that breaks only once its nodes run the new kubelet.
    #[serde(default)]
    pub after: BreakTrigger,
}

/// What brings a `breakAfter` fault on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BreakTrigger {
    #[default]
    ControlPlane,
    Nodegroups,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddonDegrades {
    pub addon: String,
    pub version: Version,
}
