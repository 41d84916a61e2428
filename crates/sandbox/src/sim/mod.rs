//! The cluster's own behaviour: seeding it from the scenario, then keeping pods, workload and
//! PDB status current as things change, running Jobs (`jobs`), and breaking the workloads a
//! scenario says an upgrade breaks.

pub mod addons;
pub mod automode;
pub mod bulk;
pub mod fargate;
pub mod jobs;
pub mod karpenter;
pub mod names;
pub mod nodes;
pub mod seed;
pub mod services;
pub mod workloads;

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;

use super::kube::store::ChangeKind;
use super::scenario::faults::BreakTrigger;
use super::world::{World, WorldEvent};
use fargate::Placement;

/// Where pods go now: Fargate's namespaces, and the control plane's version for new Fargate
/// nodes.
pub fn placement(world: &World) -> Placement {
    Placement::new(&world.scenario, world.control_plane_version())
}

/// Runs the simulator until the world is dropped.
pub fn start(world: Arc<World>) -> tokio::task::JoinHandle<()> {
    let mut changes = world.store.subscribe();
    let mut events = world.subscribe();
    let cluster = &world.scenario.spec.cluster;
    services::provision_all(&world.store, &cluster.name, &cluster.region);
    let mut jobs = jobs::Jobs::new(world.clone());
    tokio::spawn(async move {
        jobs.reconcile_all();
        loop {
            let due = jobs.next_due();
            let far = tokio::time::Instant::now() + std::time::Duration::from_secs(3600);
            tokio::select! {
                change = changes.recv() => {
                    let mut pending = match change {
                        Ok(c) => vec![c],
                        Err(RecvError::Lagged(_)) => {
                            let _ = workloads::reconcile_all(&world.store, &placement(&world));
                            jobs.reconcile_all();
                            continue;
                        }
                        Err(RecvError::Closed) => break,
                    };
                    // Handle a burst of changes in one pass.
                    while let Ok(c) = changes.try_recv() {
                        pending.push(c);
                    }
                    react(&world, &pending);
                    jobs.observe(&pending);
                }
                _ = tokio::time::sleep_until(due.unwrap_or(far)), if due.is_some() => jobs.fire(),
                event = events.recv() => match event {
                    Ok(WorldEvent::ControlPlaneVersion(version)) => {
                        // Objects of APIs this version starts serving come into use now.
                        let _ = seed::seed_objects(&world.store, &world.scenario, version, true);
                        break_workloads(&world, BreakTrigger::ControlPlane, version);
                    }
                    Ok(WorldEvent::NodegroupVersion(version)) => {
                        break_workloads(&world, BreakTrigger::Nodegroups, version);
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => break,
                },
            }
        }
    })
}

/// Breaks the workloads the scenario says break when `trigger` reaches `version`.
fn break_workloads(
    world: &World,
    trigger: BreakTrigger,
    version: eks_upgrade_core::types::Version,
) {
    let faults = &world.scenario.spec.faults.break_after;
    for b in faults
        .iter()
        .filter(|b| b.version == version && b.after == trigger)
    {
        if let Some((ns, name)) = b.workload.split_once('/')
            && let Some(w) = world
                .scenario
                .spec
                .workloads
                .iter()
                .find(|w| w.namespace == ns && w.name == name)
        {
            let _ = workloads::set_broken(&world.store, &w.kind, ns, name, true);
        }
    }
}

fn react(world: &World, changes: &[Arc<super::kube::store::Change>]) {
    let store = &world.store;
    let mut all = false;
    let mut pdbs = false;
    let mut targets: Vec<(String, String, String)> = Vec::new();
    for c in changes {
        let kind = c.resource.kind.as_str();
        // A deleted pod is started again by its controller (on Fargate: on a new node).
        if kind == "Pod"
            && c.kind == ChangeKind::Deleted
            && let Some((owner_kind, owner)) = c
                .object
                .pointer("/metadata/labels")
                .and_then(|l| l.get(workloads::OWNER_LABEL))
                .and_then(serde_json::Value::as_str)
                .and_then(|o| o.split_once('.'))
        {
            let key = (
                owner_kind.to_string(),
                c.namespace().unwrap_or("").to_string(),
                owner.to_string(),
            );
            if !targets.contains(&key) {
                targets.push(key);
            }
        }
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
            "Service" if c.kind != ChangeKind::Deleted => {
                let cluster = &world.scenario.spec.cluster;
                let _ = services::provision(store, &cluster.name, &cluster.region, &c.object);
            }
            _ => {}
        }
    }
    let placement = placement(world);
    if all {
        let _ = workloads::reconcile_all(store, &placement);
        return;
    }
    for (kind, ns, name) in &targets {
        let _ = workloads::reconcile(store, &placement, kind, ns, name);
    }
    if pdbs || !targets.is_empty() {
        let _ = workloads::reconcile_pdbs(store);
    }
}
