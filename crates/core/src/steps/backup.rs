//! `veleroBackup`: creates a Backup (or re-attaches to the one this run created) and waits for
//! it by watch, reporting items backed up as it goes.

use super::{StepCtx, StepError, StepResult, object_name};
use crate::velero::backup::{self, BackupOutcome};
use crate::workflow::model::VeleroBackup;

pub async fn run(step: &VeleroBackup, ctx: &StepCtx<'_>) -> StepResult {
    let namespace = ctx.workflow.velero.namespace.as_str();
    let name = match ctx.fact::<String>("backup").await {
        Some(n) => n,
        None => {
            let n = object_name(ctx.run_id, &ctx.key.id);
            // Journaled before the create: a crash after it leaves the name to re-attach to.
            ctx.record("backup", &n).await?;
            n
        }
    };
    let object = backup::backup_object(&name, ctx.run_id, ctx.cluster(), step);
    let created = backup::create_or_adopt(ctx.conn.kube.clone(), namespace, &object, ctx.run_id)
        .await
        .map_err(|e| StepError::Failed(e.to_string()))?;
    let adopted = ctx
        .fact::<Option<String>>("backupUid")
        .await
        .flatten()
        .is_some_and(|uid| created.metadata.uid.as_deref() == Some(uid.as_str()));
    ctx.record("backupUid", &created.metadata.uid).await?;
    ctx.progress(
        &if adopted {
            format!("re-attached to Backup `{name}`; waiting for Velero")
        } else {
            format!("Backup `{name}` created; waiting for Velero")
        },
        None,
        None,
    );

    let outcome: BackupOutcome = backup::wait(
        ctx.conn.kube.clone(),
        namespace,
        &name,
        step.timeout.0,
        |status| {
            let phase = status.phase.as_deref().unwrap_or("New");
            ctx.progress(
                &format!("`{name}`: {phase}"),
                status.items_done,
                status.total_items,
            );
        },
    )
    .await
    .map_err(|e| StepError::Failed(format!("{e}; the Backup is kept for inspection")))?;
    ctx.record("outcome", &outcome).await?;

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
