//! Managed node groups that come and go: CreateNodegroup (`CREATING` → nodes join the cluster's
//! Kubernetes API Ready → `ACTIVE`, or `CREATE_FAILED` with a health issue) and DeleteNodegroup
//! (`DELETING` → nodes cordoned and removed, their pods rescheduled → gone).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::Call;
use super::access::AccessEntry;
use super::errors::{EksError, ErrorKind};
use super::request::body_str;
use super::state::{Eks, Nodegroup, epoch_now, stable_id};
use super::{versions, wire};
use crate::sim::{self, names, nodes, workloads};
use eks_upgrade_core::types::Version;

/// Managed node groups per cluster: EKS's default quota.
const NODEGROUP_LIMIT: usize = 30;

/// AL2 AMIs end with Kubernetes 1.32: EKS refuses them from 1.33 on.
const LAST_AL2: Version = Version {
    major: 1,
    minor: 32,
};

fn number(value: Option<&Value>, key: &str, default: u32) -> Result<u32, EksError> {
    match value.and_then(|v| v.get(key)) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| EksError::invalid_parameter(format!("{key} must be a whole number"))),
    }
}

pub fn create_nodegroup(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    let cluster = call.cluster(eks)?;
    let body = &call.body;
    let name = body_str(body, "nodegroupName")?.unwrap_or_default();
    let token = body_str(body, "clientRequestToken")?;
    let bad = |m: String| {
        EksError::invalid_parameter(m)
            .cluster(cluster)
            .nodegroup(name)
    };
    let valid = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(bad(format!(
            "The node group name `{name}` must start with a letter or digit and contain only letters, digits, hyphens and underscores (1 to 63 characters)"
        )));
    }
    let mut state = eks.lock();
    if state.cluster.status != "ACTIVE" {
        return Err(EksError::invalid_request(format!(
            "Cluster {cluster} is {} and cannot take node groups until it is ACTIVE",
            state.cluster.status
        ))
        .cluster(cluster)
        .nodegroup(name));
    }
    if let Some(existing) = state.nodegroups.get(name) {
        if token.is_some() && existing.token.as_deref() == token {
            return Ok(json!({ "nodegroup": wire::nodegroup(eks, &state, existing) }));
        }
        return Err(EksError::in_use(format!(
            "NodeGroup already exists with name {name} and cluster name {cluster}"
        ))
        .cluster(cluster)
        .nodegroup(name));
    }
    if state.nodegroups.len() >= NODEGROUP_LIMIT {
        return Err(EksError::new(
            ErrorKind::ResourceLimitExceeded,
            format!(
                "Cluster {cluster} has reached its limit of {NODEGROUP_LIMIT} managed node groups"
            ),
        )
        .cluster(cluster)
        .nodegroup(name));
    }
    let role = body_str(body, "nodeRole")?.unwrap_or_default();
    if !(role.starts_with("arn:aws:iam::") && role.contains(":role/")) {
        return Err(bad(format!(
            "nodeRole `{role}` is not the ARN of an IAM role"
        )));
    }
    let known = eks.world.scenario.subnets();
    let subnets: Vec<String> = body
        .get("subnets")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if subnets.is_empty() {
        return Err(bad("subnets must name at least one subnet".into()));
    }
    let mut zones = Vec::new();
    for id in &subnets {
        let subnet = known
            .iter()
            .find(|s| &s.id == id)
            .ok_or_else(|| bad(format!("The subnet ID '{id}' does not exist")))?;
        zones.push(subnet.availability_zone.clone());
    }
    let cluster_version = state.cluster.version;
    let version = match body_str(body, "version")? {
        None => cluster_version,
        Some(text) => text.parse::<Version>().map_err(|_| {
            bad(format!(
                "Requested Kubernetes version {text} is not a valid version"
            ))
        })?,
    };
    if version > cluster_version
        || cluster_version
            .minor_distance(version)
            .is_none_or(|d| d < -3)
    {
        return Err(bad(format!(
            "Requested Nodegroup Kubernetes version {version} is not supported for cluster version {cluster_version}"
        )));
    }
    let ami_type = body_str(body, "amiType")?.unwrap_or("AL2023_x86_64_STANDARD");
    if ami_type.starts_with("AL2_") && version > LAST_AL2 {
        return Err(bad(format!(
            "Requested AMI type {ami_type} is not supported for Kubernetes version {version}"
        )));
    }
    let scaling = body.get("scalingConfig");
    let desired = number(scaling, "desiredSize", 2).map_err(|e| e.cluster(cluster))?;
    let min = number(scaling, "minSize", 1).map_err(|e| e.cluster(cluster))?;
    let max = number(scaling, "maxSize", desired.max(2)).map_err(|e| e.cluster(cluster))?;
    if max < 1 || min > desired || desired > max {
        return Err(bad(format!(
            "Invalid scalingConfig: minSize {min} <= desiredSize {desired} <= maxSize {max} and maxSize >= 1 must hold"
        )));
    }
    let instance_type = body
        .pointer("/instanceTypes/0")
        .and_then(Value::as_str)
        .unwrap_or("t3.medium")
        .to_string();
    let labels = body
        .get("labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let update = body.get("updateConfig");
    let spec = &eks.world.scenario.spec;
    let uid = stable_id(&format!("nodegroup/{cluster}/{name}/{}", epoch_now()));
    let now = epoch_now();
    let group = Nodegroup {
        name: name.to_string(),
        arn: format!(
            "arn:aws:eks:{}:{}:nodegroup/{cluster}/{name}/{uid}",
            spec.cluster.region, spec.account
        ),
        version,
        release_version: body_str(body, "releaseVersion")?
            .map(str::to_string)
            .unwrap_or_else(|| versions::release_version(&eks.world.scenario, version)),
        created_at: now,
        modified_at: now,
        status: "CREATING",
        nodes: desired,
        instance_type,
        ami_type: ami_type.to_string(),
        labels,
        asg: format!("eks-{name}-{uid}"),
        max_unavailable: number(update, "maxUnavailable", 1).map_err(|e| e.cluster(cluster))?,
        max_unavailable_percentage: update
            .and_then(|u| u.get("maxUnavailablePercentage"))
            .and_then(Value::as_u64)
            .and_then(|p| u32::try_from(p).ok()),
        subnets,
        node_role: role.to_string(),
        min_size: min,
        max_size: max,
        capacity_type: body_str(body, "capacityType")?
            .unwrap_or("ON_DEMAND")
            .to_string(),
        taints: body
            .get("taints")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        tags: body
            .get("tags")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_else(Map::new),
        disk_size: number(Some(body), "diskSize", 20).map_err(|e| e.cluster(cluster))?,
        issues: Vec::new(),
        token: token.map(str::to_string),
    };
    let answer = json!({ "nodegroup": wire::nodegroup(eks, &state, &group) });
    // EKS gives the node role its access entry with the group.
    state
        .access_entries
        .entry(role.to_string())
        .or_insert_with(|| AccessEntry::node(role));
    state.nodegroups.insert(name.to_string(), group);
    drop(state);
    tokio::spawn(create(eks.clone(), name.to_string(), zones));
    Ok(answer)
}

