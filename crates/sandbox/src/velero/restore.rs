//! The Restore controller: Velero 1.17's `restore_controller.go` (validation, the run, the
//! uploads), `restore.go` (order, filters, `existingResourcePolicy`) and the restore finalizer.
//! Objects come from the tarball read back from S3, never from the store's memory of them.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::bsl::Location;
use super::diff::merge_diff;
use super::filters::strings;
use super::layout::{self, TARBALL_SUFFIX};
use super::runlog::{Level, Messages, Results, RunLog};
use super::tarball;
use super::{Ctx, Pacer, VeleroError, is_new, progress};
use crate::kube::store::StoreError;

const CONTROLLER: &str = "pkg/controller/restore_controller.go";
const RESTORER: &str = "pkg/restore/restore.go";
pub const FINALIZER: &str = "restores.velero.io/external-resources-finalizer";

pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

fn finalizers(obj: &Value) -> Vec<String> {
    strings(obj.get("metadata").unwrap_or(&Value::Null), "finalizers")
}

pub async fn reconcile(ctx: &Ctx, name: &str) -> Result<(), VeleroError> {
    let restore = match ctx.get("restores", name) {
        Ok(r) => r,
        Err(VeleroError::Store(StoreError::NotFound { .. })) => return Ok(()),
        Err(e) => return Err(e),
    };
    if is_deleting(&restore) {
        return cleanup(ctx, name, &restore).await;
    }
    let mut fins = finalizers(&restore);
    if !fins.iter().any(|f| f == FINALIZER) {
        fins.push(FINALIZER.to_string());
        ctx.patch(
            "restores",
            name,
            &json!({ "metadata": { "finalizers": fins } }),
        )?;
    }
    let original = ctx.get("restores", name)?;
    if !is_new(&original) {
        return Ok(());
    }
    let (modified, source) = super::restore_validate::validate(ctx, &original);
    if let Some(patch) = merge_diff(&original, &modified) {
        ctx.patch("restores", name, &patch)?;
    }
    match source {
        Some((backup, location)) => run(ctx, name, &modified, &backup, &location).await,
        None => Ok(()),
    }
}

