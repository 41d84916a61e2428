//! One disruption command of the Karpenter controller: the replacement of one drifted node, in
//! the order Karpenter's orchestration queue gives it. The old node is tainted
//! `karpenter.sh/disrupted:NoSchedule` and a replacement NodeClaim created (round 1); the
//! replacement launches, or fails to (round 2); only once it is up is the old node drained, its
//! pods evicted one at a time as their PodDisruptionBudgets allow, and then deleted with its
//! NodeClaim (round 3 or later). A failed launch releases the old node for a later command.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};

use crate::kube::selector::Selector;
use crate::kube::store::{Store, StoreError, Subresource};
use crate::scenario::LaunchFailure;
use crate::sim::nodes::DISRUPTED_TAINT;
use crate::sim::{placement, workloads};
use crate::world::World;

use super::drift::resource;

/// Where a command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The replacement NodeClaim exists; its instance does not yet.
    Launching,
    /// The launch failed; the claim is deleted and the old node released next round.
    Failed,
    /// The replacement is up; the old node's pods are being evicted.
    Draining(Instant),
}

/// The replacement of `old_node` (claim `old_claim`) by `node`, launched as `new_claim`.
#[derive(Debug, Clone)]
pub struct Command {
    pub pool: String,
    pub old_claim: String,
    pub old_node: String,
    pub new_claim: String,
    /// The replacement Node, written when its instance is up.
    pub node: Value,
    /// The AMI it launches from.
    pub image: String,
    pub phase: Phase,
    /// The old claim's `terminationGracePeriod`: past it, PodDisruptionBudgets no longer hold
    /// the drain.
    pub grace: Option<Duration>,
}

fn condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({
        "type": kind, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": Utc::now().to_rfc3339(),
    })
}

/// Sets one condition in `object`'s status, replacing one of the same type.
pub fn set_condition(object: &mut Value, c: Value) {
    if !object["status"]["conditions"].is_array() {
        object["status"]["conditions"] = json!([]);
    }
    if let Some(cs) = object["status"]["conditions"].as_array_mut() {
        cs.retain(|x| x["type"] != c["type"]);
        cs.push(c);
    }
}

/// A claim just created: nothing launched, registered or initialized yet.
pub fn launching(claim: &mut Value) {
    let waiting = |k: &str| {
        condition(
            k,
            "Unknown",
            "AwaitingReconciliation",
            "object is awaiting reconciliation",
        )
    };
    let conditions = ["Launched", "Registered", "Initialized", "Ready"].map(waiting);
    claim["status"] = json!({ "conditions": conditions });
}

/// Rewrites the status of NodeClaim `name`.
fn claim_status(
    store: &Store,
    name: &str,
    f: impl FnOnce(&mut Value) -> Result<(), StoreError>,
) -> Result<Value, StoreError> {
    let claims = resource(store, "karpenter.sh", "nodeclaims")?;
    store.update(&claims, None, name, None, Subresource::Status, f)
}

/// Takes Karpenter's disruption taint off a node no command owns.
pub fn release(store: &Store, node: &str) -> Result<(), StoreError> {
    disrupted(store, node, false)
}

