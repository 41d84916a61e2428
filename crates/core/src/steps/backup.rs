//! `veleroBackup`: creates a Backup (or re-attaches to the one this run created) and waits for
//! it by watch, reporting items backed up as it goes.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kind::{BuildCx, Kind, Placement, PlanCx, Role, TimeScale};
use super::{Context, StepCtx, StepError, StepResult, object_name};
use crate::cloud::eks::EksError;
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::DurationText;
use crate::journal::Fact;
use crate::types::{HumanDuration, Phase};
use crate::velero::backup::{self, BackupOutcome, BackupSpec};

/// The name of the Backup, journaled before it is created.
pub const BACKUP: Fact<String> = Fact::new("backup");
/// The Backup's uid once created: a Backup with the same name and another uid is not ours.
pub const BACKUP_UID: Fact<Option<String>> = Fact::new("backupUid");
/// How the Backup ended.
pub const OUTCOME: Fact<BackupOutcome> = Fact::new("outcome");

/// Defaults of the step's options.
pub mod defaults {
    use std::time::Duration;

    pub const TTL: Duration = Duration::from_secs(720 * 3600);
    pub const TIMEOUT: Duration = Duration::from_secs(3600);
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

/// A validated `veleroBackup` step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VeleroBackup {
    #[serde(flatten)]
    pub spec: BackupSpec,
    pub timeout: HumanDuration,
}

pub struct VeleroBackupKind;

impl Kind for VeleroBackupKind {
    type Raw = RawVeleroBackup;
    type Model = VeleroBackup;

    const DOC: &'static str = "Creates a Velero Backup and waits for it to finish.";
    const TITLE: &'static str = "Velero backup";
    const PLACEMENT: Placement = Placement {
        sections: &[Phase::Prepare, Phase::Finish],
        why: "backups are taken before the upgrade (or after it succeeded)",
    };
    const MUTATES: bool = true;
    const ROLES: &'static [Role] = &[Role::CreatesBackup];
    const EXAMPLE: &'static str = "{ excludedNamespaces: [kube-system] }";

    fn build(
        raw: &Spanned<RawVeleroBackup>,
        v: &mut Validator<'_>,
        cx: &BuildCx<'_>,
    ) -> Option<VeleroBackup> {
        let b = &raw.value;
        Some(VeleroBackup {
            spec: BackupSpec {
                included_namespaces: b.included_namespaces.clone(),
                excluded_namespaces: b.excluded_namespaces.clone(),
                included_resources: b.included_resources.clone(),
                excluded_resources: b.excluded_resources.clone(),
                label_selector: b.label_selector.clone(),
                snapshot_volumes: b.snapshot_volumes,
                ttl: v.positive("ttl", b.ttl.as_ref(), defaults::TTL),
                storage_location: b
                    .storage_location
                    .as_ref()
                    .map_or_else(|| cx.velero.storage_location.clone(), |l| l.value.clone()),
            },
            timeout: v.positive("timeout", b.timeout.as_ref(), defaults::TIMEOUT),
        })
    }

    async fn plan(step: &VeleroBackup, cx: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        let b = &step.spec;
        let mut scope = Vec::new();
        match &b.included_namespaces {
            Some(n) => scope.push(format!("namespaces {}", n.join(", "))),
            None => scope.push("all namespaces".into()),
        }
        if !b.excluded_namespaces.is_empty() {
            scope.push(format!("except {}", b.excluded_namespaces.join(", ")));
        }
        Ok(vec![format!(
            "creates a Velero Backup in `{}` to location `{}` ({}; ttl {})",
            cx.velero.namespace,
            b.storage_location,
            scope.join(" "),
            b.ttl
        )])
    }

    async fn run(step: &VeleroBackup, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }

    fn scale_time(step: &mut VeleroBackup, scale: &TimeScale) {
        scale.timeout(&mut step.timeout);
    }
}

async fn run(step: &VeleroBackup, ctx: &StepCtx<'_>) -> StepResult {
    let namespace = ctx.velero.namespace.as_str();
    let name = match ctx.fact(&BACKUP).await {
        Some(n) => n,
        None => {
            let n = object_name(ctx.run_id, &ctx.key.id);
            // Journaled before the create: a crash after it leaves the name to re-attach to.
            ctx.record(&BACKUP, &n).await?;
            n
        }
    };
    let object = backup::backup_object(&name, ctx.run_id, ctx.cluster(), &step.spec);
    let created = backup::create_or_adopt(ctx.conn.kube.clone(), namespace, &object, ctx.run_id)
        .await
        .cause()?;
    let adopted = ctx
        .fact(&BACKUP_UID)
        .await
        .flatten()
        .is_some_and(|uid| created.metadata.uid.as_deref() == Some(uid.as_str()));
    ctx.record(&BACKUP_UID, &created.metadata.uid).await?;
    ctx.progress(
        &if adopted {
            format!("re-attached to Backup `{name}`; waiting for Velero")
        } else {
            format!("Backup `{name}` created; waiting for Velero")
        },
        None,
        None,
    );

    let queued = std::sync::Mutex::new(None);
    let outcome: BackupOutcome = backup::wait(
        ctx.conn.kube.clone(),
        namespace,
        &name,
        step.timeout.0,
        |status| {
            let phase = status.phase.as_deref().unwrap_or("New");
            // Velero 1.18 queues backups whose namespaces overlap a running one. Said once per
            // position, unthrottled: a queued backup may not change again for a long time.
            let phase = match status.queue_position {
                Some(p) if phase == "Queued" => {
                    if let Ok(mut last) = queued.lock()
                        && *last != Some(p)
                    {
                        *last = Some(p);
                        ctx.log(&format!(
                            "Backup `{name}` is Queued (position {p}): Velero runs one backup at a time where their namespaces overlap"
                        ));
                    }
                    format!("Queued (position {p})")
                }
                _ => phase.to_string(),
            };
            ctx.progress(
                &format!("`{name}`: {phase}"),
                status.items_done,
                status.total_items,
            );
        },
    )
    .await
    .note("the Backup is kept for inspection")?;
    ctx.record(&OUTCOME, &outcome).await?;

    let s = &outcome.status;
    let items = s.items_done.unwrap_or(0);
    match s.phase.as_deref() {
        Some("Completed") => Ok(format!("Backup `{name}` completed: {items} items")),
        Some("FailedValidation") => Err(StepError::Failed(format!(
            "Backup `{name}` failed validation: {}; nothing was backed up",
            if s.validation_errors.is_empty() {
                "no reason given".to_string()
            } else {
                s.validation_errors.join("; ")
            }
        ))),
        Some(phase) => Err(StepError::Failed(format!(
            "Backup `{name}` ended {phase} with {} errors and {} warnings ({items} items backed up); it is kept for inspection: `velero backup describe {name} --details -n {namespace}`",
            s.errors, s.warnings
        ))),
        None => Err(StepError::Failed(format!(
            "Backup `{name}` ended without a phase"
        ))),
    }
}