/// After `timings.nodegroupCreate`: the scenario's `newClusters.nodegroupCreateFails` for the
/// group, or its nodes join Ready (spread over its subnets' zones) and it is `ACTIVE`.
async fn create(eks: Arc<Eks>, name: String, zones: Vec<String>) {
    eks.sleep(eks.world.scenario.spec.timings.nodegroup_create)
        .await;
    let spec = &eks.world.scenario.spec;
    let failure = spec
        .new_clusters
        .nodegroup_create_fails
        .iter()
        .find(|f| f.nodegroup == name)
        .map(|f| (f.code.clone(), f.message.clone()));
    let Some(group) = eks.lock().nodegroups.get(&name).cloned() else {
        return;
    };
    let failure = match failure {
        Some(f) => Some(f),
        None => join(&eks, &group, &zones)
            .err()
            .map(|e| ("NodeCreationFailure".to_string(), e)),
    };
    let mut state = eks.lock();
    let Some(ng) = state.nodegroups.get_mut(&name) else {
        return;
    };
    ng.modified_at = epoch_now();
    match failure {
        None => ng.status = "ACTIVE",
        Some((code, message)) => {
            ng.status = "CREATE_FAILED";
            ng.issues.push(json!({
                "code": code,
                "message": message,
                "resourceIds": [ng.asg.clone()],
            }));
        }
    }
}

/// Writes the group's nodes into the cluster's Kubernetes store.
fn join(eks: &Eks, group: &Nodegroup, zones: &[String]) -> Result<(), String> {
    let store = &eks.world.store;
    let spec = &eks.world.scenario.spec;
    let rt = store
        .resource("", "v1", "nodes")
        .ok_or_else(|| "the cluster has no nodes resource".to_string())?;
    let origin = nodes::Origin::Managed {
        nodegroup: &group.name,
        instance_type: &group.instance_type,
        labels: &group.labels,
    };
    for i in 0..group.nodes {
        let node = names::node_name(
            &spec.cluster.region,
            &format!("{}/{}/{}/{i}", spec.cluster.name, group.name, group.arn),
        );
        let zone = zones
            .get(i as usize % zones.len().max(1))
            .cloned()
            .unwrap_or_else(|| format!("{}a", spec.cluster.region));
        store
            .create(
                &rt,
                None,
                nodes::node_object(&node, group.version, &origin, &zone),
            )
            .map_err(|e| format!("node {node} could not join: {e}"))?;
    }
    let placement = sim::placement(&eks.world);
    let _ = workloads::reconcile_all(store, &placement);
    Ok(())
}

pub fn delete_nodegroup(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    let cluster = call.cluster(eks)?;
    let name = call.param("nodegroupName");
    let mut state = eks.lock();
    let status = state
        .nodegroup(name)
        .map_err(|e| e.cluster(cluster))?
        .status;
    if matches!(status, "CREATING" | "UPDATING") {
        return Err(EksError::in_use(format!(
            "Nodegroup {name} is {status} and cannot be deleted until that finishes"
        ))
        .cluster(cluster)
        .nodegroup(name));
    }
    let Some(ng) = state.nodegroups.get_mut(name) else {
        return Err(super::state::no_nodegroup(name).cluster(cluster));
    };
    let first = ng.status != "DELETING";
    ng.status = "DELETING";
    ng.modified_at = epoch_now();
    let ng = ng.clone();
    let answer = json!({ "nodegroup": wire::nodegroup(eks, &state, &ng) });
    drop(state);
    if first {
        tokio::spawn(delete(eks.clone(), name.to_string()));
    }
    Ok(answer)
}

/// After `timings.nodegroupDelete`: the group's nodes are cordoned and removed (the simulator
/// reschedules their pods) and EKS no longer lists the group.
async fn delete(eks: Arc<Eks>, name: String) {
    eks.sleep(eks.world.scenario.spec.timings.nodegroup_delete)
        .await;
    let store = &eks.world.store;
    if let Some(rt) = store.resource("", "v1", "nodes") {
        for node in nodes::nodegroup_nodes(store, &name) {
            let _ = nodes::cordon(store, &node);
            let _ = store.delete(&rt, None, &node);
        }
    }
    eks.lock().nodegroups.remove(&name);
}
