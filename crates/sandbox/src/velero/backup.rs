//! The Backup controller: Velero 1.17's `backup_controller.go` (validation, defaults, the run,
//! the upload) and `backup_finalizer_controller.go` (the final `velero-backup.json` and phase).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::bsl::Location;
use super::collect::{self, Item};
use super::diff::merge_diff;
use super::faults::{METADATA, TARBALL};
use super::layout::{self, BACKUP_SIBLINGS, LOGS_SUFFIX, TARBALL_SUFFIX};
use super::objstore::{PART_SIZE, StreamUpload};
use super::runlog::RunLog;
use super::tarball::{self, PREFERRED_SUFFIX, TarballWriter};
use super::{Ctx, Pacer, VeleroError, is_new, progress};
use crate::kube::store::StoreError;

const CONTROLLER: &str = "pkg/controller/backup_controller.go";
const BACKUPPER: &str = "pkg/backup/backup.go";
const ITEM: &str = "pkg/backup/item_backupper.go";
const COLLECTOR: &str = "pkg/backup/item_collector.go";

/// Handles a Backup in phase `""`/`New` (Velero 1.17) or, with Velero 1.18's queue, `Queued`
/// (once it leaves the queue) and `ReadyToStart`; any other phase is left alone.
pub async fn reconcile(ctx: &Ctx, name: &str) -> Result<(), VeleroError> {
    let get = || match ctx.get("backups", name) {
        Ok(o) => Ok(Some(o)),
        Err(VeleroError::Store(StoreError::NotFound { .. })) => Ok(None),
        Err(e) => Err(e),
    };
    let Some(mut original) = get()? else {
        return Ok(());
    };
    if ctx.world.scenario.spec.velero.queues_backups() {
        let ready = match super::phase(&original) {
            "Queued" | "ReadyToStart" => super::queue::dequeue(ctx, name).await?,
            _ => false,
        };
        match (ready, get()?) {
            (true, Some(o)) => original = o,
            _ => return Ok(()),
        }
    } else if !is_new(&original) {
        return Ok(());
    }
    let (prepared, location) = super::prepare::prepare(ctx, &original);
    if let Some(patch) = merge_diff(&original, &prepared) {
        ctx.patch("backups", name, &patch)?;
    }
    match location {
        Some(location) => run(ctx, name, location).await,
        None => Ok(()),
    }
}

/// Ends a backup as `Failed` before anything was uploaded.
fn fail_early(ctx: &Ctx, name: &str, reason: &str) -> Result<(), VeleroError> {
    ctx.patch(
        "backups",
        name,
        &json!({ "status": { "phase": "Failed", "failureReason": reason, "completionTimestamp": layout::now() } }),
    )?;
    Ok(())
}

/// What the item loop produced.
struct Written {
    list: BTreeMap<String, Vec<String>>,
    backed_up: usize,
    /// The tarball's bytes not yet uploaded (all of them when it is not streamed).
    rest: Vec<u8>,
}

