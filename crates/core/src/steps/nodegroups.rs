//! `upgradeNodegroups`: UpdateNodegroupVersion for managed node groups, a bounded number at a
//! time, each waited on; after a failure no further group is started. Failures carry EKS's
//! error codes with the resources it names (PodEvictionFailure with the pods,
//! NodeCreationFailure with the instances). Nodes outside managed node groups — self-managed
//! groups and Fargate — are reported as needing manual action rather than silently skipped.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::control_plane::PER_HOP;
use super::kind::{BuildCx, Kind, Placement, PlanCx, Role, TimeScale};
use super::{StepCtx, StepError, StepResult};
use crate::cloud::eks::{self, EksError, NodegroupInfo, UpdateOf};
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::DurationText;
use crate::journal::Fact;
use crate::types::{HumanDuration, Version};

/// The update of one node group (`update:GROUP`).
pub const UPDATE: Fact<String> = Fact::new("update");
/// The idempotency token of that update (`token:GROUP`).
pub const TOKEN: Fact<String> = Fact::new("token");
/// Nodes outside managed node groups, which need a person.
pub const UNMANAGED: Fact<Unmanaged> = Fact::new("unmanaged");
/// `GROUP → VERSION` for the groups a failed step had already moved.
pub const UPGRADED: Fact<Vec<String>> = Fact::new("upgraded");

/// How long to wait for each node group unless the step says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(90 * 60);

/// Options for the node-group upgrade.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawUpgradeNodegroups {
    /// Managed node groups to upgrade. Default: all.
    pub nodegroups: Option<Vec<Spanned<String>>>,
    /// How many node groups to upgrade at once. Default: `1`.
    pub max_parallel: Option<Spanned<u32>>,
    /// Replace nodes even when pod disruption budgets block draining. Default: `false`.
    pub force: Option<bool>,
    /// How long to wait for each node group. Default: `90m`.
    pub timeout: Option<Spanned<DurationText>>,
}

/// A validated `upgradeNodegroups` step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeNodegroups {
    pub nodegroups: Option<Vec<String>>,
    pub max_parallel: u32,
    pub force: bool,
    pub timeout: HumanDuration,
}

pub struct UpgradeNodegroupsKind;

impl Kind for UpgradeNodegroupsKind {
    type Raw = RawUpgradeNodegroups;
    type Model = UpgradeNodegroups;

    const DOC: &'static str = "Upgrades managed node groups to the hop's version.";
    const TITLE: &'static str = "Upgrade node groups";
    const PLACEMENT: Placement = PER_HOP;
    const MUTATES: bool = true;
    const ROLES: &'static [Role] = &[Role::UpgradesNodes];
    const EXAMPLE: &'static str = "{ maxParallel: 1 }";

    fn build(
        raw: &Spanned<RawUpgradeNodegroups>,
        v: &mut Validator<'_>,
        _: &BuildCx<'_>,
    ) -> Option<UpgradeNodegroups> {
        let n = &raw.value;
        if let Some(mp) = n.max_parallel.as_ref().filter(|m| m.value == 0) {
            v.problem(
                mp.loc,
                "`maxParallel` must be at least 1",
                "zero",
                "use `maxParallel: 1` to upgrade one node group at a time",
            );
        }
        Some(UpgradeNodegroups {
            nodegroups: n
                .nodegroups
                .as_ref()
                .map(|l| l.iter().map(|g| g.value.clone()).collect()),
            max_parallel: n.max_parallel.as_ref().map_or(1, |m| m.value.max(1)),
            force: n.force.unwrap_or(false),
            timeout: v.positive("timeout", n.timeout.as_ref(), DEFAULT_TIMEOUT),
        })
    }

    async fn plan(step: &UpgradeNodegroups, cx: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        let hop = cx.hop.map(|h| h.to_string()).unwrap_or_default();
        let groups: Vec<String> = cx
            .projection
            .nodegroups
            .iter()
            .filter(|g| {
                step.nodegroups
                    .as_ref()
                    .is_none_or(|names| names.contains(&g.name))
            })
            .map(|g| {
                format!(
                    "UpdateNodegroupVersion {} ({} nodes) → {hop}",
                    g.name, g.desired_size
                )
            })
            .collect();
        Ok(if groups.is_empty() {
            vec!["no managed node groups".into()]
        } else {
            groups
        })
    }

