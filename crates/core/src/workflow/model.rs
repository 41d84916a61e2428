//! The validated workflow: what the engine runs. Every default is filled in, every reference
//! is resolved, and nothing here can be malformed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub use super::raw::{
    ExistingResourcePolicy, FailOn, NotifyEvent, OverrideSeverity, ResolveConflicts, VerifyDepth,
};
use crate::types::{HumanDuration, Version, Window};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Workflow {
    /// The file it was loaded from.
    pub path: PathBuf,
    pub name: String,
    pub description: Option<String>,
    pub cluster: ClusterRef,
    pub target: Option<Target>,
    pub window: Option<Window>,
    pub velero: VeleroSettings,
    pub prepare: Vec<Step>,
    pub upgrade: Vec<Step>,
    pub on_failure: Vec<Step>,
    pub finish: Vec<Step>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterRef {
    pub name: Option<String>,
    pub region: Option<String>,
}

/// Where the run should end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Target {
    /// One minor version above the current one.
    Next,
    /// The newest version EKS offers.
    Latest,
    Version(Version),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Next => f.write_str("next"),
            Target::Latest => f.write_str("latest"),
            Target::Version(v) => v.fmt(f),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VeleroSettings {
    pub namespace: String,
    pub storage_location: String,
}

/// The section a step belongs to; decides when it runs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    Prepare,
    Upgrade,
    OnFailure,
    Finish,
}

impl Phase {
    /// The key of the section in the file.
    pub fn key(self) -> &'static str {
        match self {
            Phase::Prepare => "prepare",
            Phase::Upgrade => "upgrade",
            Phase::OnFailure => "onFailure",
            Phase::Finish => "finish",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub id: String,
    pub name: Option<String>,
    #[serde(flatten)]
    pub kind: StepKind,
}

impl Step {
    /// The title shown in progress output and reports.
    pub fn title(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.kind.title().to_string())
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StepKind {
    Preflight(Preflight),
    VeleroBackup(VeleroBackup),
    VerifyBackup(VerifyBackup),
    Approval(Approval),
    UpgradeControlPlane(UpgradeControlPlane),
    UpgradeAddons(UpgradeAddons),
    UpgradeNodegroups(UpgradeNodegroups),
    Eksctl(Eksctl),
    HealthCheck(HealthCheck),
    VeleroRestore(VeleroRestore),
    RollbackControlPlane(RollbackControlPlane),
    Notify(Notify),
}

impl StepKind {
    /// The YAML key of the kind.
    pub fn key(&self) -> &'static str {
        match self {
            StepKind::Preflight(_) => "preflight",
            StepKind::VeleroBackup(_) => "veleroBackup",
            StepKind::VerifyBackup(_) => "verifyBackup",
            StepKind::Approval(_) => "approval",
            StepKind::UpgradeControlPlane(_) => "upgradeControlPlane",
            StepKind::UpgradeAddons(_) => "upgradeAddons",
            StepKind::UpgradeNodegroups(_) => "upgradeNodegroups",
            StepKind::Eksctl(_) => "eksctl",
            StepKind::HealthCheck(_) => "healthCheck",
            StepKind::VeleroRestore(_) => "veleroRestore",
            StepKind::RollbackControlPlane(_) => "rollbackControlPlane",
            StepKind::Notify(_) => "notify",
        }
    }

    pub fn title(&self) -> &'static str {
        match self {
            StepKind::Preflight(_) => "Pre-flight checks",
            StepKind::VeleroBackup(_) => "Velero backup",
            StepKind::VerifyBackup(_) => "Verify backup in S3",
            StepKind::Approval(_) => "Approval",
            StepKind::UpgradeControlPlane(_) => "Upgrade control plane",
            StepKind::UpgradeAddons(_) => "Upgrade add-ons",
            StepKind::UpgradeNodegroups(_) => "Upgrade node groups",
            StepKind::Eksctl(_) => "Upgrade with eksctl",
            StepKind::HealthCheck(_) => "Health check",
            StepKind::VeleroRestore(_) => "Velero restore",
            StepKind::RollbackControlPlane(_) => "Roll back control plane",
            StepKind::Notify(_) => "Notify",
        }
    }