/// `runBackup` and `persistBackup`, then the finalizer.
async fn run(ctx: &Ctx, name: &str, location: Location) -> Result<(), VeleroError> {
    let mut log = RunLog::new("backup", &ctx.namespace, name);
    log.info(CONTROLLER, "Setting up backup temp file");
    log.info(CONTROLLER, "Setting up plugin manager");
    log.info(CONTROLLER, "Getting backup item actions");
    log.info(
        CONTROLLER,
        "Setting up backup store to check for backup existence",
    );
    match location
        .bucket
        .exists(&location.layout.backup_metadata(name))
        .await
    {
        Ok(false) => {}
        Ok(true) => return fail_early(ctx, name, "backup already exists in object storage"),
        Err(e) => {
            return fail_early(
                ctx,
                name,
                &format!("error checking if backup already exists in object storage: {e}"),
            );
        }
    }
    let backup = ctx.get("backups", name)?;
    let spec = backup.get("spec").cloned().unwrap_or_else(|| json!({}));
    log.info(BACKUPPER, "Writing backup version file");
    let collected = collect::collect(ctx.store(), &spec);
    for ns in &collected.missing_namespaces {
        log.velero_error(
            COLLECTOR,
            &format!("fail to get the namespace {ns} specified in backup.Spec.IncludedNamespaces"),
        );
    }
    for crd in &collected.added_crds {
        log.info(
            BACKUPPER,
            &format!("Found associated CRD {crd} to add to backup"),
        );
    }
    let items = collected.items;
    ctx.patch(
        "backups",
        name,
        &json!({ "status": { "progress": progress("totalItems", items.len(), "itemsBackedUp", 0) } }),
    )?;

    let key = location.layout.backup_file(name, TARBALL_SUFFIX);
    let mut upload = StreamUpload::new(&location.bucket, &key);
    let streamed = !ctx.faults.missing(TARBALL) && !ctx.faults.damages_bytes(TARBALL);
    let written = match write_items(ctx, name, &items, &mut log, &mut upload, streamed).await {
        Ok(w) => w,
        Err(e) => {
            upload.abort().await;
            // Not left InProgress: Velero fails a backup whose run returned an error (a
            // vanished CR cannot be patched, and then there is nothing left to report to).
            let _ = fail_early(ctx, name, &e.to_string());
            return Err(e);
        }
    };

    let failed = ctx.world.scenario.spec.faults.backup_phase.as_deref() == Some("Failed");
    let mut status = Map::new();
    let phase = if failed {
        log.velero_error(
            BACKUPPER,
            "error backing up items: injected by the sandbox scenario (faults.backupPhase: Failed)",
        );
        status.insert(
            "failureReason".into(),
            json!("injected by the sandbox scenario (faults.backupPhase: Failed)"),
        );
        status.insert("completionTimestamp".into(), json!(layout::now()));
        "Failed"
    } else if log.results.errors.count() > 0 {
        "FinalizingPartiallyFailed"
    } else {
        "Finalizing"
    };
    status.insert("phase".into(), json!(phase));
    let (warnings, errors) = (log.results.warnings.count(), log.results.errors.count());
    if warnings > 0 {
        status.insert("warnings".into(), json!(warnings));
    }
    if errors > 0 {
        status.insert("errors".into(), json!(errors));
    }
    status.insert(
        "progress".into(),
        progress(
            "totalItems",
            written.backed_up,
            "itemsBackedUp",
            written.backed_up,
        ),
    );
    status.insert("hookStatus".into(), json!({}));
    log.info(CONTROLLER, "Setting up backup store to persist the backup");

    if let Err(reason) = persist(ctx, name, &location, &log, &status, &written, upload).await {
        // An upload error fails the backup (no completion time: Velero sets none here).
        ctx.patch(
            "backups",
            name,
            &json!({ "status": { "phase": "Failed", "failureReason": reason } }),
        )?;
        return Ok(());
    }
    ctx.patch("backups", name, &json!({ "status": Value::Object(status) }))?;
    if failed {
        return Ok(());
    }
    finalize(ctx, name, &location).await
}

