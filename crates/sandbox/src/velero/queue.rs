//! Velero 1.18's backup queue (`backup_queue_controller.go`): a new Backup becomes `Queued`
//! with `status.queuePosition` (one past the last queued), and leaves the queue as
//! `ReadyToStart` when nothing runs ahead of it; the positions of the rest then close up. Only
//! `ReadyToStart` backups are picked up by the backup controller.
//!
//! The sandbox runs one backup at a time (Velero's default `--concurrent-backups` of 1), so
//! backups with overlapping namespaces never run together. `velero.holdQueued` keeps each
//! backup queued for a while, as when other backups hold the queue.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Ctx, VeleroError, phase};

/// When each queued backup joined the queue (real time), for the hold.
#[derive(Default)]
pub struct Queued(Mutex<HashMap<String, Instant>>);

impl Queued {
    fn joined(&self, name: &str) {
        if let Ok(mut q) = self.0.lock() {
            q.entry(name.to_string()).or_insert_with(Instant::now);
        }
    }

    fn since(&self, name: &str) -> Option<Instant> {
        self.0.lock().ok().and_then(|q| q.get(name).copied())
    }

    fn left(&self, name: &str) {
        if let Ok(mut q) = self.0.lock() {
            q.remove(name);
        }
    }
}

fn position(obj: &Value) -> u64 {
    obj.pointer("/status/queuePosition")
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

fn name_of(obj: &Value) -> String {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The queued backups, in queue order.
fn queued(ctx: &Ctx) -> Vec<Value> {
    let mut list: Vec<Value> = ctx
        .list("backups")
        .into_iter()
        .filter(|b| phase(b) == "Queued")
        .collect();
    list.sort_by_key(position);
    list
}

/// Queues a new backup: `Queued` at the end of the queue. Anything else is left alone.
pub fn enqueue(ctx: &Ctx, name: &str) -> Result<(), VeleroError> {
    let backup = ctx.get("backups", name)?;
    if !super::is_new(&backup) {
        return Ok(());
    }
    let last = queued(ctx).last().map(position).unwrap_or(0);
    ctx.patch(
        "backups",
        name,
        &json!({ "status": { "phase": "Queued", "queuePosition": last + 1 } }),
    )?;
    ctx.queued.joined(name);
    Ok(())
}

/// Takes a queued backup off the queue once its hold has passed: `ReadyToStart`, without a
/// position, and the positions of the backups behind it close up. Returns whether it did.
pub async fn dequeue(ctx: &Ctx, name: &str) -> Result<bool, VeleroError> {
    let backup = ctx.get("backups", name)?;
    if phase(&backup) != "Queued" {
        return Ok(phase(&backup) == "ReadyToStart");
    }
    ctx.queued.joined(name);
    if let (Some(hold), Some(since)) = (
        ctx.world.scenario.spec.velero.hold_queued,
        ctx.queued.since(name),
    ) {
        tokio::time::sleep_until(since + ctx.world.real(hold.0)).await;
    }
    // Patched with the position removed: Velero's `omitempty` drops the zero it sets.
    ctx.patch(
        "backups",
        name,
        &json!({ "status": { "phase": "ReadyToStart", "queuePosition": Value::Null } }),
    )?;
    ctx.queued.left(name);
    for (i, other) in queued(ctx).iter().enumerate() {
        let want = i as u64 + 1;
        if position(other) != want {
            ctx.patch(
                "backups",
                &name_of(other),
                &json!({ "status": { "queuePosition": want } }),
            )?;
        }
    }
    Ok(true)
}
