//! The cluster's own behaviour: seeding it from the scenario, then keeping pods, workload and
//! PDB status current as things change, and breaking the workloads a scenario says an upgrade
//! breaks.

pub mod addons;
pub mod bulk;
pub mod names;
pub mod nodes;
pub mod seed;
pub mod workloads;

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;

use super::kube::store::ChangeKind;
use super::world::{World, WorldEvent};

/// Runs the simulator until the world is dropped.
pub fn start(world: Arc<World>) -> tokio::task::JoinHandle<()> {
    let mut changes = world.store.subscribe();
    let mut events = world.subscribe();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                change = changes.recv() => {
                    let mut pending = match change {
                        Ok(c) => vec![c],
                        Err(RecvError::Lagged(_)) => {
                            let _ = workloads::reconcile_all(&world.store);
                            continue;
                        }
                        Err(RecvError::Closed) => break,
                    };
                    // Handle a burst of changes in one pass.
                    while let Ok(c) = changes.try_recv() {
                        pending.push(c);
                    }
                    react(&world, &pending);
                }
                event = events.recv() => match event {
                    Ok(WorldEvent::ControlPlaneVersion(version)) => {
                        for b in world.scenario.spec.faults.break_after.iter().filter(|b| b.version == version) {
                            if let Some((ns, name)) = b.workload.split_once('/')
                                && let Some(w) = world.scenario.spec.workloads.iter().find(|w| w.namespace == ns && w.name == name)
                            {
                                let _ = workloads::set_broken(&world.store, &w.kind, ns, name, true);
                            }
                        }
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => break,
                },
            }
        }
    })
}

fn react(world: &World, changes: &[Arc<super::kube::store::Change>]) {
    let store = &world.store;
    let mut all = false;
    let mut pdbs = false;
    let mut targets: Vec<(String, String, String)> = Vec::new();
    for c in changes {
        let kind = c.resource.kind.as_str();
        match kind {
            "Node"
                if c.kind != ChangeKind::Modified
                    || c.object.pointer("/spec/unschedulable").is_some() =>
            {
                all = true
            }
            "Deployment" | "StatefulSet" | "DaemonSet" => {
                let key = (
                    kind.to_string(),
                    c.namespace().unwrap_or("").to_string(),
                    c.name().to_string(),
                );
                if !targets.contains(&key) {
                    targets.push(key);
                }
            }
            "Pod" | "PodDisruptionBudget" => pdbs = true,
            _ => {}
        }
    }
    if all {
        let _ = workloads::reconcile_all(store);
        return;
    }
    for (kind, ns, name) in &targets {
        let _ = workloads::reconcile(store, kind, ns, name);
    }
    if pdbs || !targets.is_empty() {
        let _ = workloads::reconcile_pdbs(store);
    }
}
