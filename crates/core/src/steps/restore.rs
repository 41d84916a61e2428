//! `veleroRestore`: restores the backup a `veleroBackup` step made — only if this run verified
//! it in S3, because Velero itself restores whatever it is given.

use super::verify::Verified;
use super::{StepCtx, StepError, StepResult, object_name};
use crate::velero::{objects, restore};
use crate::workflow::model::VeleroRestore;

pub async fn run(step: &VeleroRestore, ctx: &StepCtx<'_>) -> StepResult {
    let backup: String = ctx.fact_of(&step.backup, "backup").await.ok_or_else(|| {
        StepError::Failed(format!(
            "step `{}` has not created a backup in this run; there is nothing to restore",
            step.backup
        ))
    })?;
    let namespace = ctx.workflow.velero.namespace.as_str();

    let verified: Vec<Verified> = ctx
        .journal
        .read(|j| {
            j.steps
                .iter()
                .filter_map(|s| s.facts.get("verified"))
                .filter_map(|v| serde_json::from_value::<Verified>(v.clone()).ok())
                .collect()
        })
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
        .map_err(|e| StepError::Failed(format!("cannot read Backup `{backup}`: {e}")))?
        .ok_or_else(|| StepError::Failed(format!("Backup `{backup}` no longer exists")))?;
    if proof.uid.is_some() && current.metadata.uid != proof.uid {
        return Err(StepError::Failed(format!(
            "refusing to restore `{backup}`: it was replaced after verification (uid changed)"
        )));
    }

    let name = match ctx.fact::<String>("restore").await {
        Some(n) => n,
        None => {
            let n = object_name(ctx.run_id, &ctx.key.id);
            ctx.record("restore", &n).await?;
            n
        }
    };
    let object = restore::restore_object(&name, &backup, ctx.run_id, ctx.cluster(), step);
    restore::create_or_adopt(ctx.conn.kube.clone(), namespace, &object, ctx.run_id)
        .await
        .map_err(|e| StepError::Failed(e.to_string()))?;
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
    .map_err(|e| StepError::Failed(e.to_string()))?;
    ctx.record("outcome", &outcome).await?;
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
