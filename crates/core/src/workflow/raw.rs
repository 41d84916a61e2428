//! The workflow file as written: every section and step option, with source locations.
//!
//! These types are the single description of the format. The JSON Schema is generated from
//! them (doc comments become the descriptions editors show), the structural check walks that
//! schema, and [`super::validate`] turns a parsed file into the validated [`super::model`].
//! Text that needs interpretation (durations, versions, times) stays text here so that a bad
//! value is reported with its location and a fix, instead of as a bare serde error.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use super::spanned::Spanned;

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $schema:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                $schema
            }
        }
    };
}

text_type!(
    /// A human duration such as `90s`, `30m`, `12h` or `1h30m`.
    DurationText,
    json_schema!({
        "type": "string",
        "description": "A duration: whole numbers with units ms, s, m, h, d, such as `90s`, `30m` or `1h30m`.",
        "pattern": "^\\s*([0-9]+(ms|s|m|h|d))+\\s*$"
    })
);

text_type!(
    /// A Kubernetes `MAJOR.MINOR` version such as `1.33`.
    VersionText,
    json_schema!({
        "type": "string",
        "description": "A Kubernetes version as MAJOR.MINOR, such as \"1.33\". Quote it: an unquoted 1.30 is a number.",
        "pattern": "^[0-9]+\\.[0-9]+$"
    })
);

text_type!(
    /// The version to upgrade to: `next`, `latest`, or a `MAJOR.MINOR` version.
    TargetText,
    json_schema!({
        "type": "string",
        "description": "The version to end at: \"next\" (one minor version up), \"latest\" (the newest version EKS offers) or a MAJOR.MINOR version such as \"1.35\".",
        "pattern": "^(next|latest|[0-9]+\\.[0-9]+)$"
    })
);

text_type!(
    /// A 24-hour wall-clock time, `HH:MM`.
    TimeText,
    json_schema!({
        "type": "string",
        "description": "A 24-hour time as HH:MM, such as \"02:00\".",
        "pattern": "^([01]?[0-9]|2[0-3]):[0-5][0-9]$"
    })
);

text_type!(
    /// A day of the week.
    DayText,
    json_schema!({
        "type": "string",
        "description": "A day of the week: Mon, Tue, Wed, Thu, Fri, Sat or Sun (full names also work).",
        "enum": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
                 "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    })
);

text_type!(
    /// The id of an earlier step.
    StepRef,
    json_schema!({
        "type": "string",
        "description": "The id of an earlier step of the workflow."
    })
);

/// A workflow file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "eks-upgrade workflow")]
pub struct RawWorkflow {
    /// Always `eks-upgrade/v1`.
    pub api_version: Spanned<String>,
    /// Always `Workflow`.
    pub kind: Spanned<String>,
    pub metadata: Spanned<RawMetadata>,
    pub spec: Spanned<RawSpec>,
}

/// Names the workflow.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMetadata {
    /// A short name, shown in plans, logs and reports.
    pub name: Spanned<String>,
    /// What the workflow is for.
    pub description: Option<String>,
}

/// What the run does and to which cluster.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSpec {
    /// The cluster to upgrade. `--cluster` and `--region` override it.
    pub cluster: Option<Spanned<RawCluster>>,
    /// The version to end at. `--target` overrides it; when neither is given, an interactive run
    /// asks and an unattended run stops.
    pub target: Option<Spanned<TargetText>>,
    /// When an unattended run may start work. Without a window it may start at any time.
    pub window: Option<Spanned<RawWindow>>,
    /// Where Velero runs.
    pub velero: Option<Spanned<RawVelero>>,
    /// Steps run once, before the first hop. A failure here stops the run before any change.
    #[serde(default)]
    pub prepare: Vec<Spanned<RawStep>>,
    /// Steps run once per hop (one minor version each).
    #[serde(default)]
    pub upgrade: Vec<Spanned<RawStep>>,
    /// Steps run when an `upgrade` step fails: restore, roll back, check health again.
    #[serde(default)]
    pub on_failure: Vec<Spanned<RawStep>>,
    /// Steps run once after the last hop succeeded.
    #[serde(default)]
    pub finish: Vec<Spanned<RawStep>>,
}