    async fn run(step: &UpgradeNodegroups, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }

    fn scale_time(step: &mut UpgradeNodegroups, scale: &TimeScale) {
        scale.timeout(&mut step.timeout);
    }

    fn typical_minutes(step: &UpgradeNodegroups) -> u64 {
        20 / u64::from(step.max_parallel.max(1)) + 10
    }
}

/// Nodes the step cannot upgrade, by what manages them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unmanaged {
    /// Auto Scaling group (or "unknown") → node names with their kubelet versions.
    pub self_managed: BTreeMap<String, Vec<String>>,
    pub fargate: Vec<String>,
}

/// Finds nodes that belong to no managed node group.
pub async fn unmanaged_nodes(kube: kube::Client) -> Result<Unmanaged, kube::Error> {
    let nodes: Api<Node> = Api::all(kube);
    let mut out = Unmanaged::default();
    for node in nodes.list(&ListParams::default()).await?.items {
        let labels = node.metadata.labels.clone().unwrap_or_default();
        let name = node.metadata.name.clone().unwrap_or_default();
        let kubelet = node
            .status
            .as_ref()
            .and_then(|s| s.node_info.as_ref())
            .map(|i| i.kubelet_version.clone())
            .unwrap_or_default();
        if labels
            .get("eks.amazonaws.com/compute-type")
            .map(String::as_str)
            == Some("fargate")
        {
            out.fargate.push(name);
        } else if !labels.contains_key("eks.amazonaws.com/nodegroup") {
            let group = labels
                .get("aws:autoscaling:groupName")
                .or_else(|| labels.get("alpha.eksctl.io/nodegroup-name"))
                .cloned()
                .unwrap_or_else(|| "unknown".into());
            out.self_managed
                .entry(group)
                .or_default()
                .push(format!("{name} ({kubelet})"));
        }
    }
    Ok(out)
}

/// Starts the update with an idempotency token journaled first: a retry after a crash sends the
/// same token, and EKS answers with the same update instead of a second one.
async fn start(
    ctx: &StepCtx<'_>,
    step: &UpgradeNodegroups,
    group: &NodegroupInfo,
    hop: Version,
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
        .version(hop.to_string())
        .client_request_token(token);
    if step.force {
        req = req.force(true);
    }
    let out = req.send().await.map_err(|e| {
        StepError::Failed(format!(
            "`{}`: EKS refused the update: {}",
            group.name,
            crate::errors::sdk("EKS", "UpdateNodegroupVersion", &e)
        ))
    })?;
    let id = out
        .update()
        .and_then(|u| u.id())
        .unwrap_or_default()
        .to_string();
    ctx.record(fact, &id).await?;
    Ok(id)
}

/// How one group's part of the step ended.
enum GroupEnd {
    Ran(Result<String, StepError>),
    /// Not started because another group had already failed.
    NotStarted(String),
}

