//! The emulated EKS state: the cluster, its managed node groups and add-ons, and every update
//! with its lifecycle (`InProgress` → `Successful` | `Failed`).
//!
//! One mutex guards it all; nothing awaits while holding it. Long-running work (a control-plane
//! upgrade, a node-group rollout) runs in tokio tasks that take the lock only to change state.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::errors::EksError;
use super::versions;
use crate::world::World;
use eks_upgrade_core::types::{HumanDuration, Version};

/// How long after an in-place upgrade EKS allows rolling the control plane back.
pub const ROLLBACK_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// Seconds since the Unix epoch, with milliseconds, as EKS timestamps are on the wire.
pub fn epoch_now() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

/// A stable UUID-shaped id derived from text, so ids survive recomputation.
pub fn stable_id(seed: &str) -> String {
    use crate::sim::names::hash;
    uuid::Uuid::from_u64_pair(hash(seed), hash(&format!("{seed}#2"))).to_string()
}

/// What an update changes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Cluster,
    Nodegroup(String),
    Addon(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateStatus {
    InProgress,
    Failed,
    Cancelled,
    Successful,
}

impl UpdateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateStatus::InProgress => "InProgress",
            UpdateStatus::Failed => "Failed",
            UpdateStatus::Cancelled => "Cancelled",
            UpdateStatus::Successful => "Successful",
        }
    }
}

/// An update's `cancellation`: present once a CancelUpdate was accepted for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    /// `InProgress`, `Failed` or `Successful` (`CancellationStatus`).
    pub status: &'static str,
    pub reason: String,
}

/// One entry of an update's `errors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    pub resource_ids: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Update {
    pub id: String,
    pub target: Target,
    /// `VersionUpdate`, `VersionRollback` or `AddonUpdate`.
    pub kind: &'static str,
    pub status: UpdateStatus,
    /// `(UpdateParamType, value)` in the order EKS lists them.
    pub params: Vec<(&'static str, String)>,
    pub created_at: f64,
    pub errors: Vec<ErrorDetail>,
    pub cancellation: Option<Cancellation>,
}

impl Update {
    pub fn to_json(&self) -> Value {
        let mut update = self.wire();
        if let Some(c) = &self.cancellation {
            update["cancellation"] = json!({ "status": c.status, "reason": c.reason });
        }
        update
    }

    fn wire(&self) -> Value {
        json!({
            "id": self.id,
            "status": self.status.as_str(),
            "type": self.kind,
            "params": self.params.iter().map(|(t, v)| json!({ "type": t, "value": v })).collect::<Vec<_>>(),
            "createdAt": self.created_at,
            "errors": self.errors.iter().map(|e| json!({
                "errorCode": e.code,
                "errorMessage": e.message,
                "resourceIds": e.resource_ids,
            })).collect::<Vec<_>>(),
        })
    }
}

/// The last in-place upgrade, which decides whether a rollback is allowed.
#[derive(Debug, Clone, Copy)]
pub struct LastUpgrade {
    /// Emulated seconds since the sandbox started (negative: before it started).
    pub at: f64,
    pub automatic: bool,
}

