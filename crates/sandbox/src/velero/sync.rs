//! The backup sync controller (Velero's `backup_sync_controller.go`): the bucket is the source of
//! truth for which backups exist. Every sync period, for each `Available` location, a Backup CR
//! is created for each backup folder in storage that has none (from its `velero-backup.json`),
//! and Completed or PartiallyFailed CRs of that location whose folder is gone are deleted.
//!
//! This is how a second cluster sees the first one's backups (a location pointing at the same
//! bucket and prefix, usually `ReadOnly`), and why deleting only a Backup CR brings it back.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::bsl::{self, Location};
use super::layout;
use super::{Ctx, name_of};

const STORAGE_LOCATION_LABEL: &str = "velero.io/storage-location";
/// The server's `--backup-sync-period` default, and how often Velero looks at all (its
/// periodic enqueue source runs once a minute whatever a location's period).
const DEFAULT_PERIOD: Duration = Duration::from_secs(60);
/// Never more than once a real second: `lastSyncedTime` has second precision, and a fast
/// scenario would otherwise list the bucket many times a second.
const MIN_REAL: Duration = Duration::from_secs(1);

/// Phases a backup is still being written in: a folder in one of them is left alone until the
/// backup expires (another server is finishing it).
const IN_PROGRESS: [&str; 4] = [
    "WaitingForPluginOperations",
    "WaitingForPluginOperationsPartiallyFailed",
    "Finalizing",
    "FinalizingPartiallyFailed",
];

/// Runs the sync loop until aborted.
pub async fn run(ctx: Arc<Ctx>) {
    let mut last: HashMap<String, tokio::time::Instant> = HashMap::new();
    let every = ctx.world.real(DEFAULT_PERIOD).max(MIN_REAL);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        for location in ordered(ctx.list("backupstoragelocations")) {
            let name = name_of(&location).to_string();
            let Some(period) = period(&location) else {
                continue;
            };
            let period = ctx.world.real(period).max(MIN_REAL);
            if last.get(&name).is_some_and(|at| at.elapsed() < period) {
                continue;
            }
            if !bsl::is_available(&location) {
                // Velero logs and skips an unavailable location; it is looked at again next time.
                continue;
            }
            last.insert(name.clone(), tokio::time::Instant::now());
            let _ = sync(&ctx, &name, &location).await;
        }
    }
}

/// The default location first, then the others in their listed order.
fn ordered(mut locations: Vec<Value>) -> Vec<Value> {
    if let Some(i) = locations
        .iter()
        .position(|l| l.pointer("/spec/default") == Some(&json!(true)))
    {
        let default = locations.remove(i);
        locations.insert(0, default);
    }
    locations
}

/// The location's sync period; `None` when it is `0` (sync off). A missing, unreadable or
/// negative period means the server's default.
fn period(location: &Value) -> Option<Duration> {
    let period = location
        .pointer("/spec/backupSyncPeriod")
        .and_then(Value::as_str)
        .and_then(layout::parse_go_duration)
        .unwrap_or(DEFAULT_PERIOD);
    (!period.is_zero()).then_some(period)
}

/// One sync of one location. Errors end the sync of this location quietly, as Velero logs them
/// and carries on; the next period tries again.
async fn sync(ctx: &Ctx, name: &str, bsl: &Value) -> Result<(), String> {
    let location = Location::from_object(ctx, bsl)?;
    let backups_dir = format!("{}backups/", location.layout.root());
    let in_storage: BTreeSet<String> = location
        .bucket
        .common_prefixes(&backups_dir)
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .map(|p| {
            p.trim_start_matches(backups_dir.as_str())
                .trim_end_matches('/')
                .to_string()
        })
        .filter(|n| !n.is_empty())
        .collect();
    let in_cluster: BTreeSet<String> = ctx
        .list("backups")
        .iter()
        .map(|b| name_of(b).to_string())
        .collect();
    for backup in in_storage.difference(&in_cluster) {
        // A folder without `velero-backup.json` is not a backup (Velero skips it).
        match location
            .bucket
            .exists(&location.layout.backup_metadata(backup))
            .await
        {
            Ok(true) => {}
            Ok(false) | Err(_) => continue,
        }
        let Ok(bytes) = location
            .bucket
            .get(&location.layout.backup_metadata(backup))
            .await
        else {
            continue;
        };
        let Ok(stored) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        if let Some(object) = to_create(ctx, name, stored) {
            create(ctx, object);
        }
    }
    delete_orphans(ctx, name, &in_storage);
    let _ = ctx.patch(
        "backupstoragelocations",
        name,
        &json!({ "status": { "lastSyncedTime": layout::now() } }),
    );
    Ok(())
}

