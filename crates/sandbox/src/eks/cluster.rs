//! The cluster and its control-plane updates: ListClusters, DescribeCluster,
//! UpdateClusterVersion (upgrade one minor at a time, or roll back within 7 days),
//! DescribeUpdate and ListUpdates.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Call;
use super::errors::{EksError, ErrorKind};
use super::request::{body_bool, body_str, page};
use super::state::{Eks, LastUpgrade, State, Target, UpdateStatus};
use super::{automode, insights, rollback, versions, wire};
use crate::account::Account;
use eks_upgrade_core::types::{HumanDuration, Version};

pub fn list_clusters(account: &Account, call: &Call) -> Result<Value, EksError> {
    let names = account.names();
    let (names, next) = page(names, call.query.max_results()?, call.query.next_token())?;
    Ok(json!({ "clusters": names, "nextToken": next }))
}

pub fn describe_cluster(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    call.cluster(eks)?;
    let state = eks.lock();
    Ok(json!({ "cluster": wire::cluster(eks, &state) }))
}

/// `rollbackConfig.timeoutMinutes`, checked against the model's documented range.
fn rollback_timeout(body: &Value) -> Result<Option<i64>, EksError> {
    let Some(config) = body.get("rollbackConfig").filter(|c| !c.is_null()) else {
        return Ok(None);
    };
    match config.get("timeoutMinutes") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(m) if (120..=10_080).contains(&m) => Ok(Some(m)),
            _ => Err(EksError::invalid_parameter(format!(
                "rollbackConfig.timeoutMinutes must be between 120 and 10080, not {v}"
            ))),
        },
    }
}

pub fn update_cluster_version(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    let name = call.cluster(eks)?;
    let body = &call.body;
    let token = body_str(body, "clientRequestToken")?;
    let force = body_bool(body, "force")?;
    let requested = body_str(body, "version")?
        .ok_or_else(|| EksError::invalid_parameter("version is required").cluster(name))?;
    // Bounds the node phase of an Auto Mode rollback; otherwise validated only.
    let timeout = rollback_timeout(body).map_err(|e| e.cluster(name))?;

    let mut state = eks.lock();
    // A retry with the same token gets the same update, whatever happened since.
    if let Some(update) = state.replay(&Target::Cluster, token) {
        return Ok(json!({ "update": update.to_json() }));
    }
    // Only a running cluster is upgraded: not one being created or deleted, nor a failed one.
    let status = state.cluster.status;
    if matches!(status, "CREATING" | "DELETING" | "FAILED") {
        return Err(EksError::invalid_request(format!(
            "Cluster {name} is {status} and cannot be updated"
        ))
        .cluster(name));
    }
    let current = state.cluster.version;
    let unsupported = || {
        EksError::invalid_parameter(format!(
            "Unsupported Kubernetes minor version update from {current} to {requested}"
        ))
        .cluster(name)
    };
    let target: Version = requested.parse().map_err(|_| unsupported())?;
    let rollback = target < current;
    let kind = if rollback {
        "VersionRollback"
    } else {
        "VersionUpdate"
    };
    if let Some(running) = state.in_progress(&Target::Cluster) {
        return Err(EksError::in_use(format!(
            "Cannot {kind} because cluster {name} currently has update {} in progress",
            running.id
        ))
        .cluster(name));
    }
    match current.minor_distance(target) {
        Some(1) => check_upgrade(eks, &state, name, target, force)?,
        Some(-1) => rollback::check(eks, &mut state, name, target, force)?,
        _ => return Err(unsupported()),
    }
    let params = vec![
        ("Version", target.to_string()),
        (
            "PlatformVersion",
            versions::platform_version(&eks.world.scenario, target),
        ),
    ];
    let update = state.begin(Target::Cluster, kind, params, token);
    let auto_mode = state.cluster.compute.is_some();
    drop(state);
    if rollback && auto_mode {
        // EKS drifts Auto Mode nodes back first, within the same update.
        let minutes = timeout.unwrap_or(720);
        tokio::spawn(automode::rollback(
            eks.clone(),
            update.id.clone(),
            target,
            minutes,
            force,
        ));
    } else {
        tokio::spawn(run(eks.clone(), update.id.clone(), target, rollback));
    }
    Ok(json!({ "update": update.to_json() }))
}