#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
    pub arn: String,
    /// The id in the OIDC issuer URL: 32 upper-case hex digits.
    pub oidc_id: String,
    pub created_at: f64,
    pub version: Version,
    pub platform_version: String,
    /// `CREATING`, `ACTIVE`, `UPDATING`, `DELETING` or `FAILED` (`ClusterStatus`).
    pub status: &'static str,
    pub last_upgrade: Option<LastUpgrade>,
    /// EKS Auto Mode, when enabled: `computeConfig` in DescribeCluster.
    pub compute: Option<crate::scenario::ComputeConfigSpec>,
    /// What CreateCluster (or the scenario) decided: role, network, access, tags.
    pub config: super::config::ClusterConfig,
    /// `health.issues`, in wire form.
    pub issues: Vec<Value>,
    /// CreateCluster's `clientRequestToken`: a retry with it gets this cluster back.
    pub token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Nodegroup {
    pub name: String,
    pub arn: String,
    pub version: Version,
    pub release_version: String,
    pub created_at: f64,
    pub modified_at: f64,
    pub status: &'static str,
    pub nodes: u32,
    pub instance_type: String,
    pub ami_type: String,
    pub labels: BTreeMap<String, String>,
    pub asg: String,
    /// `updateConfig.maxUnavailable`.
    pub max_unavailable: u32,
    /// `updateConfig.maxUnavailablePercentage`, when the group uses it instead.
    pub max_unavailable_percentage: Option<u32>,
    pub subnets: Vec<String>,
    /// `nodeRole`.
    pub node_role: String,
    /// `scalingConfig` `minSize` and `maxSize` (`desiredSize` is `nodes`).
    pub min_size: u32,
    pub max_size: u32,
    pub capacity_type: String,
    /// `taints` and `tags`, in wire form.
    pub taints: Vec<Value>,
    pub tags: serde_json::Map<String, Value>,
    pub disk_size: u32,
    /// `health.issues`, in wire form.
    pub issues: Vec<Value>,
    /// CreateNodegroup's `clientRequestToken`.
    pub token: Option<String>,
}

