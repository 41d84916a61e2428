//! The locks a run holds: blue's lease, taken before anything runs, and in a blue/green run
//! green's as well, taken as soon as green is ready to take work — from then on the run acts on
//! green (restores, tests, moves traffic to it), and a second run acting on the same cluster
//! (an in-place upgrade of green, another blue/green run adopting it) must be refused. Losing
//! either lease stops the run like losing blue's always did.

use std::sync::Arc;

use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use super::lock::{LockError, RunLock};

pub struct LockSet {
    blue: Mutex<Option<RunLock>>,
    green: Mutex<Option<RunLock>>,
    lost_tx: Arc<watch::Sender<bool>>,
    lost_rx: watch::Receiver<bool>,
    watchers: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl LockSet {
    /// The set around blue's lease, already held.
    pub fn new(blue: RunLock) -> Self {
        let (tx, rx) = watch::channel(false);
        let lost = blue.lost();
        let set = LockSet {
            blue: Mutex::new(Some(blue)),
            green: Mutex::new(None),
            lost_tx: Arc::new(tx),
            lost_rx: rx,
            watchers: Default::default(),
        };
        set.forward(lost);
        set
    }

    /// Passes a lease's loss on to the set. A lease released on purpose drops its sender
    /// without a loss, which ends the forwarding quietly.
    fn forward(&self, mut lost: watch::Receiver<bool>) {
        let tx = self.lost_tx.clone();
        let task = tokio::spawn(async move {
            while lost.changed().await.is_ok() {
                if *lost.borrow() {
                    let _ = tx.send(true);
                    return;
                }
            }
        });
        if let Ok(mut w) = self.watchers.lock() {
            w.push(task);
        }
    }

    /// Changes to `true` when another holder has taken either lease over.
    pub fn lost(&self) -> watch::Receiver<bool> {
        self.lost_rx.clone()
    }

    /// Takes green's lease, unless the set holds it already. `Held` when another run has it.
    pub async fn take_green(
        &self,
        kube: kube::Client,
        namespace: &str,
        run_id: &str,
    ) -> Result<(), LockError> {
        let mut green = self.green.lock().await;
        if green.is_some() {
            return Ok(());
        }
        let lock = RunLock::acquire(kube, namespace, run_id).await?;
        self.forward(lock.lost());
        *green = Some(lock);
        Ok(())
    }

    /// Gives blue's lease up early: before blue itself is deleted, with the namespace the
    /// lease lives in.
    pub async fn release_blue(&self) {
        if let Some(lock) = self.blue.lock().await.take() {
            lock.release().await;
        }
    }

    /// Gives every lease up, so the next run may start at once.
    pub async fn release(&self) {
        self.release_blue().await;
        if let Some(lock) = self.green.lock().await.take() {
            lock.release().await;
        }
    }
}

impl Drop for LockSet {
    fn drop(&mut self) {
        if let Ok(w) = self.watchers.lock() {
            for task in w.iter() {
                task.abort();
            }
        }
    }
}