/// An EKS cluster.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCluster {
    /// The EKS cluster name.
    pub name: Option<Spanned<String>>,
    /// The AWS region, such as `eu-west-1`.
    pub region: Option<Spanned<String>>,
}

/// A weekly maintenance window.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawWindow {
    /// Days on which the window opens.
    pub days: Spanned<Vec<Spanned<DayText>>>,
    /// Local time at which the window opens.
    pub start: Spanned<TimeText>,
    /// Local time at which it closes. An end before the start means the window crosses midnight.
    pub end: Spanned<TimeText>,
    /// An IANA time zone such as `UTC` or `Europe/Berlin`. Default: `UTC`.
    pub timezone: Option<Spanned<String>>,
}

/// Velero's installation.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawVelero {
    /// The namespace Velero runs in. Default: `velero`.
    pub namespace: Option<Spanned<String>>,
    /// The BackupStorageLocation backups go to. Default: `default`.
    pub storage_location: Option<Spanned<String>>,
}

/// One step: an `id` and exactly one step kind.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(transform = exactly_one_kind)]
pub struct RawStep {
    /// A unique id, used in plans, logs, the journal and references such as `backup: backup`.
    pub id: Spanned<String>,
    /// A human title for progress and reports. Default: derived from the kind.
    pub name: Option<String>,
    /// Runs the pre-flight check catalog for every hop's target.
    pub preflight: Option<Spanned<RawPreflight>>,
    /// Creates a Velero Backup and waits for it to finish.
    pub velero_backup: Option<Spanned<RawVeleroBackup>>,
    /// Checks a backup's files directly in S3.
    pub verify_backup: Option<Spanned<RawVerifyBackup>>,
    /// Asks a person to confirm, or requires `--yes` when unattended.
    pub approval: Option<Spanned<RawApproval>>,
    /// Upgrades the control plane to the hop's version.
    pub upgrade_control_plane: Option<Spanned<RawUpgradeControlPlane>>,
    /// Upgrades EKS add-ons to versions compatible with the hop's version.
    pub upgrade_addons: Option<Spanned<RawUpgradeAddons>>,
    /// Upgrades managed node groups to the hop's version.
    pub upgrade_nodegroups: Option<Spanned<RawUpgradeNodegroups>>,
    /// Drives `eksctl` with a ClusterConfig file instead of calling EKS directly.
    pub eksctl: Option<Spanned<RawEksctl>>,
    /// Checks the cluster's health against the baseline taken before the upgrade.
    pub health_check: Option<Spanned<RawHealthCheck>>,
    /// Restores a verified backup.
    pub velero_restore: Option<Spanned<RawVeleroRestore>>,
    /// Rolls the control plane back one minor version, where EKS allows it.
    pub rollback_control_plane: Option<Spanned<RawRollbackControlPlane>>,
    /// Subscribes a webhook to the run: `start` is sent when the step is reached, `success` or
    /// `failure` when the run ends. Allowed in `prepare`; put it first to hear about every outcome.
    pub notify: Option<Spanned<RawNotify>>,
}

/// The YAML keys that name a step kind, in catalog order.
pub const STEP_KINDS: [&str; 12] = [
    "preflight",
    "veleroBackup",
    "verifyBackup",
    "approval",
    "upgradeControlPlane",
    "upgradeAddons",
    "upgradeNodegroups",
    "eksctl",
    "healthCheck",
    "veleroRestore",
    "rollbackControlPlane",
    "notify",
];

fn exactly_one_kind(schema: &mut Schema) {
    let one_of: Vec<serde_json::Value> = STEP_KINDS
        .iter()
        .map(|k| serde_json::json!({ "required": [k] }))
        .collect();
    schema.insert("oneOf".into(), one_of.into());
}

/// Severity at or above which a pre-flight finding stops the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FailOn {
    /// Stop on errors only (default).
    Error,
    /// Stop on warnings too.
    Warning,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OverrideSeverity {
    /// Count matching findings as errors.
    Error,
    /// Count matching findings as warnings.
    Warning,
    /// Drop the finding.
    Ignore,
}