impl Nodegroup {
    /// How many nodes an update replaces at a time, from whichever setting the group uses.
    pub fn unavailable_at_once(&self) -> u32 {
        match self.max_unavailable_percentage {
            Some(p) => (self.nodes * p).div_ceil(100).max(1),
            None => self.max_unavailable.max(1),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Addon {
    pub name: String,
    pub arn: String,
    pub version: String,
    /// `ACTIVE`, `UPDATING` or `DEGRADED`.
    pub status: &'static str,
    pub created_at: f64,
    pub modified_at: f64,
    pub configuration_values: Option<String>,
    pub service_account_role_arn: Option<String>,
    /// `health.issues`, already in wire form.
    pub issues: Vec<Value>,
    /// `tags`, in wire form.
    pub tags: serde_json::Map<String, Value>,
}

pub struct State {
    pub cluster: Cluster,
    /// Access entries by principal ARN.
    pub access_entries: BTreeMap<String, super::access::AccessEntry>,
    pub nodegroups: BTreeMap<String, Nodegroup>,
    pub addons: BTreeMap<String, Addon>,
    /// In creation order.
    pub updates: Vec<Update>,
    /// `(target, clientRequestToken)` → update id, for idempotent retries.
    tokens: HashMap<(Target, String), String>,
    /// When the last insights refresh started and ended (epoch seconds).
    pub refresh: Option<(f64, f64)>,
    /// The rollback-readiness insights as last refreshed (EKS checks them on a schedule, on
    /// StartInsightsRefresh and when a rollback is requested, not on every read).
    pub rollback_insights: Option<super::rollback_insights::Snapshot>,
    /// The `VersionRollback` whose Auto Mode nodes are rolling back now (cancellable).
    pub rollback_nodes: Option<String>,
}

impl State {
    pub fn update(&self, id: &str) -> Option<&Update> {
        self.updates.iter().find(|u| u.id == id)
    }

    pub fn update_mut(&mut self, id: &str) -> Option<&mut Update> {
        self.updates.iter_mut().find(|u| u.id == id)
    }

    /// The update already made with this token for this target, if any.
    pub fn replay(&self, target: &Target, token: Option<&str>) -> Option<Update> {
        let id = self.tokens.get(&(target.clone(), token?.to_string()))?;
        self.update(id).cloned()
    }

    /// The update of `target` still in progress, if any.
    pub fn in_progress(&self, target: &Target) -> Option<&Update> {
        self.updates
            .iter()
            .find(|u| &u.target == target && u.status == UpdateStatus::InProgress)
    }

    /// Records a new `InProgress` update and returns it.
    pub fn begin(
        &mut self,
        target: Target,
        kind: &'static str,
        params: Vec<(&'static str, String)>,
        token: Option<&str>,
    ) -> Update {
        let update = Update {
            id: uuid::Uuid::new_v4().to_string(),
            target: target.clone(),
            kind,
            status: UpdateStatus::InProgress,
            params,
            created_at: epoch_now(),
            errors: Vec::new(),
            cancellation: None,
        };
        if let Some(t) = token {
            self.tokens
                .insert((target, t.to_string()), update.id.clone());
        }
        self.updates.push(update.clone());
        update
    }

    /// Ends an update: `Successful` without an error, `Failed` with one. An update that was
    /// cancelled meanwhile stays `Cancelled`.
    pub fn finish(&mut self, id: &str, error: Option<ErrorDetail>) {
        if let Some(u) = self
            .update_mut(id)
            .filter(|u| u.status == UpdateStatus::InProgress)
        {
            match error {
                None => u.status = UpdateStatus::Successful,
                Some(e) => {
                    u.status = UpdateStatus::Failed;
                    u.errors.push(e);
                }
            }
        }
    }

    pub fn nodegroup(&self, name: &str) -> Result<&Nodegroup, EksError> {
        self.nodegroups.get(name).ok_or_else(|| no_nodegroup(name))
    }

    pub fn addon(&self, name: &str) -> Result<&Addon, EksError> {
        let cluster = &self.cluster.name;
        self.addons.get(name).ok_or_else(|| {
            EksError::not_found(format!("No addon: {name} found in cluster: {cluster}"))
                .cluster(cluster)
                .addon(name)
        })
    }
}

/// The real message for an unknown node group.
pub fn no_nodegroup(name: &str) -> EksError {
    EksError::not_found(format!("No node group found for name: {name}.")).nodegroup(name)
}

/// The emulated EKS service: the world it belongs to and its own state.
pub struct Eks {
    pub world: Arc<World>,
    state: Mutex<State>,
    started: Instant,
}

impl Eks {
    pub fn new(world: Arc<World>) -> Arc<Eks> {
        let scenario = &world.scenario;
        let spec = &scenario.spec;
        let region = &spec.cluster.region;
        let account = &spec.account;
        let name = &spec.cluster.name;
        let now = epoch_now();
        let cluster = Cluster {
            name: name.clone(),
            arn: format!("arn:aws:eks:{region}:{account}:cluster/{name}"),
            oidc_id: stable_id(&format!("cluster/{name}"))
                .replace('-', "")
                .to_ascii_uppercase(),
            // Created well before the sandbox, as the clusters this tool meets are.
            created_at: (now - 400.0 * 86_400.0).floor(),
            version: spec.cluster.version,
            platform_version: spec
                .cluster
                .platform_version
                .clone()
                .unwrap_or_else(|| versions::platform_version(scenario, spec.cluster.version)),
            status: "ACTIVE",
            last_upgrade: spec.cluster.last_upgrade_age.map(|age| LastUpgrade {
                at: -age.0.as_secs_f64(),
                automatic: spec.cluster.last_upgrade_automatic,
            }),
            compute: spec.cluster.compute_config.clone().filter(|c| c.enabled),
            config: super::config::ClusterConfig::from_scenario(scenario),
            issues: spec
                .cluster
                .health_issues
                .iter()
                .map(|i| json!({ "code": i.code, "message": i.message, "resourceIds": i.resource_ids }))
                .collect(),
            token: None,
        };
        let nodegroups = spec
            .nodegroups
            .iter()
            .map(|ng| {
                let version = ng.version.unwrap_or(spec.cluster.version);
                let uid = stable_id(&format!("nodegroup/{name}/{}", ng.name));
                let created = (now - 200.0 * 86_400.0).floor();
                let group = Nodegroup {
                    name: ng.name.clone(),
                    arn: format!(
                        "arn:aws:eks:{region}:{account}:nodegroup/{name}/{}/{uid}",
                        ng.name
                    ),
                    version,
                    release_version: versions::release_version(scenario, version),
                    created_at: created,
                    modified_at: created,
                    status: "ACTIVE",
                    nodes: ng.nodes,
                    instance_type: ng.instance_type.clone(),
                    ami_type: ng.ami_type.clone(),
                    labels: ng.labels.clone(),
                    asg: format!("eks-{}-{uid}", ng.name),
                    max_unavailable: ng.max_unavailable,
                    max_unavailable_percentage: ng.max_unavailable_percentage,
                    subnets: scenario.nodegroup_subnet_ids(&ng.name),
                    node_role: format!("arn:aws:iam::{account}:role/{name}-node-role"),
                    min_size: ng.nodes.min(1),
                    max_size: ng.nodes.max(1) * 2,
                    capacity_type: "ON_DEMAND".into(),
                    taints: Vec::new(),
                    tags: serde_json::Map::new(),
                    disk_size: 20,
                    issues: Vec::new(),
                    token: None,
                };
                (ng.name.clone(), group)
            })
            .collect();
        let addons = spec
            .addons
            .iter()
            .map(|a| {
                let uid = stable_id(&format!("addon/{name}/{}", a.name));
                let created = (now - 200.0 * 86_400.0).floor();
                let addon = Addon {
                    name: a.name.clone(),
                    arn: format!(
                        "arn:aws:eks:{region}:{account}:addon/{name}/{}/{uid}",
                        a.name
                    ),
                    version: a.version.clone(),
                    status: "ACTIVE",
                    created_at: created,
                    modified_at: created,
                    configuration_values: a.configuration_values.clone(),
                    service_account_role_arn: a.service_account_role_arn.clone(),
                    issues: Vec::new(),
                    tags: serde_json::Map::new(),
                };
                (a.name.clone(), addon)
            })
            .collect();
        let access_entries = super::access::initial(scenario, &nodegroups);
        Arc::new(Eks {
            state: Mutex::new(State {
                access_entries,
                cluster,
                nodegroups,
                addons,
                updates: Vec::new(),
                tokens: HashMap::new(),
                refresh: None,
                rollback_insights: None,
                rollback_nodes: None,
            }),
            world,
            started: Instant::now(),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be an emulator bug; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Emulated seconds since the sandbox started: real time times the scenario's speed, so
    /// the 7-day rollback window passes in emulated time like every other duration.
    pub fn emulated_now(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * self.world.scenario.spec.speed
    }

    /// Waits an emulated duration.
    pub async fn sleep(&self, emulated: HumanDuration) {
        tokio::time::sleep(self.world.real(emulated.0)).await;
    }

    /// Checks that `name` is this state's cluster.
    pub fn check_cluster(&self, name: &str) -> Result<(), EksError> {
        if name == self.world.scenario.spec.cluster.name {
            Ok(())
        } else {
            Err(EksError::no_cluster(name))
        }
    }

    /// The first `faults.failedUpdates` entry matching the target and version, and for an add-on
    /// the add-on version the update moves to (`addonVersion` tells an add-on's upgrade from its
    /// rollback, which happen on the same cluster version).
    pub fn failure_for(
        &self,
        target: &Target,
        version: Option<Version>,
        addon_version: Option<&str>,
    ) -> Option<ErrorDetail> {
        let wanted = match target {
            Target::Cluster => "controlPlane".to_string(),
            Target::Nodegroup(n) => format!("nodegroup/{n}"),
            Target::Addon(a) => format!("addon/{a}"),
        };
        self.world
            .scenario
            .spec
            .faults
            .failed_updates
            .iter()
            .find(|f| {
                f.target == wanted
                    && (f.version.is_none() || f.version == version)
                    && f.addon_version
                        .as_deref()
                        .is_none_or(|v| addon_version == Some(v))
            })
            .map(|f| ErrorDetail {
                code: f.error_code.clone().unwrap_or_else(|| "Unknown".into()),
                message: f
                    .message
                    .clone()
                    .unwrap_or_else(|| "The update failed (sandbox scenario fault).".into()),
                resource_ids: f.resource_ids.clone(),
            })
    }
}