fn check_upgrade(
    eks: &Eks,
    state: &State,
    name: &str,
    target: Version,
    force: bool,
) -> Result<(), EksError> {
    let current = state.cluster.version;
    if !versions::offered(&eks.world.scenario, target) {
        return Err(EksError::invalid_parameter(format!(
            "Unsupported Kubernetes minor version update from {current} to {target}"
        ))
        .cluster(name));
    }
    let behind: Vec<&str> = state
        .nodegroups
        .values()
        .filter(|ng| ng.version != current)
        .map(|ng| ng.name.as_str())
        .collect();
    if !behind.is_empty() {
        return Err(EksError::invalid_parameter(format!(
            "Nodegroups {} must be updated to match cluster version {current} before updating cluster version",
            behind.join(",")
        ))
        .cluster(name));
    }
    if !force && insights::blocking(eks, state, "UPGRADE_READINESS", target) {
        return Err(EksError::new(
            ErrorKind::InvalidState,
            "Upgrade readiness issues detected. Call the EKS ListInsights API to view upgrade blocking issues detected by EKS. Pass the force flag to override upgrade readiness errors and proceed with upgrade.",
        )
        .cluster(name));
    }
    Ok(())
}

/// The control-plane update in the background: the cluster reads UPDATING after the scenario's
/// status lag, and at the end either runs the new version or, on an injected failure, stays on
/// the old one (EKS reverts a control plane that fails its health checks). On Auto Mode, an
/// upgrade then drifts the Auto Mode nodes to the new version.
pub async fn run(eks: Arc<Eks>, id: String, target: Version, rollback: bool) {
    let timings = &eks.world.scenario.spec.timings;
    let total = if rollback {
        timings.control_plane_rollback
    } else {
        timings.control_plane_update
    };
    let lag = timings.status_lag.min(total);
    eks.sleep(lag).await;
    {
        let mut state = eks.lock();
        if state
            .update(&id)
            .is_some_and(|u| u.status == UpdateStatus::InProgress)
        {
            state.cluster.status = "UPDATING";
        }
    }
    eks.sleep(HumanDuration(total.0.saturating_sub(lag.0)))
        .await;
    let failure = eks.failure_for(&Target::Cluster, Some(target), None);
    if failure.is_none() {
        // The API server answers with the new version by the time EKS reports success.
        eks.world.set_control_plane_version(target);
    }
    let mut state = eks.lock();
    state.cluster.status = "ACTIVE";
    if failure.is_none() {
        state.cluster.version = target;
        state.cluster.platform_version = versions::platform_version(&eks.world.scenario, target);
        // A rollback is not an upgrade: it cannot itself be rolled back.
        state.cluster.last_upgrade = (!rollback).then(|| LastUpgrade {
            at: eks.emulated_now(),
            automatic: false,
        });
        // Rollback-readiness insights start afresh for the new version (or end with the window).
        state.rollback_insights = None;
    }
    let drift = failure.is_none() && !rollback && state.cluster.compute.is_some();
    state.finish(&id, failure);
    drop(state);
    if drift {
        tokio::spawn(automode::converge(eks.clone(), target));
    }
}

/// Which updates a DescribeUpdate/ListUpdates request is about: node-group and add-on updates
/// are only visible with `nodegroupName`/`addonName`.
fn target_of(state: &State, call: &Call) -> Result<Target, EksError> {
    let name = &state.cluster.name;
    match (call.query.one("nodegroupName"), call.query.one("addonName")) {
        (Some(ng), _) => {
            state.nodegroup(ng).map_err(|e| e.cluster(name))?;
            Ok(Target::Nodegroup(ng.to_string()))
        }
        (None, Some(addon)) => {
            state.addon(addon)?;
            Ok(Target::Addon(addon.to_string()))
        }
        (None, None) => Ok(Target::Cluster),
    }
}

pub fn describe_update(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    let name = call.cluster(eks)?;
    let id = call.param("updateId");
    let state = eks.lock();
    let target = target_of(&state, call)?;
    let update = state
        .update(id)
        .filter(|u| u.target == target)
        .ok_or_else(|| {
            EksError::not_found(format!("No update found for ID: {id}")).cluster(name)
        })?;
    Ok(json!({ "update": update.to_json() }))
}

pub fn list_updates(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    call.cluster(eks)?;
    let state = eks.lock();
    let target = target_of(&state, call)?;
    let ids: Vec<String> = state
        .updates
        .iter()
        .filter(|u| u.target == target)
        .map(|u| u.id.clone())
        .collect();
    let (ids, next) = page(ids, call.query.max_results()?, call.query.next_token())?;
    Ok(json!({ "updateIds": ids, "nextToken": next }))
}
