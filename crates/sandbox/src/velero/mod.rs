//! The emulated Velero server (v1.17): controllers for BackupStorageLocations, Backups and
//! Restores in the Velero namespace, driven by the object store's change feed, that write and
//! read the bucket only through the sandbox's S3 API — the same bytes, keys and order a real
//! Velero produces, so the tool's verifier and restore logic meet the real formats.
//!
//! Velero's CRDs have no status subresource, so status is written with merge patches on the
//! main object, as Velero does. Backups run one at a time, as do restores (Velero 1.17's
//! default of one worker per controller). With `velero.version: "1.18"` Backups first pass
//! through Velero 1.18's queue (`queue`). The backup sync controller (`sync`) keeps Backup CRs
//! in line with the backups each location holds, as Velero's does.

mod backup;
mod bsl;
mod collect;
mod diff;
mod faults;
mod filters;
pub mod layout;
mod objstore;
mod prepare;
mod queue;
mod restore;
mod restore_apply;
mod restore_validate;
mod runlog;
mod sync;
pub mod tarball;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::kube::selector::Selector;
use crate::kube::store::{Change, ChangeKind, ResourceType, Store, StoreError, Subresource};
use crate::world::World;

/// Why a reconcile could not finish. Most outcomes are phases on the CR; these are the cases
/// where even that could not be written (the CR vanished, the store refused).
#[derive(Debug, thiserror::Error)]
pub enum VeleroError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Object(#[from] objstore::ObjectError),
    #[error("the sandbox does not serve {0}")]
    NoType(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What every controller shares.
pub(crate) struct Ctx {
    pub world: Arc<World>,
    pub s3: aws_sdk_s3::Client,
    /// The Velero server's namespace: the only one whose Backups and Restores it sees.
    pub namespace: String,
    pub faults: faults::BucketFaults,
    /// Velero 1.18's backup queue: when each queued backup joined it.
    pub queued: queue::Queued,
}

impl Ctx {
    pub fn store(&self) -> &Store {
        &self.world.store
    }

    pub fn velero_type(&self, plural: &str) -> Result<Arc<ResourceType>, VeleroError> {
        self.store()
            .resource("velero.io", "v1", plural)
            .ok_or_else(|| VeleroError::NoType(format!("{plural}.velero.io")))
    }

    pub fn get(&self, plural: &str, name: &str) -> Result<Value, VeleroError> {
        let rt = self.velero_type(plural)?;
        Ok(self.store().get(&rt, Some(&self.namespace), name)?)
    }

    /// A merge patch on the main object (there is no status subresource to use).
    pub fn patch(&self, plural: &str, name: &str, patch: &Value) -> Result<Value, VeleroError> {
        let rt = self.velero_type(plural)?;
        Ok(self
            .store()
            .patch(&rt, Some(&self.namespace), name, patch, Subresource::Main)?)
    }

    pub fn list(&self, plural: &str) -> Vec<Value> {
        match self.velero_type(plural) {
            Ok(rt) => {
                self.store()
                    .list(&rt, Some(&self.namespace), &Selector::default())
                    .0
            }
            Err(_) => Vec::new(),
        }
    }

    /// The emulated time of `per_item` for each of `items`, in real time, capped so that a large
    /// cluster still backs up in a few seconds.
    pub fn per_item(&self, per_item: Duration, items: usize) -> Duration {
        const TOTAL_CAP: Duration = Duration::from_secs(4);
        let scaled = self.world.real(per_item);
        let cap = TOTAL_CAP / u32::try_from(items.max(1)).unwrap_or(u32::MAX);
        scaled.min(cap)
    }

    /// How often progress is patched: once per emulated second, as Velero does, but not more
    /// than 40 times a real second.
    pub fn progress_interval(&self) -> Duration {
        self.world
            .real(Duration::from_secs(1))
            .max(Duration::from_millis(25))
    }
}

/// Paces per-item work; sub-millisecond delays are added up so timers do not round each up.
/// Without any delay it still yields now and then, so a large backup does not hold a runtime
/// worker (the sandbox shares its runtime with every other service).
pub(crate) struct Pacer {
    per_item: Duration,
    debt: Duration,
    since_yield: u32,
}

impl Pacer {
    pub fn new(per_item: Duration) -> Pacer {
        Pacer {
            per_item,
            debt: Duration::ZERO,
            since_yield: 0,
        }
    }

    pub async fn item(&mut self) {
        self.debt += self.per_item;
        self.since_yield += 1;
        if self.debt >= Duration::from_millis(5) {
            tokio::time::sleep(self.debt).await;
            self.debt = Duration::ZERO;
            self.since_yield = 0;
        } else if self.since_yield >= 64 {
            tokio::task::yield_now().await;
            self.since_yield = 0;
        }
    }
}

/// `status.progress` as Go's `omitempty` writes it: zero counts are left out.
pub(crate) fn progress(total_key: &str, total: usize, done_key: &str, done: usize) -> Value {
    let mut p = serde_json::Map::new();
    if total > 0 {
        p.insert(total_key.into(), total.into());
    }
    if done > 0 {
        p.insert(done_key.into(), done.into());
    }
    Value::Object(p)
}

pub(crate) fn phase(obj: &Value) -> &str {
    obj.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub(crate) fn is_new(obj: &Value) -> bool {
    matches!(phase(obj), "" | "New")
}

/// A queue of names that ignores a name already waiting.
struct Queue {
    tx: mpsc::UnboundedSender<String>,
    waiting: Arc<Mutex<HashSet<String>>>,
}

impl Queue {
    fn new() -> (Queue, Dequeue) {
        let (tx, rx) = mpsc::unbounded_channel();
        let waiting = Arc::new(Mutex::new(HashSet::new()));
        (
            Queue {
                tx,
                waiting: waiting.clone(),
            },
            Dequeue { rx, waiting },
        )
    }

    fn push(&self, name: &str) {
        let fresh = self
            .waiting
            .lock()
            .map(|mut w| w.insert(name.to_string()))
            .unwrap_or(true);
        if fresh {
            let _ = self.tx.send(name.to_string());
        }
    }
}

struct Dequeue {
    rx: mpsc::UnboundedReceiver<String>,
    waiting: Arc<Mutex<HashSet<String>>>,
}

impl Dequeue {
    async fn pop(&mut self) -> Option<String> {
        let name = self.rx.recv().await?;
        if let Ok(mut w) = self.waiting.lock() {
            w.remove(&name);
        }
        Some(name)
    }
}

/// Starts the Velero server. Aborting the returned task stops every controller.
pub fn start(world: Arc<World>, s3: aws_sdk_s3::Client) -> tokio::task::JoinHandle<()> {
    let ctx = Arc::new(Ctx {
        namespace: world.scenario.spec.velero.namespace.clone(),
        faults: faults::BucketFaults::new(&world.scenario.spec.faults.bucket),
        queued: queue::Queued::default(),
        world,
        s3,
    });
    // Subscribe before anything is listed, so no change falls between the two.
    let mut changes = ctx.store().subscribe();
    tokio::spawn(async move {
        // Locations are validated before any Backup is looked at, as a starting Velero server
        // does: a Backup created right after the sandbox starts finds its location Available.
        let mut locations = bsl::Validator::new(ctx.clone());
        locations.validate_all().await;

        let (backups, mut backup_queue) = Queue::new();
        let (restores, mut restore_queue) = Queue::new();
        let (bsl_tx, bsl_rx) = mpsc::unbounded_channel::<String>();
        let (deleted_tx, mut deleted_rx) = mpsc::unbounded_channel::<Value>();
        // Owned here: when this task is aborted, the JoinSet drops and aborts the workers.
        let mut workers = tokio::task::JoinSet::new();
        let c = ctx.clone();
        workers.spawn(async move {
            while let Some(name) = backup_queue.pop().await {
                // Failures end as phases on the CR; an error here means the CR is gone.
                let _ = backup::reconcile(&c, &name).await;
            }
        });
        let c = ctx.clone();
        workers.spawn(async move {
            while let Some(name) = restore_queue.pop().await {
                let _ = restore::reconcile(&c, &name).await;
            }
        });
        let c = ctx.clone();
        workers.spawn(async move {
            while let Some(restore) = deleted_rx.recv().await {
                restore::deleted(&c, &restore).await;
            }
        });
        workers.spawn(locations.run(bsl_rx));
        workers.spawn(sync::run(ctx.clone()));

        let enqueue_all = |ctx: &Ctx| {
            for b in ctx.list("backups") {
                new_backup(ctx, &b, &backups);
            }
            for r in ctx.list("restores") {
                restores.push(name_of(&r));
            }
            for l in ctx.list("backupstoragelocations") {
                let _ = bsl_tx.send(name_of(&l).to_string());
            }
        };
        enqueue_all(&ctx);
        loop {
            match changes.recv().await {
                Ok(change) => dispatch(&ctx, &change, &backups, &restores, &bsl_tx, &deleted_tx),
                Err(RecvError::Lagged(_)) => enqueue_all(&ctx),
                Err(RecvError::Closed) => break,
            }
        }
        drop(workers);
    })
}

/// Hands a backup to whoever handles its phase: the backup worker, or first (Velero 1.18) the
/// queue, whose `Queued` patch hands it on in turn.
fn new_backup(ctx: &Ctx, backup: &Value, backups: &Queue) {
    let name = name_of(backup);
    if !ctx.world.scenario.spec.velero.queues_backups() {
        if is_new(backup) {
            backups.push(name);
        }
    } else if is_new(backup) {
        // A failed patch leaves the backup new; the next change or resync queues it.
        let _ = queue::enqueue(ctx, name);
    } else if matches!(phase(backup), "Queued" | "ReadyToStart") {
        backups.push(name);
    }
}

fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn dispatch(
    ctx: &Ctx,
    change: &Change,
    backups: &Queue,
    restores: &Queue,
    locations: &mpsc::UnboundedSender<String>,
    deleted_restores: &mpsc::UnboundedSender<Value>,
) {
    let rt = &change.resource;
    if rt.group != "velero.io" || change.namespace() != Some(ctx.namespace.as_str()) {
        return;
    }
    if change.kind == ChangeKind::Deleted {
        if rt.plural == "restores" {
            let _ = deleted_restores.send(change.object.clone());
        }
        return;
    }
    match rt.plural.as_str() {
        "backups" => new_backup(ctx, &change.object, backups),
        "restores" if is_new(&change.object) || restore::is_deleting(&change.object) => {
            restores.push(change.name())
        }
        "backupstoragelocations" => {
            let _ = locations.send(change.name().to_string());
        }
        _ => {}
    }
}
