//! EKS Auto Mode's part in version changes: after a control-plane upgrade EKS drifts the Auto
//! Mode nodes to the new version; a rollback drifts them back first (the cluster stays ACTIVE,
//! the update InProgress), bounded by `rollbackConfig.timeoutMinutes`, and only then rolls the
//! control plane back (the cluster UPDATING), all within the one `VersionRollback` update.
//! CancelUpdate stops a rollback while its nodes are moving, and only then.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Call;
use super::cluster;
use super::errors::EksError;
use super::insights;
use super::rollback;
use super::rollback_insights;
use super::state::{Cancellation, Eks, ErrorDetail, Target, UpdateStatus};
use crate::sim::{self, automode};
use eks_upgrade_core::types::{HumanDuration, Version};

/// How long one round of node drift takes: the managed node group's time per node.
fn round(eks: &Eks) -> HumanDuration {
    eks.world.scenario.spec.timings.nodegroup_update_per_node
}

/// Drifts the Auto Mode nodes to `target` until none is left behind, as EKS does after an
/// upgrade. Stops when the control plane moves on (a later change converges instead).
pub async fn converge(eks: Arc<Eks>, target: Version) {
    loop {
        let store = eks.world.store.clone();
        if automode::drifted(&store, target).is_empty()
            || eks.world.control_plane_version() != target
            || eks.lock().rollback_nodes.is_some()
        {
            return;
        }
        eks.sleep(round(&eks)).await;
        automode::drift_round(&store, &sim::placement(&eks.world), target);
    }
}

/// What ended the node phase of a rollback.
enum NodePhase {
    Done,
    Cancelled,
    TimedOut(Vec<(String, String)>),
}

/// The node phase: rounds of drift towards `target`, honouring disruption controls, until every
/// Auto Mode node is there, the timeout passes or the update is cancelled.
async fn nodes_back(eks: &Arc<Eks>, id: &str, target: Version, minutes: i64) -> NodePhase {
    let start = eks.emulated_now();
    let store = eks.world.store.clone();
    loop {
        let cancelled = eks
            .lock()
            .update(id)
            .and_then(|u| u.cancellation.as_ref())
            .is_some_and(|c| c.status == "InProgress");
        if cancelled {
            return NodePhase::Cancelled;
        }
        if automode::drifted(&store, target).is_empty() {
            return NodePhase::Done;
        }
        eks.sleep(round(eks)).await;
        let done = automode::drift_round(&store, &sim::placement(&eks.world), target);
        let left = automode::drifted(&store, target);
        if !left.is_empty() && eks.emulated_now() - start >= minutes as f64 * 60.0 {
            let mut held = done.held;
            for node in left {
                if !held.iter().any(|(n, _)| *n == node) {
                    held.push((node.clone(), format!("node {node} is still rolling back")));
                }
            }
            return NodePhase::TimedOut(held);
        }
    }
}

/// The `VersionRollback` of an Auto Mode cluster, after UpdateClusterVersion accepted it.
pub async fn rollback(eks: Arc<Eks>, id: String, target: Version, minutes: i64, force: bool) {
    eks.lock().rollback_nodes = Some(id.clone());
    let phase = nodes_back(&eks, &id, target, minutes).await;
    let current = {
        let mut state = eks.lock();
        state.rollback_nodes = None;
        state.cluster.version
    };
    let failure = match phase {
        NodePhase::Done => None,
        NodePhase::Cancelled => {
            let mut state = eks.lock();
            if let Some(u) = state.update_mut(&id) {
                u.status = UpdateStatus::Cancelled;
                u.cancellation = Some(Cancellation {
                    status: "Successful",
                    reason: format!(
                        "The rollback was cancelled while Auto Mode nodes were rolling back; they converge back to {current}"
                    ),
                });
            }
            drop(state);
            tokio::spawn(converge(eks.clone(), current));
            return;
        }
        NodePhase::TimedOut(held) => Some(ErrorDetail {
            code: "Unknown".into(),
            message: format!(
                "Auto Mode nodes did not roll back to {target} within {minutes} minutes: {}",
                held.iter()
                    .map(|(_, why)| why.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            resource_ids: held.into_iter().map(|(node, _)| node).collect(),
        }),
    };
    // With the nodes back, EKS checks the insights again before touching the control plane.
    let failure = failure.or_else(|| {
        let mut state = eks.lock();
        rollback_insights::refresh(&eks, &mut state);
        let errors = insights::errors(&eks, &state, "ROLLBACK_READINESS", target);
        (!force && !errors.is_empty()).then(|| ErrorDetail {
            code: "Unknown".into(),
            message: rollback::blocked(&state.cluster.name, &errors).message,
            resource_ids: Vec::new(),
        })
    });
    if let Some(error) = failure {
        eks.lock().finish(&id, Some(error));
        tokio::spawn(converge(eks.clone(), current));
        return;
    }
    cluster::run(eks, id, target, true).await;
}

/// CancelUpdate: accepted for a `VersionRollback` of an Auto Mode cluster while its nodes roll
/// back; the cancellation then completes at the next round of the node phase.
pub fn cancel_update(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    let name = call.cluster(eks)?;
    let id = call.param("updateId");
    super::request::body_str(&call.body, "clientRequestToken")?;
    let mut state = eks.lock();
    let update = state
        .update(id)
        .filter(|u| u.target == Target::Cluster)
        .cloned()
        .ok_or_else(|| {
            EksError::not_found(format!("No update found for ID: {id}")).cluster(name)
        })?;
    if update.cancellation.is_some() {
        // A retried cancellation sees the one already under way or done.
        return Ok(json!({ "update": update.to_json() }));
    }
    let refused = |why: String| EksError::invalid_request(why).cluster(name);
    if update.status != UpdateStatus::InProgress {
        return Err(refused(format!(
            "Update {id} is {} and cannot be cancelled",
            update.status.as_str()
        )));
    }
    if update.kind != "VersionRollback" || state.cluster.compute.is_none() {
        return Err(refused(format!(
            "Update {id} cannot be cancelled: only a VersionRollback of an EKS Auto Mode cluster can be, while its nodes roll back"
        )));
    }
    if state.rollback_nodes.as_deref() != Some(id) {
        return Err(refused(format!(
            "Update {id} cannot be cancelled: the control plane rollback has already begun"
        )));
    }
    let Some(u) = state.update_mut(id) else {
        return Err(refused(format!("Update {id} cannot be cancelled")));
    };
    u.cancellation = Some(Cancellation {
        status: "InProgress",
        reason: "Cancellation requested".into(),
    });
    Ok(json!({ "update": u.to_json() }))
}
