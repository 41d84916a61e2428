//! What Velero 1.17's `validateAndComplete` does to a new Restore: the non-restorable
//! resources added to its exclusions, the checks that end in `FailedValidation`, and finding the
//! Backup (named, or the newest Completed one of a schedule) and its location.

use serde_json::{Map, Value, json};

use super::Ctx;
use super::bsl::{self, Location};
use super::filters::{strings, validate_lists};
use super::layout;

/// Never restored (`nonRestorableResources`); naming one in `includedResources` is invalid.
const NON_RESTORABLE: [&str; 9] = [
    "nodes",
    "events",
    "events.events.k8s.io",
    "backups.velero.io",
    "restores.velero.io",
    "resticrepositories.velero.io",
    "csinodes.storage.k8s.io",
    "volumeattachments.storage.k8s.io",
    "backuprepositories.velero.io",
];

/// `validateAndComplete`: returns the object to patch to and, when the restore may run, its
/// Backup and location.
pub fn validate(ctx: &Ctx, original: &Value) -> (Value, Option<(Value, Location)>) {
    let mut top = original.as_object().cloned().unwrap_or_default();
    let mut spec = top
        .get("spec")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut status = top
        .get("status")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let view = Value::Object(spec.clone());
    let mut errors = Vec::new();

    let mut excluded = strings(&view, "excludedResources");
    for r in NON_RESTORABLE {
        if !excluded.iter().any(|e| e == r) {
            excluded.push(r.to_string());
        }
    }
    spec.insert("excludedResources".into(), json!(excluded));
    let included = strings(&view, "includedResources");
    for r in NON_RESTORABLE {
        if included.iter().any(|i| i == r) {
            errors.push(format!("{r} are non-restorable resources"));
        }
    }
    for e in validate_lists(&included, &excluded) {
        errors.push(format!("Invalid included/excluded resource lists: {e}"));
    }
    for e in validate_lists(
        &strings(&view, "includedNamespaces"),
        &strings(&view, "excludedNamespaces"),
    ) {
        errors.push(format!("Invalid included/excluded namespace lists: {e}"));
    }
    if !view.get("labelSelector").unwrap_or(&Value::Null).is_null()
        && !view
            .get("orLabelSelectors")
            .unwrap_or(&Value::Null)
            .is_null()
    {
        errors.push("encountered labelSelector as well as orLabelSelectors in restore spec, only one can be specified".into());
    }
    let backup_name = view
        .get("backupName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let schedule = view
        .get("scheduleName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut source = None;
    let policy = view
        .get("existingResourcePolicy")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !matches!(policy, "" | "none" | "update") {
        errors.push(format!("Invalid ExistingResourcePolicy: {policy}"));
    }
    if backup_name.is_empty() == schedule.is_empty() {
        errors.push("Either a backup or schedule must be specified as a source for the restore, but not both".into());
    } else {
        source = find_source(ctx, &mut spec, &backup_name, &schedule, &mut errors);
    }
    if layout::parse_go_duration(
        view.get("itemOperationTimeout")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    )
    .is_none_or(|d| d.is_zero())
    {
        spec.insert("itemOperationTimeout".into(), json!("4h0m0s"));
    }
    if errors.is_empty() && source.is_some() {
        status.insert("phase".into(), json!("InProgress"));
        status.insert("startTimestamp".into(), json!(layout::now()));
    } else {
        status.insert("phase".into(), json!("FailedValidation"));
        status.insert("validationErrors".into(), json!(errors));
        source = None;
    }
    top.insert("spec".into(), Value::Object(spec));
    top.insert("status".into(), Value::Object(status));
    (Value::Object(top), source)
}

/// The Backup to restore (named, or the newest Completed one of a schedule) and its location.
/// As in Velero, the Backup's phase is not checked: that gate is the tool's job.
fn find_source(
    ctx: &Ctx,
    spec: &mut Map<String, Value>,
    backup_name: &str,
    schedule: &str,
    errors: &mut Vec<String>,
) -> Option<(Value, Location)> {
    let mut backup_name = backup_name.to_string();
    if !schedule.is_empty() {
        let mut from_schedule: Vec<Value> = ctx
            .list("backups")
            .into_iter()
            .filter(|b| {
                b.pointer("/metadata/labels/velero.io~1schedule-name")
                    .and_then(Value::as_str)
                    == Some(schedule)
            })
            .collect();
        if from_schedule.is_empty() {
            errors.push("No backups found for schedule".into());
        }
        from_schedule.retain(|b| super::phase(b) == "Completed");
        from_schedule.sort_by_key(|b| {
            b.pointer("/status/startTimestamp")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        match from_schedule
            .last()
            .and_then(|b| b.pointer("/metadata/name").and_then(Value::as_str))
        {
            Some(n) => {
                backup_name = n.to_string();
                spec.insert("backupName".into(), json!(n));
            }
            None => {
                errors.push("No completed backups found for schedule".into());
                return None;
            }
        }
    }
    let backup = match ctx.get("backups", &backup_name) {
        Ok(b) => b,
        Err(e) => {
            errors.push(format!(
                "Error retrieving backup: can't find backup {}/{backup_name}: {e}",
                ctx.namespace
            ));
            return None;
        }
    };
    let location_name = backup
        .pointer("/spec/storageLocation")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let bsl = match ctx.get("backupstoragelocations", location_name) {
        Ok(l) => l,
        Err(e) => {
            errors.push(format!("Error retrieving backup: {e}"));
            return None;
        }
    };
    if !bsl::is_available(&bsl) {
        errors.push(format!(
            "The BSL {location_name} is unavailable, cannot retrieve the backup"
        ));
        return None;
    }
    if schedule.is_empty()
        && let Some(s) = backup
            .pointer("/metadata/labels/velero.io~1schedule-name")
            .and_then(Value::as_str)
    {
        spec.insert("scheduleName".into(), json!(s));
    }
    match Location::from_object(ctx, &bsl) {
        Ok(location) => Some((backup, location)),
        Err(e) => {
            errors.push(format!("Error retrieving backup: {e}"));
            None
        }
    }
}