    /// Whether the step changes the cluster (as opposed to reading it or talking to people).
    pub fn mutates_cluster(&self) -> bool {
        matches!(
            self,
            StepKind::VeleroBackup(_)
                | StepKind::UpgradeControlPlane(_)
                | StepKind::UpgradeAddons(_)
                | StepKind::UpgradeNodegroups(_)
                | StepKind::Eksctl(_)
                | StepKind::VeleroRestore(_)
                | StepKind::RollbackControlPlane(_)
        )
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preflight {
    pub fail_on: FailOn,
    pub ignore: Vec<String>,
    pub overrides: Vec<CheckOverride>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckOverride {
    pub check: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub severity: OverrideSeverity,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VeleroBackup {
    pub included_namespaces: Option<Vec<String>>,
    pub excluded_namespaces: Vec<String>,
    pub included_resources: Option<Vec<String>>,
    pub excluded_resources: Vec<String>,
    pub label_selector: Option<BTreeMap<String, String>>,
    pub snapshot_volumes: Option<bool>,
    pub ttl: HumanDuration,
    pub storage_location: String,
    pub timeout: HumanDuration,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyBackup {
    /// The id of the `veleroBackup` step.
    pub backup: String,
    pub depth: VerifyDepth,
    pub timeout: HumanDuration,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub message: String,
    pub auto: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeControlPlane {
    pub timeout: HumanDuration,
    pub force: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeAddons {
    pub addons: Option<Vec<String>>,
    pub versions: BTreeMap<String, String>,
    pub resolve_conflicts: ResolveConflicts,
    pub timeout: HumanDuration,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeNodegroups {
    pub nodegroups: Option<Vec<String>>,
    pub max_parallel: u32,
    pub force: bool,
    pub timeout: HumanDuration,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Eksctl {
    /// As written; relative paths start from the directory the tool runs in.
    pub config_file: PathBuf,
    pub binary: String,
    pub upgrade_nodegroups: bool,
    pub update_addons: bool,
    pub timeout: HumanDuration,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub url: String,
    pub expect_status: Option<u16>,
    pub timeout: HumanDuration,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    pub settle: HumanDuration,
    pub timeout: HumanDuration,
    pub interval: HumanDuration,
    pub namespaces: Option<Vec<String>>,
    pub probes: Vec<Probe>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VeleroRestore {
    /// The id of the `veleroBackup` step.
    pub backup: String,
    pub existing_resource_policy: ExistingResourcePolicy,
    pub included_namespaces: Option<Vec<String>>,
    pub excluded_namespaces: Vec<String>,
    pub timeout: HumanDuration,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackControlPlane {
    pub timeout: HumanDuration,
    pub force: bool,
    pub rollback_timeout_minutes: Option<u32>,
}

/// Where a webhook URL comes from. The URL itself is never logged.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum WebhookUrl {
    #[serde(serialize_with = "redact")]
    Literal(String),
    Env(String),
}

fn redact<S: serde::Serializer>(_: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("<redacted>")
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notify {
    pub url: WebhookUrl,
    pub on: Vec<NotifyEvent>,
    pub timeout: HumanDuration,
    pub retries: u32,
}

impl Workflow {
    pub fn phase(&self, phase: Phase) -> &[Step] {
        match phase {
            Phase::Prepare => &self.prepare,
            Phase::Upgrade => &self.upgrade,
            Phase::OnFailure => &self.on_failure,
            Phase::Finish => &self.finish,
        }
    }

    pub fn steps(&self) -> impl Iterator<Item = (Phase, &Step)> {
        [
            Phase::Prepare,
            Phase::Upgrade,
            Phase::OnFailure,
            Phase::Finish,
        ]
        .into_iter()
        .flat_map(move |p| self.phase(p).iter().map(move |s| (p, s)))
    }

    pub fn step_count(&self) -> usize {
        self.prepare.len() + self.upgrade.len() + self.on_failure.len() + self.finish.len()
    }
}

/// Defaults, in one place so the docs, the schema descriptions and the code agree.
pub mod defaults {
    use super::Duration;

    pub const VELERO_NAMESPACE: &str = "velero";
    pub const STORAGE_LOCATION: &str = "default";
    pub const BACKUP_TTL: Duration = Duration::from_secs(720 * 3600);
    pub const BACKUP_TIMEOUT: Duration = Duration::from_secs(3600);
    pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(30 * 60);
    pub const CONTROL_PLANE_TIMEOUT: Duration = Duration::from_secs(60 * 60);
    pub const ADDON_TIMEOUT: Duration = Duration::from_secs(20 * 60);
    pub const NODEGROUP_TIMEOUT: Duration = Duration::from_secs(90 * 60);
    pub const EKSCTL_TIMEOUT: Duration = Duration::from_secs(90 * 60);
    pub const EKSCTL_CONFIG: &str = "helpers/eksctl.yaml";
    pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(15 * 60);
    pub const HEALTH_INTERVAL: Duration = Duration::from_secs(10);
    pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
    pub const RESTORE_TIMEOUT: Duration = Duration::from_secs(3600);
    pub const ROLLBACK_TIMEOUT: Duration = Duration::from_secs(60 * 60);
    pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);
    pub const NOTIFY_RETRIES: u32 = 3;
    pub const APPROVAL_MESSAGE: &str = "Continue with the upgrade?";
}

impl Workflow {
    /// The workflow with its waits (step timeouts, settle times, poll intervals) divided by
    /// `factor`, for rehearsals against the sandbox, whose clock runs `factor` times faster.
    /// Retention (`ttl`) and network timeouts of probes and webhooks are real time and stay.
    pub fn with_time_scale(&self, factor: f64) -> Workflow {
        if !(factor.is_finite() && factor > 1.0) {
            return self.clone();
        }
        let scale = |d: &mut HumanDuration, floor_ms: u64| {
            let scaled = d.0.as_secs_f64() / factor;
            d.0 = Duration::from_secs_f64(scaled).max(Duration::from_millis(floor_ms).min(d.0));
        };
        let mut w = self.clone();
        for step in w
            .prepare
            .iter_mut()
            .chain(w.upgrade.iter_mut())
            .chain(w.on_failure.iter_mut())
            .chain(w.finish.iter_mut())
        {
            match &mut step.kind {
                StepKind::VeleroBackup(s) => scale(&mut s.timeout, 1000),
                StepKind::VerifyBackup(s) => scale(&mut s.timeout, 1000),
                StepKind::UpgradeControlPlane(s) => scale(&mut s.timeout, 1000),
                StepKind::UpgradeAddons(s) => scale(&mut s.timeout, 1000),
                StepKind::UpgradeNodegroups(s) => scale(&mut s.timeout, 1000),
                StepKind::Eksctl(s) => scale(&mut s.timeout, 1000),
                StepKind::HealthCheck(s) => {
                    scale(&mut s.settle, 0);
                    scale(&mut s.timeout, 1000);
                    scale(&mut s.interval, 100);
                }
                StepKind::VeleroRestore(s) => scale(&mut s.timeout, 1000),
                StepKind::RollbackControlPlane(s) => scale(&mut s.timeout, 1000),
                StepKind::Preflight(_) | StepKind::Approval(_) | StepKind::Notify(_) => {}
            }
        }
        w
    }
}