async fn upgrade_one(
    ctx: &StepCtx<'_>,
    step: &UpgradeNodegroups,
    group: &NodegroupInfo,
    hop: Version,
) -> Result<String, StepError> {
    let cluster = ctx.cluster().to_string();
    // One fact per group: groups update in parallel, and each writes only its own.
    let fact = UPDATE.of(&group.name);
    let id = match ctx.fact(&fact).await {
        Some(id) => id,
        None => match super::addons::adopt_or_start(ctx, &fact, UpdateOf::Nodegroup(&group.name))
            .await?
        {
            Some(id) => id,
            None => start(ctx, step, group, hop, &fact).await?,
        },
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
                    "{} ({} nodes) → {hop}: {} ({}s)",
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
    let state = tokio::time::timeout(step.timeout.0, wait)
        .await
        .map_err(|_| {
            StepError::InFlight(format!(
                "`{}` did not finish within {}; the update continues on AWS, and `eks-upgrade resume` re-attaches to it",
                group.name, step.timeout
            ))
        })?
        ?;
    if state.succeeded() {
        Ok(format!("{} → {hop}", group.name))
    } else {
        Err(StepError::Failed(format!(
            "`{}` update {} ended {}: {}",
            group.name,
            state.id,
            state.status,
            if state.errors.is_empty() {
                "no details".to_string()
            } else {
                state.errors.join("; ")
            }
        )))
    }
}

async fn run(step: &UpgradeNodegroups, ctx: &StepCtx<'_>) -> StepResult {
    let hop = ctx.hop()?;
    let cluster = ctx.cluster().to_string();
    let all = eks::nodegroups(&ctx.conn.eks, &cluster).await?;
    if let Some(names) = &step.nodegroups {
        for n in names {
            if !all.iter().any(|g| &g.name == n) {
                return Err(StepError::Failed(format!(
                    "managed node group `{n}` does not exist in `{cluster}`"
                )));
            }
        }
    }
    let todo: Vec<NodegroupInfo> = all
        .into_iter()
        .filter(|g| {
            step.nodegroups
                .as_ref()
                .is_none_or(|names| names.contains(&g.name))
        })
        .filter(|g| g.version.is_none_or(|v| v < hop))
        .collect();
    // Once a group has failed, the step fails and recovery follows, which may roll the control
    // plane back: every group started after that would only add nodes newer than the control
    // plane. Groups already updating finish; groups not yet started stay as they are.
    let failed = AtomicBool::new(false);
    let failed = &failed;
    // Owned groups in `async move` blocks: the futures borrow nothing from the iterator.
    let updates: Vec<_> = todo
        .into_iter()
        .map(|g| async move {
            if failed.load(Ordering::SeqCst) {
                return GroupEnd::NotStarted(g.name);
            }
            let result = upgrade_one(ctx, step, &g, hop).await;
            if result.is_err() {
                failed.store(true, Ordering::SeqCst);
            }
            GroupEnd::Ran(result)
        })
        .collect();
    let ends: Vec<GroupEnd> = futures::stream::iter(updates)
        .buffer_unordered(step.max_parallel.max(1) as usize)
        .collect()
        .await;
    let mut done = Vec::new();
    let mut failures = Vec::new();
    let mut not_started = Vec::new();
    for end in ends {
        match end {
            GroupEnd::Ran(Ok(s)) => done.push(s),
            GroupEnd::Ran(Err(e)) => failures.push(e),
            GroupEnd::NotStarted(name) => not_started.push(name),
        }
    }

    let unmanaged = unmanaged_nodes(ctx.conn.kube.clone())
        .await
        .unwrap_or_default();
    if unmanaged != Unmanaged::default() {
        ctx.record(&UNMANAGED, &unmanaged).await?;
        for (group, nodes) in &unmanaged.self_managed {
            ctx.warn(&format!(
                "self-managed nodes in `{group}` need a manual upgrade to {hop}: {}",
                nodes.join(", ")
            ));
        }
        if !unmanaged.fargate.is_empty() {
            ctx.warn(&format!(
                "{} Fargate nodes keep their version until their pods are restarted",
                unmanaged.fargate.len()
            ));
        }
    }
    if !failures.is_empty() {
        // What this step changed before failing stays changed through a rollback: the report
        // lists it.
        if !done.is_empty() {
            ctx.record(&UPGRADED, &done).await?;
        }
        let mut message = failures
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        if !not_started.is_empty() {
            not_started.sort();
            message.push_str(&format!(
                "; not started after the failure: {}",
                not_started.join(", ")
            ));
        }
        // Any group still updating on AWS makes the whole step in flight: recovering now would
        // race that update.
        return Err(
            if failures.iter().any(|e| matches!(e, StepError::InFlight(_))) {
                StepError::InFlight(message)
            } else {
                StepError::Failed(message)
            },
        );
    }
    let mut summary = if done.is_empty() {
        format!("every managed node group was already at {hop}")
    } else {
        format!("upgraded {}", done.join(", "))
    };
    let manual: usize =
        unmanaged.self_managed.values().map(Vec::len).sum::<usize>() + unmanaged.fargate.len();
    if manual > 0 {
        summary.push_str(&format!(
            "; {manual} nodes outside managed node groups need manual action"
        ));
    }
    Ok(summary)
}
