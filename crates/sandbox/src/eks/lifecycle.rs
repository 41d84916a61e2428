//! Clusters that come and go: CreateCluster (`CREATING` → `ACTIVE` with an API server, endpoint
//! and CA of its own, or `FAILED` with a health issue) and DeleteCluster (`DELETING` → gone),
//! with the preconditions and errors of the EKS API reference.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Call;
use super::config::ClusterConfig;
use super::errors::{EksError, ErrorKind};
use super::request::body_str;
use super::state::{Eks, epoch_now};
use super::{versions, wire};
use crate::account::{Account, ClusterRuntime};
use crate::scenario::{ComputeConfigSpec, NewCluster};
use crate::world::World;
use eks_upgrade_core::types::Version;

/// Clusters per region, EKS's default quota.
pub const CLUSTER_LIMIT: usize = 100;

/// `^[0-9A-Za-z][A-Za-z0-9\-_]*`, 1 to 100 characters (the model's `ClusterName`).
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    (1..=100).contains(&name.len())
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `arn:aws:iam::ACCOUNT:role/NAME`.
fn valid_role_arn(arn: &str) -> bool {
    arn.strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.split_once(":role/"))
        .is_some_and(|(account, role)| {
            account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) && !role.is_empty()
        })
}

/// The subnets of `resourcesVpcConfig`: every one a subnet of the account's VPC, in at least two
/// availability zones.
fn check_subnets(account: &Account, name: &str, body: &Value) -> Result<Vec<String>, EksError> {
    let bad = |m: String| EksError::invalid_parameter(m).cluster(name);
    let ids: Vec<String> = body
        .pointer("/resourcesVpcConfig/subnetIds")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let known = account.scenario.subnets();
    let mut zones: Vec<&str> = Vec::new();
    for id in &ids {
        let subnet = known
            .iter()
            .find(|s| &s.id == id)
            .ok_or_else(|| bad(format!("The subnet ID '{id}' does not exist")))?;
        if !zones.contains(&subnet.availability_zone.as_str()) {
            zones.push(&subnet.availability_zone);
        }
    }
    if zones.len() < 2 {
        return Err(bad(
            "Subnets specified must be in at least two different AZs".into(),
        ));
    }
    Ok(ids)
}

/// The version asked for, or the catalogue's default; refused unless EKS offers it.
fn check_version(account: &Account, name: &str, body: &Value) -> Result<Version, EksError> {
    let scenario = &account.scenario;
    let unsupported = |v: &str| {
        EksError::invalid_parameter(format!("unsupported Kubernetes version {v}")).cluster(name)
    };
    match body_str(body, "version")? {
        Some(text) => {
            let version: Version = text.parse().map_err(|_| unsupported(text))?;
            if versions::offered(scenario, version) {
                Ok(version)
            } else {
                Err(unsupported(text))
            }
        }
        None => scenario
            .versions()
            .into_iter()
            .find(|v| v.default)
            .map(|v| v.version)
            .or_else(|| {
                scenario
                    .versions()
                    .into_iter()
                    .map(|v| v.version)
                    .filter(|v| versions::offered(scenario, *v))
                    .max()
            })
            .ok_or_else(|| unsupported("(default)")),
    }
}

