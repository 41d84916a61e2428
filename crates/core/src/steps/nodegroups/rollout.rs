//! Moving managed node groups to a version, forward (`upgradeNodegroups`) or back
//! (`rollbackNodegroups`): UpdateNodegroupVersion a bounded number at a time, each waited on and
//! then checked in EKS; after a failure no further group is started. Failures carry EKS's error
//! codes with the resources it names (PodEvictionFailure with the pods, NodeCreationFailure with
//! the instances). Every update is journaled (idempotency token first, then the update id), so a
//! resumed step re-attaches instead of starting a second update.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::cloud::eks::{self, NodegroupInfo, UpdateOf, eks_error};
use crate::cloud::nodes::{self, Manager};
use crate::journal::Fact;
use crate::steps::{Context, StepCtx, StepError};
use crate::types::{HumanDuration, Version};

/// The update of one node group (`update:GROUP`).
pub const UPDATE: Fact<String> = Fact::new("update");
/// The idempotency token of that update (`token:GROUP`).
pub const TOKEN: Fact<String> = Fact::new("token");

/// How the groups move.
pub struct Rollout {
    /// How many groups update at once.
    pub max_parallel: u32,
    /// Replace nodes even when pod disruption budgets block draining.
    pub force: bool,
    /// How long each group may take.
    pub timeout: HumanDuration,
}

/// What became of the groups.
#[derive(Default)]
pub struct Moved {
    /// `GROUP → VERSION (update ID)` for each group that got there.
    pub done: Vec<String>,
    pub failures: Vec<StepError>,
    /// Groups not started because another had failed.
    pub not_started: Vec<String>,
}

impl Moved {
    /// The step's error when any group failed: every failure, and the groups left alone.
    /// Any group still updating on AWS makes it in flight: recovering now would race it.
    pub fn error(&self) -> Option<StepError> {
        if self.failures.is_empty() {
            return None;
        }
        let mut message = self
            .failures
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        if !self.not_started.is_empty() {
            let mut names = self.not_started.clone();
            names.sort();
            message.push_str(&format!(
                "; not started after the failure: {}",
                names.join(", ")
            ));
        }
        Some(
            if self
                .failures
                .iter()
                .any(|e| matches!(e, StepError::InFlight(_)))
            {
                StepError::InFlight(message)
            } else {
                StepError::Failed(message)
            },
        )
    }
}

/// How one group's part ended.
enum GroupEnd {
    Ran(Result<String, StepError>),
    /// Not started because another group had already failed.
    NotStarted(String),
}

/// Moves `groups` to `version`, `rollout.max_parallel` at a time. Once a group has failed no
/// further group starts: recovery follows (or stops), and every group started after that would
/// only add nodes at a version about to be abandoned. Groups already updating finish.
pub async fn move_groups(
    ctx: &StepCtx<'_>,
    groups: Vec<NodegroupInfo>,
    version: Version,
    rollout: &Rollout,
) -> Moved {
    let failed = AtomicBool::new(false);
    let failed = &failed;
    // Owned groups in `async move` blocks: the futures borrow nothing from the iterator.
    let updates: Vec<_> = groups
        .into_iter()
        .map(|g| async move {
            if failed.load(Ordering::SeqCst) {
                return GroupEnd::NotStarted(g.name);
            }
            let result = move_one(ctx, rollout, &g, version).await;
            if result.is_err() {
                failed.store(true, Ordering::SeqCst);
            }
            GroupEnd::Ran(result)
        })
        .collect();
    let ends: Vec<GroupEnd> = futures::stream::iter(updates)
        .buffer_unordered(rollout.max_parallel.max(1) as usize)
        .collect()
        .await;
    let mut moved = Moved::default();
    for end in ends {
        match end {
            GroupEnd::Ran(Ok(s)) => moved.done.push(s),
            GroupEnd::Ran(Err(e)) => moved.failures.push(e),
            GroupEnd::NotStarted(name) => moved.not_started.push(name),
        }
    }
    moved
}

/// Starts the update with an idempotency token journaled first: a retry after a crash sends the
/// same token, and EKS answers with the same update instead of a second one.
async fn start(
    ctx: &StepCtx<'_>,
    force: bool,
    group: &NodegroupInfo,
    version: Version,
    fact: &Fact<String>,
) -> Result<String, StepError> {
    let token_fact = TOKEN.of(&group.name);
    let token = match ctx.fact(&token_fact).await {
        Some(t) => t,
        None => {
            let t = uuid::Uuid::new_v4().to_string();
            ctx.record(&token_fact, &t).await?;
            t
        }
    };
    let mut req = ctx
        .conn
        .eks
        .update_nodegroup_version()
        .cluster_name(ctx.cluster())
        .nodegroup_name(&group.name)
        .version(version.to_string())
        .client_request_token(token);
    if force {
        req = req.force(true);
    }
    let out = req
        .send()
        .await
        .map_err(|e| eks_error("UpdateNodegroupVersion", e))
        .context(|| format!("`{}`: EKS refused the update", group.name))?;
    let id = out
        .update()
        .and_then(|u| u.id())
        .unwrap_or_default()
        .to_string();
    ctx.record(fact, &id).await?;
    Ok(id)
}

