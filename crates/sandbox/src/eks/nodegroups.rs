//! Managed node groups: ListNodegroups, DescribeNodegroup and UpdateNodegroupVersion, whose
//! rollout replaces the group's nodes `maxUnavailable` at a time in the Kubernetes store,
//! draining each first. While a control-plane rollback is possible, a group may also go back
//! one minor (N → N-1), with the same rollout.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Call;
use super::errors::EksError;
use super::request::{body_bool, body_str, page};
use super::rollback::window_target;
use super::state::{Eks, ErrorDetail, Target, epoch_now};
use super::{versions, wire};
use crate::sim::{self, nodes, workloads};
use eks_upgrade_core::types::Version;

pub fn list_nodegroups(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    call.cluster(eks)?;
    let names: Vec<String> = eks.lock().nodegroups.keys().cloned().collect();
    let (names, next) = page(names, call.query.max_results()?, call.query.next_token())?;
    Ok(json!({ "nodegroups": names, "nextToken": next }))
}

pub fn describe_nodegroup(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    let cluster = call.cluster(eks)?;
    let state = eks.lock();
    let ng = state
        .nodegroup(call.param("nodegroupName"))
        .map_err(|e| e.cluster(cluster))?;
    Ok(json!({ "nodegroup": wire::nodegroup(eks, &state, ng) }))
}

pub fn update_nodegroup_version(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    let cluster = call.cluster(eks)?;
    let name = call.param("nodegroupName");
    let body = &call.body;
    let token = body_str(body, "clientRequestToken")?;
    let force = body_bool(body, "force")?;
    let requested = body_str(body, "version")?;
    let requested_release = body_str(body, "releaseVersion")?;
    let bad = |message: String| {
        EksError::invalid_parameter(message)
            .cluster(cluster)
            .nodegroup(name)
    };

    let mut state = eks.lock();
    let target = Target::Nodegroup(name.to_string());
    if let Some(update) = state.replay(&target, token) {
        return Ok(json!({ "update": update.to_json() }));
    }
    let ng = state
        .nodegroup(name)
        .map_err(|e| e.cluster(cluster))?
        .clone();
    if body.get("launchTemplate").is_some_and(|t| !t.is_null()) {
        return Err(bad(format!(
            "Nodegroup {name} was not created with a launch template; a launch template cannot be specified"
        )));
    }
    if ng.status != "ACTIVE" || state.in_progress(&target).is_some() {
        return Err(EksError::in_use(
            "Nodegroup cannot be updated as it is currently not in Active State",
        )
        .cluster(cluster)
        .nodegroup(name));
    }
    let cluster_version = state.cluster.version;
    // Without a version, EKS moves the group to the newest AMI of the version it runs.
    let version = match requested {
        None => ng.version,
        Some(text) => text.parse::<Version>().map_err(|_| {
            bad(format!(
                "Requested Kubernetes version {text} is not a valid version"
            ))
        })?,
    };
    // Going back one minor is the managed node group's part of a version rollback: allowed
    // while the control plane runs N and could still be rolled back to N-1.
    let back = version.next_minor() == ng.version
        && ng.version == cluster_version
        && window_target(eks, &state) == Some(version);
    if version != cluster_version && version != ng.version && !back {
        return Err(bad(format!(
            "Nodegroup Kubernetes version should be equal to Cluster kubernetes version {cluster_version} or NodeGroup kubernetes version {}",
            ng.version
        )));
    }
    let latest = versions::release_version(&eks.world.scenario, version);
    if let Some(r) = requested_release
        && r != latest
    {
        return Err(bad(format!(
            "Requested release version {r} is not valid for kubernetes version {version}."
        )));
    }
    let params = vec![
        ("Version", version.to_string()),
        ("ReleaseVersion", latest.clone()),
    ];
    let update = state.begin(target, "VersionUpdate", params, token);
    if let Some(ng) = state.nodegroups.get_mut(name) {
        ng.status = "UPDATING";
        ng.modified_at = epoch_now();
    }
    drop(state);
    tokio::spawn(rollout(
        eks.clone(),
        update.id.clone(),
        name.to_string(),
        version,
        latest,
        force,
        ng.unavailable_at_once() as usize,
    ));
    Ok(json!({ "update": update.to_json() }))
}

/// Rolls the group's nodes `max_unavailable` at a time, as EKS's upgrade phase does: each old
/// node is drained (refused while a PodDisruptionBudget forbids evicting one of its pods,
/// unless `force`) and replaced by a node running the requested kubelet, newer or older.
async fn rollout(
    eks: Arc<Eks>,
    id: String,
    name: String,
    version: Version,
    release: String,
    force: bool,
    max_unavailable: usize,
) {
    let per_node = eks.world.scenario.spec.timings.nodegroup_update_per_node;
    let store = eks.world.store.clone();
    let region = eks.world.scenario.spec.cluster.region.clone();
    let mut failure = eks.failure_for(&Target::Nodegroup(name.clone()), Some(version), None);
    if failure.is_some() {
        eks.sleep(per_node).await;
    } else {
        let all = nodes::nodegroup_nodes(&store, &name);
        for (i, node) in all.into_iter().enumerate() {
            // A batch of `maxUnavailable` nodes is replaced together: one wait per batch.
            if i % max_unavailable == 0 {
                eks.sleep(per_node).await;
            }
            // Disruption budgets as the eviction API sees them now, after the pods of the
            // previously replaced node were rescheduled.
            let placement = sim::placement(&eks.world);
            if workloads::reconcile_all(&store, &placement).is_err() {
                tokio::task::yield_now().await;
                let _ = workloads::reconcile_all(&store, &placement);
            }
            let blocked = workloads::eviction_blocked(&store, &node);
            if !blocked.is_empty() && !force {
                failure = Some(ErrorDetail {
                    code: "PodEvictionFailure".into(),
                    message: format!(
                        "Reached max retries while trying to evict pods from nodes in node group {name}"
                    ),
                    resource_ids: blocked,
                });
                break;
            }
            if let Err(e) = nodes::replace(&store, &region, &node, version) {
                failure = Some(ErrorDetail {
                    code: "NodeCreationFailure".into(),
                    message: format!("Could not replace node {node}: {e}"),
                    resource_ids: vec![node],
                });
                break;
            }
        }
    }
    let mut state = eks.lock();
    if let Some(ng) = state.nodegroups.get_mut(&name) {
        ng.status = "ACTIVE";
        ng.modified_at = epoch_now();
        if failure.is_none() {
            ng.version = version;
            ng.release_version = release;
        }
    }
    let reached = failure.is_none();
    state.finish(&id, failure);
    drop(state);
    if reached {
        eks.world.nodegroup_reached(version);
    }
}