/// Deleting a Restore deletes its files from the bucket, then releases the object.
async fn cleanup(ctx: &Ctx, name: &str, restore: &Value) -> Result<(), VeleroError> {
    let mut fins = finalizers(restore);
    if !fins.iter().any(|f| f == FINALIZER) {
        return Ok(());
    }
    delete_files(ctx, restore).await;
    fins.retain(|f| f != FINALIZER);
    let updated = ctx.patch(
        "restores",
        name,
        &json!({ "metadata": { "finalizers": fins } }),
    )?;
    // The store has no finalizer machinery: the last finalizer gone ends the deletion, as the
    // API server would.
    if finalizers(&updated).is_empty() {
        let rt = ctx.velero_type("restores")?;
        match ctx.store().delete(&rt, Some(&ctx.namespace), name) {
            Ok(_) | Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A Restore deleted outright (the sandbox's API server has no graceful deletion): what its
/// finalizer would have done still happens.
pub async fn deleted(ctx: &Ctx, restore: &Value) {
    if finalizers(restore).iter().any(|f| f == FINALIZER) {
        delete_files(ctx, restore).await;
    }
}

/// `deleteExternalResources`: the restore's files, found through its Backup's location. A
/// Restore whose Backup is gone keeps its files, as in Velero.
async fn delete_files(ctx: &Ctx, restore: &Value) {
    let name = restore
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let backup_name = restore
        .pointer("/spec/backupName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let location = ctx
        .get("backups", backup_name)
        .ok()
        .and_then(|b| {
            b.pointer("/spec/storageLocation")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .and_then(|l| ctx.get("backupstoragelocations", &l).ok())
        .and_then(|bsl| Location::from_object(ctx, &bsl).ok());
    if let Some(location) = location
        && !name.is_empty()
    {
        for key in location
            .bucket
            .keys(&location.layout.restore_dir(name))
            .await
            .unwrap_or_default()
        {
            let _ = location.bucket.delete(&key).await;
        }
    }
}

fn fail(ctx: &Ctx, name: &str, reason: &str) -> Result<(), VeleroError> {
    ctx.patch(
        "restores",
        name,
        &json!({ "status": { "phase": "Failed", "failureReason": reason, "completionTimestamp": layout::now() } }),
    )?;
    Ok(())
}

/// `runValidatedRestore`, then the finalizer's phase change.
async fn run(
    ctx: &Ctx,
    name: &str,
    restore: &Value,
    backup: &Value,
    location: &Location,
) -> Result<(), VeleroError> {
    let backup_name = backup
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if ctx.world.scenario.spec.faults.restore_fails {
        return fail(
            ctx,
            name,
            "error downloading backup: injected by the sandbox scenario (faults.restoreFails)",
        );
    }
    let data = match location
        .bucket
        .get(&location.layout.backup_file(&backup_name, TARBALL_SUFFIX))
        .await
    {
        Ok(d) => d,
        Err(e) => return fail(ctx, name, &format!("error downloading backup: {e}")),
    };
    let mut log = RunLog::new("restore", &ctx.namespace, name);
    log.info(CONTROLLER, "starting restore");
    log.info(
        RESTORER,
        &format!("Starting restore of backup {}/{backup_name}", ctx.namespace),
    );
    let mut results = Results::default();
    let contents = tokio::task::spawn_blocking(move || tarball::read(&data)).await;
    let mut list: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut processed = 0usize;
    match contents {
        Ok(Ok(contents)) if contents.resources.is_empty() => {
            results
                .warnings
                .velero
                .push("zero items to be restored: does not exist".into());
        }
        Ok(Ok(contents)) => {
            let plan = super::restore_apply::plan(ctx, restore, &contents);
            let mut applier = super::restore_apply::Applier {
                ctx,
                restore_name: name,
                backup_name: &backup_name,
                policy: restore
                    .pointer("/spec/existingResourcePolicy")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                warnings: Messages::default(),
                errors: Messages::default(),
                created_namespaces: Vec::new(),
            };
            let total = plan.len();
            let mut pacer =
                Pacer::new(ctx.per_item(ctx.world.scenario.spec.timings.restore_per_item.0, total));
            let interval = ctx.progress_interval();
            let mut last = tokio::time::Instant::now();
            ctx.patch(
                "restores",
                name,
                &json!({ "status": { "progress": progress("totalItems", total, "itemsRestored", 0) } }),
            )?;
            for (rt, object) in plan {
                pacer.item().await;
                let (key, entry, outcome) = applier.apply(&rt, object, &mut log);
                list.entry(key)
                    .or_default()
                    .push(format!("{entry}({outcome})"));
                processed += 1;
                if last.elapsed() >= interval {
                    last = tokio::time::Instant::now();
                    let p = progress("totalItems", total, "itemsRestored", processed);
                    ctx.patch("restores", name, &json!({ "status": { "progress": p } }))?;
                }
            }
            for ns in &applier.created_namespaces {
                list.entry("v1/Namespace".into())
                    .or_default()
                    .push(format!("{ns}(created)"));
            }
            results.warnings = applier.warnings;
            results.errors = applier.errors;
        }
        Ok(Err(e)) => results.errors.velero.push(e.to_string()),
        Err(e) => results
            .errors
            .velero
            .push(format!("error extracting backup: {e}")),
    }
    for entries in list.values_mut() {
        entries.sort();
    }
    log_results(&mut log, &results);
    log.info(CONTROLLER, "restore completed");

    let l = &location.layout;
    let uploads = [
        (l.restore_file(name, "-logs.gz"), layout::gzip(&log.text())),
        (
            l.restore_file(name, "-results.gz"),
            layout::json_gz(&results),
        ),
        (
            l.restore_file(name, "-resource-list.json.gz"),
            layout::json_gz(&list),
        ),
        (
            l.restore_file(name, "-itemoperations.json.gz"),
            layout::json_gz(&json!([])),
        ),
        (l.restore_volume_info(name), layout::json_gz(&json!([]))),
    ];
    for (key, body) in uploads {
        // Velero logs these upload errors and carries on.
        let _ = location.bucket.put(&key, body).await;
    }

    let (warnings, errors) = (results.warnings.count(), results.errors.count());
    let mut status = json!({
        "phase": if errors > 0 { "FinalizingPartiallyFailed" } else { "Finalizing" },
        "progress": progress("totalItems", processed, "itemsRestored", processed),
    });
    if warnings > 0 {
        status["warnings"] = json!(warnings);
    }
    if errors > 0 {
        status["errors"] = json!(errors);
    }
    ctx.patch("restores", name, &json!({ "status": status }))?;
    let done = if errors > 0 {
        "PartiallyFailed"
    } else {
        "Completed"
    };
    ctx.patch(
        "restores",
        name,
        &json!({ "status": { "phase": done, "completionTimestamp": layout::now() } }),
    )?;
    Ok(())
}

/// Velero writes every warning and error into the restore log before uploading it.
fn log_results(log: &mut RunLog, results: &Results) {
    for (level, messages, what) in [
        (Level::Error, &results.errors, "error"),
        (Level::Warning, &results.warnings, "warning"),
    ] {
        for m in &messages.velero {
            log.line(
                level,
                CONTROLLER,
                &format!("Velero restore {what}: {m}"),
                &[],
            );
        }
        for m in &messages.cluster {
            log.line(
                level,
                CONTROLLER,
                &format!("Cluster resource restore {what}: {m}"),
                &[],
            );
        }
        for (ns, ms) in &messages.namespaces {
            for m in ms {
                log.line(
                    level,
                    CONTROLLER,
                    &format!("Namespace {ns}, resource restore {what}: {m}"),
                    &[],
                );
            }
        }
    }
}
