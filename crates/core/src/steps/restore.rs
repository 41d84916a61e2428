//! `veleroRestore`: restores the backup a `veleroBackup` step made — only if this run verified
//! it in S3, because Velero itself restores whatever it is given.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kind::{BuildCx, Kind, Placement, PlanCx, Role, TimeScale};
use super::verify::{VERIFIED, Verified};
use super::{Context, StepCtx, StepError, StepResult, backup, object_name};
use crate::cloud::eks::EksError;
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::{DurationText, StepRef};
use crate::journal::Fact;
use crate::types::{HumanDuration, Phase};
use crate::velero::restore::{ExistingResourcePolicy, RestoreOutcome, RestoreSpec};
use crate::velero::{objects, restore};

/// The name of the Restore, journaled before it is created.
pub const RESTORE: Fact<String> = Fact::new("restore");
/// How the Restore ended.
pub const OUTCOME: Fact<RestoreOutcome> = Fact::new("outcome");

/// How long to wait for the restore unless the step says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// Where recovery steps may appear.
pub const RECOVERY: Placement = Placement {
    sections: &[Phase::OnFailure],
    why: "recovery runs only when an upgrade step failed",
};

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

/// A validated `veleroRestore` step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VeleroRestore {
    /// The id of the `veleroBackup` step.
    pub backup: String,
    #[serde(flatten)]
    pub spec: RestoreSpec,
    pub timeout: HumanDuration,
}

pub struct VeleroRestoreKind;

impl Kind for VeleroRestoreKind {
    type Raw = RawVeleroRestore;
    type Model = VeleroRestore;

    const DOC: &'static str = "Restores a verified backup.";
    const TITLE: &'static str = "Velero restore";
    const PLACEMENT: Placement = RECOVERY;
    const MUTATES: bool = true;
    const ROLES: &'static [Role] = &[Role::RestoresBackup];
    const EXAMPLE: &'static str = "{ backup: backup }";

    fn build(
        raw: &Spanned<RawVeleroRestore>,
        v: &mut Validator<'_>,
        _: &BuildCx<'_>,
    ) -> Option<VeleroRestore> {
        let r = &raw.value;
        Some(VeleroRestore {
            backup: r.backup.value.0.clone(),
            spec: RestoreSpec {
                existing_resource_policy: r
                    .existing_resource_policy
                    .unwrap_or(ExistingResourcePolicy::Update),
                included_namespaces: r.included_namespaces.clone(),
                excluded_namespaces: r.excluded_namespaces.clone(),
            },
            timeout: v.positive("timeout", r.timeout.as_ref(), DEFAULT_TIMEOUT),
        })
    }

    fn backup_ref(raw: &RawVeleroRestore) -> Option<&Spanned<StepRef>> {
        Some(&raw.backup)
    }

    fn backup(step: &VeleroRestore) -> Option<&str> {
        Some(&step.backup)
    }

    async fn plan(step: &VeleroRestore, _: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        Ok(vec![format!(
            "if an upgrade step fails: restores the verified backup of `{}` (existing objects: {})",
            step.backup,
            if step.spec.existing_resource_policy == ExistingResourcePolicy::Update {
                "update"
            } else {
                "keep"
            }
        )])
    }

    async fn run(step: &VeleroRestore, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }

    fn scale_time(step: &mut VeleroRestore, scale: &TimeScale) {
        scale.timeout(&mut step.timeout);
    }
}

async fn run(step: &VeleroRestore, ctx: &StepCtx<'_>) -> StepResult {
    let backup: String = ctx
        .fact_of(&step.backup, &backup::BACKUP)
        .await
        .ok_or_else(|| {
            StepError::Failed(format!(
                "step `{}` has not created a backup in this run; there is nothing to restore",
                step.backup
            ))
        })?;
    let namespace = ctx.velero.namespace.as_str();

    let verified: Vec<Verified> = ctx
        .journal
        .read(|j| j.steps.iter().filter_map(|s| s.get(&VERIFIED)).collect())
        .await;
    let Some(proof) = verified.iter().find(|v| v.backup == backup) else {
        return Err(StepError::Failed(format!(
            "refusing to restore `{backup}`: this run did not verify it in S3"
        )));
    };
    let api = objects::backups(ctx.conn.kube.clone(), namespace);
    let current = api
        .get_opt(&backup)
        .await
        .context(|| format!("cannot read Backup `{backup}`"))?
        .ok_or_else(|| StepError::Failed(format!("Backup `{backup}` no longer exists")))?;
    if proof.uid.is_some() && current.metadata.uid != proof.uid {
        return Err(StepError::Failed(format!(
            "refusing to restore `{backup}`: it was replaced after verification (uid changed)"
        )));
    }

    let name = match ctx.fact(&RESTORE).await {
        Some(n) => n,
        None => {
            let n = object_name(ctx.run_id, &ctx.key.id);
            ctx.record(&RESTORE, &n).await?;
            n
        }
    };
    let object = restore::restore_object(&name, &backup, ctx.run_id, ctx.cluster(), &step.spec);
    restore::create_or_adopt(ctx.conn.kube.clone(), namespace, &object, ctx.run_id)
        .await
        .cause()?;
    let outcome = restore::wait(
        ctx.conn.kube.clone(),
        namespace,
        &name,
        &backup,
        step.timeout.0,
        |status| {
            let phase = status.phase.as_deref().unwrap_or("New");
            ctx.progress(
                &format!("Restore `{name}`: {phase}"),
                status.items_done,
                status.total_items,
            );
        },
    )
    .await
    .cause()?;
    ctx.record(&OUTCOME, &outcome).await?;
    let s = &outcome.status;
    let items = s.items_done.unwrap_or(0);
    match s.phase.as_deref() {
        Some("Completed") => Ok(format!(
            "restored {items} items from `{backup}` ({} warnings)",
            s.warnings
        )),
        Some(phase) => Err(StepError::Failed(format!(
            "Restore `{name}` from `{backup}` ended {phase}: {items} items restored, {} errors, {} warnings{}; see `velero restore describe {name} -n {namespace}`",
            s.errors,
            s.warnings,
            if s.validation_errors.is_empty() {
                String::new()
            } else {
                format!(" ({})", s.validation_errors.join("; "))
            }
        ))),
        None => Err(StepError::Failed(format!(
            "Restore `{name}` ended without a phase"
        ))),
    }
}