/// Pre-flight options.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPreflight {
    /// Stop on `error` findings (default) or on `warning` ones too.
    pub fail_on: Option<FailOn>,
    /// Check codes to skip entirely.
    #[serde(default)]
    pub ignore: Vec<Spanned<String>>,
    /// Per-object exceptions: known findings that should count differently.
    #[serde(default)]
    pub overrides: Vec<Spanned<RawOverride>>,
}

/// Changes the severity of one check's findings for matching objects.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawOverride {
    /// The check code.
    pub check: Spanned<String>,
    /// Namespace of the objects; omit for any namespace.
    pub namespace: Option<String>,
    /// Name of the object; omit for any name.
    pub name: Option<String>,
    /// The severity to use instead, or `ignore`.
    pub severity: OverrideSeverity,
    /// Why the exception exists; shown in reports.
    pub reason: Option<String>,
}

/// Options for the Velero Backup.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawVeleroBackup {
    /// Namespaces to include. Default: all.
    pub included_namespaces: Option<Vec<String>>,
    /// Namespaces to leave out.
    #[serde(default)]
    pub excluded_namespaces: Vec<String>,
    /// Resources to include (`deployments`, `configmaps.`…). Default: all.
    pub included_resources: Option<Vec<String>>,
    /// Resources to leave out.
    #[serde(default)]
    pub excluded_resources: Vec<String>,
    /// Back up only objects with these labels.
    pub label_selector: Option<BTreeMap<String, String>>,
    /// Take volume snapshots. Default: Velero's own setting.
    pub snapshot_volumes: Option<bool>,
    /// How long Velero keeps the backup. Default: `720h`.
    pub ttl: Option<Spanned<DurationText>>,
    /// The BackupStorageLocation to use. Default: `spec.velero.storageLocation`.
    pub storage_location: Option<Spanned<String>>,
    /// How long to wait for the backup to finish. Default: `1h`.
    pub timeout: Option<Spanned<DurationText>>,
}

/// How deeply to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum VerifyDepth {
    /// The backup's metadata and every small file Velero writes.
    Metadata,
    /// Also stream the whole tarball and check every item (default).
    Full,
}

/// Options for backup verification.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawVerifyBackup {
    /// The id of the `veleroBackup` step whose backup to verify.
    pub backup: Spanned<StepRef>,
    /// `metadata` or `full` (default).
    pub depth: Option<VerifyDepth>,
    /// How long verification may take. Default: `30m`.
    pub timeout: Option<Spanned<DurationText>>,
}

/// Options for a confirmation.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawApproval {
    /// The question to ask.
    pub message: Option<String>,
    /// Approve without asking, also when unattended. Default: `false`.
    pub auto: Option<bool>,
}

/// Options for the control-plane upgrade.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawUpgradeControlPlane {
    /// How long to wait for EKS. Default: `60m`.
    pub timeout: Option<Spanned<DurationText>>,
    /// Upgrade even when EKS upgrade insights report blocking issues. Default: `false`.
    pub force: Option<bool>,
}

/// How EKS treats add-on configuration that differs from its defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ResolveConflicts {
    /// Keep custom configuration (default).
    Preserve,
    /// Replace it with EKS defaults.
    Overwrite,
    /// Fail on conflicts.
    None,
}

/// Options for the add-on upgrade.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawUpgradeAddons {
    /// Add-ons to upgrade. Default: every EKS add-on of the cluster.
    pub addons: Option<Vec<Spanned<String>>>,
    /// Pinned versions by add-on name, instead of the default for the hop's version.
    #[serde(default)]
    pub versions: BTreeMap<String, String>,
    /// `preserve` (default), `overwrite` or `none`.
    pub resolve_conflicts: Option<ResolveConflicts>,
    /// How long to wait for each add-on. Default: `20m`.
    pub timeout: Option<Spanned<DurationText>>,
}

/// Options for the node-group upgrade.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawUpgradeNodegroups {
    /// Managed node groups to upgrade. Default: all.
    pub nodegroups: Option<Vec<Spanned<String>>>,
    /// How many node groups to upgrade at once. Default: `1`.
    pub max_parallel: Option<Spanned<u32>>,
    /// Replace nodes even when pod disruption budgets block draining. Default: `false`.
    pub force: Option<bool>,
    /// How long to wait for each node group. Default: `90m`.
    pub timeout: Option<Spanned<DurationText>>,
}