/// Puts Karpenter's `karpenter.sh/disrupted:NoSchedule` taint on `node`, or takes it off.
fn disrupted(store: &Store, node: &str, on: bool) -> Result<(), StoreError> {
    let nodes = resource(store, "", "nodes")?;
    let written = store.update(&nodes, None, node, None, Subresource::Main, |n| {
        let mut taints: Vec<Value> = n["spec"]["taints"].as_array().cloned().unwrap_or_default();
        taints.retain(|t| t["key"] != DISRUPTED_TAINT);
        if on {
            taints.push(json!({ "key": DISRUPTED_TAINT, "effect": "NoSchedule" }));
        }
        n["spec"]["taints"] = Value::Array(taints);
        Ok(())
    });
    match written {
        // A node deleted meanwhile has no taint to take off.
        Ok(_) | Err(StoreError::NotFound { .. }) if !on => Ok(()),
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Starts the replacement of one node: create the new claim, mark the old one, taint its node.
/// A write that fails part-way leaves a claim or a taint with no command behind them, which the
/// next round clears (`drift::orphans`), as Karpenter does after a restart.
pub fn start(store: &Store, mut command: Command, claim: Value) -> Result<Command, StoreError> {
    let claims = resource(store, "karpenter.sh", "nodeclaims")?;
    store.create(&claims, None, claim)?;
    claim_status(store, &command.old_claim, |o| {
        set_condition(o, condition("DisruptionReason", "True", "Drifted", ""));
        Ok(())
    })?;
    disrupted(store, &command.old_node, true)?;
    command.phase = Phase::Launching;
    Ok(command)
}

/// Round 2: the instance comes up (a Node at the new version, the claim's conditions True), or
/// the launch fails with `fault`'s reason.
pub fn launch(
    store: &Store,
    command: &mut Command,
    fault: Option<&LaunchFailure>,
) -> Result<(), StoreError> {
    let healthy = match fault {
        Some(f) => {
            let message = f.message.clone().unwrap_or_else(|| {
                "creating instance, insufficient capacity in the NodePool's zones and instance types"
                    .into()
            });
            claim_status(store, &command.new_claim, |o| {
                set_condition(o, condition("Launched", "False", &f.reason, &message));
                Ok(())
            })?;
            command.phase = Phase::Failed;
            condition("NodeRegistrationHealthy", "False", &f.reason, &message)
        }
        None => {
            let nodes = resource(store, "", "nodes")?;
            // A round that failed after this write retries it.
            match store.create(&nodes, None, command.node.clone()) {
                Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
            let (node, image) = (&command.node, &command.image);
            claim_status(store, &command.new_claim, |o| {
                o["status"]["nodeName"] = node["metadata"]["name"].clone();
                o["status"]["providerID"] = node["spec"]["providerID"].clone();
                o["status"]["imageID"] = json!(image);
                for k in ["Launched", "Registered", "Initialized", "Ready"] {
                    set_condition(o, condition(k, "True", k, ""));
                }
                Ok(())
            })?;
            command.phase = Phase::Draining(Instant::now());
            condition(
                "NodeRegistrationHealthy",
                "True",
                "NodeRegistrationHealthy",
                "",
            )
        }
    };
    let pools = resource(store, "karpenter.sh", "nodepools")?;
    let current = store.get(&pools, None, &command.pool)?;
    let same = current["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == healthy["type"]))
        .is_some_and(|c| c["status"] == healthy["status"] && c["reason"] == healthy["reason"]);
    if !same {
        store.update(
            &pools,
            None,
            &command.pool,
            None,
            Subresource::Status,
            |o| {
                set_condition(o, healthy);
                Ok(())
            },
        )?;
    }
    Ok(())
}

/// After a failed launch: the claim goes, the old node is released and no longer marked.
pub fn abandon(store: &Store, command: &Command) -> Result<(), StoreError> {
    let claims = resource(store, "karpenter.sh", "nodeclaims")?;
    match store.delete(&claims, None, &command.new_claim) {
        Ok(_) | Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    disrupted(store, &command.old_node, false)?;
    let unmarked = claim_status(store, &command.old_claim, |o| {
        if let Some(cs) = o["status"]["conditions"].as_array_mut() {
            cs.retain(|c| c["type"] != "DisruptionReason");
        }
        Ok(())
    });
    match unmarked {
        Ok(_) | Err(StoreError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A pod a drain evicts: DaemonSet pods go with the node, as a drain leaves them.
fn evictable(pod: &Value) -> bool {
    !pod.pointer("/metadata/labels")
        .and_then(|l| l.get(workloads::OWNER_LABEL))
        .and_then(Value::as_str)
        .is_some_and(|o| o.starts_with("DaemonSet."))
}

/// Evicts the old node's pods one at a time, each restarted elsewhere before the next goes, for
/// as long as their PodDisruptionBudgets allow (or the grace period has run out). Returns
/// whether the node is empty of evictable pods, and then deletes it and its claim.
pub fn drain(world: &World, command: &Command, since: Instant) -> Result<bool, StoreError> {
    let store = &world.store;
    let pods = resource(store, "", "pods")?;
    let on_node = Selector::parse(None, Some(&format!("spec.nodeName={}", command.old_node)))
        .unwrap_or_default();
    let forced = command
        .grace
        .is_some_and(|g| since.elapsed() >= world.real(g));
    // The pods to evict, read once.
    let evict: Vec<Value> = store
        .list(&pods, None, &on_node)
        .0
        .into_iter()
        .filter(evictable)
        .collect();
    for pod in evict {
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
        let name = pod["metadata"]["name"].as_str().unwrap_or("");
        let id = format!("{ns}/{name}");
        if !forced && workloads::eviction_blocked(store, &command.old_node).contains(&id) {
            return Ok(false);
        }
        match store.delete(&pods, Some(ns), name) {
            // Gone already: the simulator replaced it (a rollout) or someone deleted it.
            Ok(_) | Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        // The simulator reconciles on every change too; whichever writes first wins, and the
        // loser's `AlreadyExists` means the pod has restarted. The budgets' status is brought
        // up to date whatever happened, so the next eviction reads what this one left.
        let _ = workloads::reconcile_all(store, &placement(world));
        workloads::reconcile_pdbs(store)?;
    }
    if store.list(&pods, None, &on_node).0.iter().any(evictable) {
        // A pod came back to the node (its taint was removed by hand): drain again next round.
        return Ok(false);
    }
    let nodes = resource(store, "", "nodes")?;
    match store.delete(&nodes, None, &command.old_node) {
        Ok(_) | Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let claims = resource(store, "karpenter.sh", "nodeclaims")?;
    match store.delete(&claims, None, &command.old_claim) {
        Ok(_) | Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let _ = workloads::reconcile_all(store, &placement(world));
    Ok(true)
}