/// The CR to create for a backup read from storage, or `None` when it is to be skipped (not a
/// Backup, or still being written and not yet expired).
fn to_create(ctx: &Ctx, location: &str, stored: Value) -> Option<Value> {
    if stored.get("kind").and_then(Value::as_str) != Some("Backup") {
        return None;
    }
    let mut top: Map<String, Value> = stored.as_object()?.clone();
    let mut status = super::prepare::map_of(top.get("status"));
    if IN_PROGRESS.contains(&super::phase(&stored)) {
        let expired = status
            .get("expiration")
            .and_then(Value::as_str)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|at| at < chrono::Utc::now());
        if !expired {
            return None;
        }
        // Synced for garbage collection: it will never finish now.
        status.insert("phase".into(), json!("PartiallyFailed"));
    }
    let mut meta = super::prepare::map_of(top.get("metadata"));
    // What the API server sets on create; the uid is a new one, as in Velero.
    for field in [
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "managedFields",
    ] {
        meta.remove(field);
    }
    meta.insert("namespace".into(), json!(ctx.namespace));
    let mut labels = super::prepare::map_of(meta.get("labels"));
    labels.insert(
        STORAGE_LOCATION_LABEL.into(),
        json!(layout::valid_label(location)),
    );
    meta.insert("labels".into(), Value::Object(labels));
    // Owner references to a Schedule that is not here (or is another one by now) are dropped.
    if let Some(refs) = meta.get("ownerReferences").and_then(Value::as_array) {
        let kept: Vec<Value> = refs
            .iter()
            .filter(|r| {
                r.get("kind").and_then(Value::as_str) != Some("Schedule")
                    || ctx
                        .get(
                            "schedules",
                            r.get("name").and_then(Value::as_str).unwrap_or(""),
                        )
                        .ok()
                        .is_some_and(|s| s.pointer("/metadata/uid") == r.get("uid"))
            })
            .cloned()
            .collect();
        meta.insert("ownerReferences".into(), json!(kept));
    }
    let mut spec = super::prepare::map_of(top.get("spec"));
    spec.insert("storageLocation".into(), json!(location));
    top.insert("metadata".into(), Value::Object(meta));
    top.insert("spec".into(), Value::Object(spec));
    top.insert("status".into(), Value::Object(status));
    Some(Value::Object(top))
}

/// Creates a synced Backup; one created meanwhile (by a person or another sync) wins.
fn create(ctx: &Ctx, object: Value) {
    let Ok(rt) = ctx.velero_type("backups") else {
        return;
    };
    // AlreadyExists: created meanwhile; any other refusal is tried again next period.
    let _ = ctx.store().create(&rt, Some(&ctx.namespace), object);
}

/// `deleteOrphanedBackups`: Completed and PartiallyFailed Backups of this location whose folder
/// is no longer in storage. Backups in any other phase are kept (they may still be running, or
/// never reached storage).
fn delete_orphans(ctx: &Ctx, location: &str, in_storage: &BTreeSet<String>) {
    let Ok(rt) = ctx.velero_type("backups") else {
        return;
    };
    let label = layout::valid_label(location);
    for backup in ctx.list("backups") {
        let of_location = backup
            .pointer("/metadata/labels")
            .and_then(|l| l.get(STORAGE_LOCATION_LABEL))
            .and_then(Value::as_str)
            == Some(label.as_str());
        let done = matches!(super::phase(&backup), "Completed" | "PartiallyFailed");
        let name = name_of(&backup);
        if of_location && done && !in_storage.contains(name) {
            let _ = ctx.store().delete(&rt, Some(&ctx.namespace), name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        let with = |p: &str| json!({ "spec": { "backupSyncPeriod": p } });
        assert_eq!(period(&json!({ "spec": {} })), Some(DEFAULT_PERIOD));
        assert_eq!(period(&with("0s")), None);
        assert_eq!(period(&with("0")), None);
        assert_eq!(period(&with("5m0s")), Some(Duration::from_secs(300)));
        assert_eq!(period(&with("nonsense")), Some(DEFAULT_PERIOD));
    }

    #[test]
    fn the_default_location_is_synced_first() {
        let names = |ls: Vec<Value>| {
            ordered(ls)
                .iter()
                .map(|l| name_of(l).to_string())
                .collect::<Vec<_>>()
        };
        let a = json!({ "metadata": { "name": "a" }, "spec": {} });
        let b = json!({ "metadata": { "name": "b" }, "spec": { "default": true } });
        assert_eq!(names(vec![a.clone(), b.clone()]), ["b", "a"]);
        assert_eq!(names(vec![a]), ["a"]);
    }
}