async fn move_one(
    ctx: &StepCtx<'_>,
    rollout: &Rollout,
    group: &NodegroupInfo,
    version: Version,
) -> Result<String, StepError> {
    let cluster = ctx.cluster().to_string();
    // One fact per group: groups update in parallel, and each writes only its own.
    let fact = UPDATE.of(&group.name);
    let id = match ctx.fact(&fact).await {
        Some(id) => id,
        None => {
            match crate::steps::addons::adopt_or_start(ctx, &fact, UpdateOf::Nodegroup(&group.name))
                .await?
            {
                Some(id) => id,
                None => start(ctx, rollout.force, group, version, &fact).await?,
            }
        }
    };
    let started = Instant::now();
    let wait = eks::wait_update(
        &ctx.conn.eks,
        &cluster,
        &id,
        UpdateOf::Nodegroup(&group.name),
        |u| {
            ctx.progress(
                &format!(
                    "{} ({} nodes) → {version}: {} ({}s)",
                    group.name,
                    group.desired_size,
                    u.status,
                    started.elapsed().as_secs()
                ),
                None,
                None,
            );
        },
    );
    let state = tokio::time::timeout(rollout.timeout.0, wait)
        .await
        .map_err(|_| {
            StepError::InFlight(format!(
                "`{}` did not finish within {}; the update continues on AWS, and `eks-upgrade resume` re-attaches to it",
                group.name, rollout.timeout
            ))
        })??;
    if !state.succeeded() {
        return Err(StepError::Failed(format!(
            "`{}` update {} ended {}: {}",
            group.name,
            state.id,
            state.status,
            if state.errors.is_empty() {
                "no details".to_string()
            } else {
                state.errors.join("; ")
            }
        )));
    }
    // Trust, then verify: the update says Successful; EKS's node group must say the version.
    let now = eks::nodegroup(&ctx.conn.eks, &cluster, &group.name).await?;
    if now.version != Some(version) {
        return Err(StepError::Failed(format!(
            "`{}`: update {} reported success, but EKS shows the node group at {}, not {version}",
            group.name,
            state.id,
            now.version
                .map_or("no version".to_string(), |v| v.to_string())
        )));
    }
    Ok(format!("{} → {version} (update {})", group.name, state.id))
}

/// Nodes that no managed node group owns and that need something outside this step to move
/// them, by what manages them. Auto Mode nodes are not listed: EKS moves them with the control
/// plane.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unmanaged {
    /// Auto Scaling group (or "unknown") → `NODE (KUBELET)`.
    pub self_managed: BTreeMap<String, Vec<String>>,
    pub fargate: Vec<String>,
    /// Karpenter NodePool → `NODE (KUBELET)`. Absent in journals written before Karpenter nodes
    /// were told apart from self-managed ones.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub karpenter: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hybrid: Vec<String>,
}

impl Unmanaged {
    /// How many nodes are listed, of every kind (Karpenter's included, which move by drift).
    pub fn count(&self) -> usize {
        self.self_managed.values().map(Vec::len).sum::<usize>()
            + self.karpenter.values().map(Vec::len).sum::<usize>()
            + self.fargate.len()
            + self.hybrid.len()
    }
}

/// The nodes outside managed node groups (and Auto Mode) whose kubelet version `wanted` picks.
/// A node that reports no kubelet version is not picked: no message about its version could be
/// true, and the Fargate restart that uses this list must not delete pods on a guess.
pub async fn unmanaged_nodes(
    kube: kube::Client,
    wanted: impl Fn(Version) -> bool,
) -> Result<Unmanaged, kube::Error> {
    let mut out = Unmanaged::default();
    for node in nodes::inventory(kube).await? {
        if !node.version.is_some_and(&wanted) {
            continue;
        }
        let shown = node.with_kubelet();
        match node.manager {
            Manager::Nodegroup(_) | Manager::AutoMode(_) => {}
            Manager::Fargate => out.fargate.push(node.name),
            Manager::Hybrid => out.hybrid.push(shown),
            Manager::Karpenter(pool) => out.karpenter.entry(pool).or_default().push(shown),
            Manager::SelfManaged(group) => out
                .self_managed
                .entry(group.unwrap_or_else(|| "unknown".into()))
                .or_default()
                .push(shown),
        }
    }
    Ok(out)
}