/// Backs up each item into the tarball and the resource list, with progress and faults.
async fn write_items(
    ctx: &Ctx,
    name: &str,
    items: &[Item],
    log: &mut RunLog,
    upload: &mut StreamUpload,
    streamed: bool,
) -> Result<Written, VeleroError> {
    let content = ctx.faults.content();
    let partially =
        ctx.world.scenario.spec.faults.backup_phase.as_deref() == Some("PartiallyFailed");
    // A pod is what usually fails (a pod volume backup); else any item but a namespace.
    let pick = |skip: Option<usize>| {
        let candidates = || items.iter().enumerate().filter(|(i, _)| Some(*i) != skip);
        candidates()
            .find(|(_, it)| it.rt.kind == "Pod")
            .or_else(|| candidates().find(|(_, it)| it.rt.kind != "Namespace"))
            .or_else(|| candidates().next())
            .map(|(i, _)| i)
    };
    let failed_item = if partially { pick(None) } else { None };
    let missing_item = if content.missing_tar_item {
        pick(failed_item)
    } else {
        None
    };

    let mut writer = TarballWriter::new()?;
    let mut list: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut pacer = Pacer::new(ctx.per_item(
        ctx.world.scenario.spec.timings.backup_per_item.0,
        items.len(),
    ));
    let interval = ctx.progress_interval();
    let mut last = tokio::time::Instant::now();
    let mut backed_up = 0usize;
    for (i, item) in items.iter().enumerate() {
        pacer.item().await;
        let gr = item.rt.group_resource();
        let ns = item.namespace().unwrap_or_default();
        list.entry(item.list_key())
            .or_default()
            .push(item.list_entry());
        backed_up += 1;
        log.line(
            super::runlog::Level::Info,
            ITEM,
            "Backing up item",
            &[("resource", &gr), ("namespace", ns), ("name", item.name())],
        );
        if Some(i) == failed_item {
            log.item_error(
                ITEM,
                &gr,
                ns,
                item.name(),
                "Error backing up item",
                "pod volume backup failed: injected by the sandbox scenario (faults.backupPhase: PartiallyFailed)",
            );
        } else if Some(i) != missing_item {
            let bytes = layout::go_json(&item.object);
            let version_dir = format!("{}{PREFERRED_SUFFIX}", item.rt.version);
            writer.append(
                &tarball::item_path(&gr, None, item.namespace(), item.name()),
                &bytes,
            )?;
            writer.append(
                &tarball::item_path(&gr, Some(&version_dir), item.namespace(), item.name()),
                &bytes,
            )?;
        }
        if streamed && let Some(part) = writer.take_ready(PART_SIZE) {
            upload.part(part).await?;
        }
        if last.elapsed() >= interval || i + 1 == items.len() {
            last = tokio::time::Instant::now();
            log.info(BACKUPPER, &format!("Backed up {backed_up} items out of an estimated total of {} (estimate will change throughout the backup)", items.len()));
            let p = progress("totalItems", items.len(), "itemsBackedUp", backed_up);
            ctx.patch("backups", name, &json!({ "status": { "progress": p } }))?;
        }
    }
    let some_namespace = items
        .iter()
        .find_map(Item::namespace)
        .unwrap_or("default")
        .to_string();
    if content.extra_tar_item {
        let extra = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "sandbox-extra-item", "namespace": some_namespace }, "data": {} });
        let bytes = layout::go_json(&extra);
        writer.append(
            &tarball::item_path(
                "configmaps",
                None,
                Some(&some_namespace),
                "sandbox-extra-item",
            ),
            &bytes,
        )?;
        writer.append(
            &tarball::item_path(
                "configmaps",
                Some("v1-preferredversion"),
                Some(&some_namespace),
                "sandbox-extra-item",
            ),
            &bytes,
        )?;
    }
    if content.unlisted_item
        && let Some(entries) = list.values_mut().rev().find(|v| !v.is_empty())
    {
        entries.pop();
    }
    list.retain(|_, v| !v.is_empty());
    if content.phantom_list_item {
        list.entry("v1/ConfigMap".into())
            .or_default()
            .push(format!("{some_namespace}/sandbox-phantom-item"));
    }
    for entries in list.values_mut() {
        entries.sort();
    }
    log.info(
        BACKUPPER,
        &format!("Backed up a total of {backed_up} items"),
    );
    let rest = writer.finish()?;
    Ok(Written {
        list,
        backed_up,
        rest,
    })
}

/// The Backup as `velero-backup.json` holds it: the CR with `status` overlaid, the typed
/// struct's always-present empty fields, and the uid fault.
fn metadata_json(ctx: &Ctx, backup: &Value, status: &Map<String, Value>) -> Vec<u8> {
    let mut doc = backup.clone();
    if let Some(o) = doc.as_object_mut() {
        let mut merged = super::prepare::map_of(o.get("status"));
        merged.extend(status.clone());
        o.insert("status".into(), Value::Object(merged));
        let mut spec = super::prepare::map_of(o.get("spec"));
        spec.entry("metadata").or_insert_with(|| json!({}));
        spec.entry("hooks").or_insert_with(|| json!({}));
        o.insert("spec".into(), Value::Object(spec));
        if ctx.faults.uid_mismatch()
            && let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut)
        {
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        }
    }
    ctx.faults
        .damage(METADATA, layout::backup_json(&doc), false)
}