/// Options for the eksctl-driven upgrade.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawEksctl {
    /// The ClusterConfig file whose `metadata.version` is set to each hop's version.
    /// Default: `helpers/eksctl.yaml`. Relative paths start from the directory the tool runs in.
    pub config_file: Option<Spanned<String>>,
    /// The eksctl executable. Default: `eksctl` from `PATH`.
    pub binary: Option<Spanned<String>>,
    /// Also run `eksctl upgrade nodegroup` for each managed node group. Default: `false`.
    pub upgrade_nodegroups: Option<bool>,
    /// Also run `eksctl update addon`. Default: `false`.
    pub update_addons: Option<bool>,
    /// How long each eksctl command may take. Default: `90m`.
    pub timeout: Option<Spanned<DurationText>>,
}

/// An HTTP endpoint that must answer for the cluster to count as healthy.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawProbe {
    /// The URL to GET.
    pub url: Spanned<String>,
    /// The expected status code. Default: any 2xx.
    pub expect_status: Option<Spanned<u16>>,
    /// Per-request timeout. Default: `5s`.
    pub timeout: Option<Spanned<DurationText>>,
}

/// Options for the health check.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawHealthCheck {
    /// Wait this long before the first check. Default: `0s`.
    pub settle: Option<Spanned<DurationText>>,
    /// Give up after this long. Default: `15m`.
    pub timeout: Option<Spanned<DurationText>>,
    /// Time between attempts. Default: `10s`.
    pub interval: Option<Spanned<DurationText>>,
    /// Namespaces whose workloads are checked. Default: all.
    pub namespaces: Option<Vec<String>>,
    /// Extra HTTP probes.
    #[serde(default)]
    pub probes: Vec<Spanned<RawProbe>>,
}

/// What a restore does to objects that still exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ExistingResourcePolicy {
    /// Leave them as they are.
    None,
    /// Update them to the backed-up state (default).
    Update,
}

/// Options for the restore.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawVeleroRestore {
    /// The id of the `veleroBackup` step whose backup to restore. It must be verified.
    pub backup: Spanned<StepRef>,
    /// `update` (default) or `none`.
    pub existing_resource_policy: Option<ExistingResourcePolicy>,
    /// Namespaces to restore. Default: all in the backup.
    pub included_namespaces: Option<Vec<String>>,
    /// Namespaces not to restore.
    #[serde(default)]
    pub excluded_namespaces: Vec<String>,
    /// How long to wait for the restore. Default: `1h`.
    pub timeout: Option<Spanned<DurationText>>,
}

/// EKS rollback options.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRollbackConfig {
    /// How long EKS may take to roll back, in minutes (120 to 10080). Default: EKS's own (720).
    pub timeout_minutes: Option<Spanned<u32>>,
}

/// Options for the control-plane rollback.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRollbackControlPlane {
    /// How long to wait for the rollback. Default: `60m`.
    pub timeout: Option<Spanned<DurationText>>,
    /// Roll back even when EKS rollback-readiness checks object. Default: `false`.
    pub force: Option<bool>,
    /// Passed to EKS as `rollbackConfig`.
    pub rollback_config: Option<Spanned<RawRollbackConfig>>,
}

/// Moments a notification can be sent at.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum NotifyEvent {
    /// When the `notify` step is reached.
    Start,
    /// When the run ends with every hop done.
    Success,
    /// When the run ends in any other way.
    Failure,
}

/// Options for a webhook notification.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawNotify {
    /// The webhook URL. Prefer `urlEnv`: webhook URLs are secrets.
    pub url: Option<Spanned<String>>,
    /// The environment variable holding the webhook URL.
    pub url_env: Option<Spanned<String>>,
    /// When to send. Default: all of `start`, `success`, `failure`.
    pub on: Option<Vec<NotifyEvent>>,
    /// Per-attempt timeout. Default: `10s`.
    pub timeout: Option<Spanned<DurationText>>,
    /// Extra attempts after a failed one. Default: `3`.
    pub retries: Option<u32>,
}