fn compute(body: &Value) -> Option<ComputeConfigSpec> {
    let c = body.get("computeConfig")?;
    if c.get("enabled").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    Some(ComputeConfigSpec {
        enabled: true,
        node_pools: c
            .get("nodePools")
            .and_then(Value::as_array)
            .map(|p| {
                p.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        node_role_arn: c
            .get("nodeRoleArn")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

pub fn create_cluster(account: &Arc<Account>, call: &Call) -> Result<Value, EksError> {
    let body = &call.body;
    let name = body_str(body, "name")?.unwrap_or_default();
    let token = body_str(body, "clientRequestToken")?;
    if !valid_name(name) {
        return Err(EksError::invalid_parameter(format!(
            "The cluster name `{name}` must start with a letter or digit and contain only letters, digits, hyphens and underscores (1 to 100 characters)"
        ))
        .cluster(name));
    }
    // A retry with the same token gets the same cluster; any other request for the name is a
    // duplicate.
    if let Some(existing) = account.cluster(name) {
        let state = existing.eks.lock();
        if token.is_some() && state.cluster.token.as_deref() == token {
            return Ok(json!({ "cluster": wire::cluster(&existing.eks, &state) }));
        }
        return Err(
            EksError::in_use(format!("Cluster already exists with name: {name}")).cluster(name),
        );
    }
    let role = body_str(body, "roleArn")?.unwrap_or_default();
    if !valid_role_arn(role) {
        return Err(EksError::invalid_parameter(format!(
            "roleArn `{role}` is not the ARN of an IAM role"
        ))
        .cluster(name));
    }
    let subnet_ids = check_subnets(account, name, body)?;
    let version = check_version(account, name, body)?;
    let config = ClusterConfig::from_request(name, body, subnet_ids.clone())?;
    if account.len() >= CLUSTER_LIMIT {
        return Err(EksError::new(
            ErrorKind::ResourceLimitExceeded,
            format!("Cannot create cluster {name} because the account has reached its limit of {CLUSTER_LIMIT} clusters in this region"),
        )
        .cluster(name));
    }

    let certs = Account::certificates()
        .map_err(|e| EksError::new(ErrorKind::Server, e.to_string()).cluster(name))?;
    let scenario = account.scenario.for_new_cluster(&NewCluster {
        name: name.to_string(),
        version,
        subnet_ids,
        support_type: config.support_type.clone(),
        compute: compute(body),
    });
    let world = World::new(scenario, certs.ca_pem.clone(), &account.shared);
    let eks = Eks::new(world.clone());
    {
        let mut state = eks.lock();
        state.cluster.status = "CREATING";
        state.cluster.created_at = epoch_now();
        state.cluster.token = token.map(str::to_string);
        state.cluster.config = config;
        // The creator is the cluster's admin unless the request says otherwise.
        let bootstrap = body
            .pointer("/accessConfig/bootstrapClusterCreatorAdminPermissions")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        if !bootstrap {
            state.access_entries.clear();
        }
    }
    let runtime = account.register(world, eks.clone());
    let answer = {
        let state = eks.lock();
        json!({ "cluster": wire::cluster(&eks, &state) })
    };
    tokio::spawn(create(account.clone(), runtime, certs.server));
    Ok(answer)
}

/// The creation in the background: after `timings.clusterCreate`, either the scenario's
/// `newClusters.createFails` (the cluster ends `FAILED` with that health issue) or the cluster's
/// API server, objects and controllers start and it is `ACTIVE`.
async fn create(
    account: Arc<Account>,
    runtime: Arc<ClusterRuntime>,
    server_tls: Arc<rustls::ServerConfig>,
) {
    let eks = runtime.eks.clone();
    eks.sleep(eks.world.scenario.spec.timings.cluster_create)
        .await;
    let fails = account.scenario.spec.new_clusters.create_fails.clone();
    let issue = match fails {
        Some(f) => Some((f.code, f.message)),
        None => match account.bring_up(&runtime, server_tls).await {
            Ok(_) => None,
            Err(e) => Some(("InternalFailure".to_string(), e.to_string())),
        },
    };
    let mut state = eks.lock();
    match issue {
        None => state.cluster.status = "ACTIVE",
        Some((code, message)) => {
            state.cluster.status = "FAILED";
            let name = state.cluster.name.clone();
            state.cluster.issues.push(json!({
                "code": code,
                "message": message,
                "resourceIds": [name],
            }));
        }
    }
}

pub fn delete_cluster(
    account: &Arc<Account>,
    eks: &Arc<Eks>,
    call: &Call,
) -> Result<Value, EksError> {
    let name = call.cluster(eks)?;
    let mut state = eks.lock();
    let in_use = |m: String| EksError::in_use(m).cluster(name);
    match state.cluster.status {
        "DELETING" => return Ok(json!({ "cluster": wire::cluster(eks, &state) })),
        "CREATING" | "UPDATING" | "PENDING" => {
            return Err(in_use(format!(
                "Cluster {name} is {} and cannot be deleted until that finishes",
                state.cluster.status
            )));
        }
        _ => {}
    }
    if !state.nodegroups.is_empty() {
        return Err(in_use("Cluster has nodegroups attached".into()));
    }
    if !eks.world.scenario.spec.fargate_profiles.is_empty() {
        return Err(in_use("Cluster has fargate profiles attached".into()));
    }
    state.cluster.status = "DELETING";
    let answer = json!({ "cluster": wire::cluster(eks, &state) });
    drop(state);
    tokio::spawn(delete(account.clone(), eks.clone()));
    Ok(answer)
}

/// The deletion in the background: after `timings.clusterDelete` the cluster's API server and
/// controllers stop and EKS no longer knows it.
async fn delete(account: Arc<Account>, eks: Arc<Eks>) {
    eks.sleep(eks.world.scenario.spec.timings.cluster_delete)
        .await;
    account.remove(eks.world.cluster_name());
}