/// `PutBackup`: logs (best effort), `velero-backup.json`, the tarball, then the other files.
/// Returns the failure reason Velero would record.
async fn persist(
    ctx: &Ctx,
    name: &str,
    location: &Location,
    log: &RunLog,
    status: &Map<String, Value>,
    written: &Written,
    mut upload: StreamUpload,
) -> Result<(), String> {
    let (bucket, l) = (&location.bucket, &location.layout);
    if !ctx.faults.missing("logs") {
        let logs = ctx.faults.damage("logs", layout::gzip(&log.text()), true);
        let _ = bucket.put(&l.backup_file(name, LOGS_SUFFIX), logs).await;
    }
    let backup = ctx.get("backups", name).map_err(|e| e.to_string())?;
    let metadata_key = l.backup_metadata(name);
    if !ctx.faults.missing(METADATA) {
        bucket
            .put(&metadata_key, metadata_json(ctx, &backup, status))
            .await
            .map_err(|e| e.to_string())?;
    }
    let tar_result = if ctx.faults.missing(TARBALL) {
        upload.abort().await;
        Ok(())
    } else if ctx.faults.damages_bytes(TARBALL) {
        upload.abort().await;
        let bytes = ctx.faults.damage(TARBALL, written.rest.clone(), true);
        bucket
            .put(&l.backup_file(name, TARBALL_SUFFIX), bytes)
            .await
    } else {
        match upload.finish(written.rest.clone()).await {
            Ok(()) => upload.complete().await,
            Err(e) => {
                upload.abort().await;
                Err(e)
            }
        }
    };
    if let Err(e) = tar_result {
        let _ = bucket.delete(&metadata_key).await;
        return Err(e.to_string());
    }
    for (object, suffix) in BACKUP_SIBLINGS {
        // Velero 1.18 no longer writes the CSI snapshot classes file.
        let dropped = object == "csi-volumesnapshotclasses"
            && ctx.world.scenario.spec.velero.queues_backups();
        if ctx.faults.missing(object) || dropped {
            continue;
        }
        let content = match object {
            "itemoperations" | "volumeinfo" => layout::json_gz(&json!([])),
            "resource-list" => layout::json_gz(&written.list),
            "results" => layout::json_gz(&log.results),
            _ => layout::json_gz(&Value::Null),
        };
        let content = ctx.faults.damage(object, content, true);
        if let Err(e) = bucket.put(&l.backup_file(name, suffix), content).await {
            let _ = bucket.delete(&l.backup_file(name, TARBALL_SUFFIX)).await;
            let _ = bucket.delete(&metadata_key).await;
            return Err(e.to_string());
        }
    }
    Ok(())
}

/// The finalizer: `velero-backup.json` rewritten with the final phase and completion time
/// first, then the CR. A failed rewrite still lets the CR complete, as in Velero.
async fn finalize(ctx: &Ctx, name: &str, location: &Location) -> Result<(), VeleroError> {
    let backup = ctx.get("backups", name)?;
    let phase = match super::phase(&backup) {
        "Finalizing" => "Completed",
        "FinalizingPartiallyFailed" => "PartiallyFailed",
        _ => return Ok(()),
    };
    let mut status = Map::new();
    status.insert("phase".into(), json!(phase));
    status.insert("completionTimestamp".into(), json!(layout::now()));
    if !ctx.faults.phase_stays_finalizing() && !ctx.faults.missing(METADATA) {
        let _ = location
            .bucket
            .put(
                &location.layout.backup_metadata(name),
                metadata_json(ctx, &backup, &status),
            )
            .await;
    }
    ctx.patch("backups", name, &json!({ "status": Value::Object(status) }))?;
    Ok(())
}
