//! `upgradeNodegroups`: UpdateNodegroupVersion for managed node groups, a bounded number at a
//! time, each waited on; after a failure no further group is started. Failures carry EKS's
//! error codes with the resources it names (PodEvictionFailure with the pods,
//! NodeCreationFailure with the instances). Nodes outside managed node groups — self-managed
//! groups and Fargate — are reported as needing manual action rather than silently skipped.

mod others;
pub mod rollout;

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::control_plane::PER_HOP;
use super::kind::{BuildCx, Kind, Placement, PlanCx, Role, TimeScale};
use super::{StepCtx, StepError, StepResult};
use crate::cloud::eks::{self, EksError, NodegroupInfo};
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::DurationText;
use crate::journal::Fact;
use crate::types::{HumanDuration, Version};
pub use rollout::{Rollout, Unmanaged};

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

/// A validated `upgradeNodegroups` or `rollbackNodegroups` step: the two move node groups the
/// same way, one up to the hop and one back down.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodegroupOptions {
    pub nodegroups: Option<Vec<String>>,
    pub max_parallel: u32,
    pub force: bool,
    pub timeout: HumanDuration,
}

/// A validated `upgradeNodegroups` step.
pub type UpgradeNodegroups = NodegroupOptions;

impl NodegroupOptions {
    /// Validates the options both kinds write alike; `verb` completes the hint for
    /// `maxParallel: 0` ("upgrade", "roll back").
    pub(crate) fn build(
        nodegroups: Option<&Vec<Spanned<String>>>,
        max_parallel: Option<&Spanned<u32>>,
        force: Option<bool>,
        timeout: Option<&Spanned<DurationText>>,
        v: &mut Validator<'_>,
        verb: &str,
    ) -> Self {
        if let Some(mp) = max_parallel.filter(|m| m.value == 0) {
            v.problem(
                mp.loc,
                "`maxParallel` must be at least 1",
                "zero",
                format!("use `maxParallel: 1` to {verb} one node group at a time"),
            );
        }
        NodegroupOptions {
            nodegroups: nodegroups.map(|l| l.iter().map(|g| g.value.clone()).collect()),
            max_parallel: max_parallel.map_or(1, |m| m.value.max(1)),
            force: force.unwrap_or(false),
            timeout: v.positive("timeout", timeout, DEFAULT_TIMEOUT),
        }
    }

    /// Whether the step takes the node group `name` (all of them when it names none).
    pub fn selects(&self, name: &str) -> bool {
        self.nodegroups
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == name))
    }

    /// The groups of `all` the step takes, after checking that every group it names exists.
    pub(crate) fn chosen(
        &self,
        all: Vec<NodegroupInfo>,
        cluster: &str,
    ) -> Result<Vec<NodegroupInfo>, StepError> {
        for n in self.nodegroups.iter().flatten() {
            if !all.iter().any(|g| &g.name == n) {
                return Err(StepError::Failed(format!(
                    "managed node group `{n}` does not exist in `{cluster}`"
                )));
            }
        }
        Ok(all.into_iter().filter(|g| self.selects(&g.name)).collect())
    }

    /// How the groups move.
    pub(crate) fn rollout(&self) -> Rollout {
        Rollout {
            max_parallel: self.max_parallel,
            force: self.force,
            timeout: self.timeout,
        }
    }
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
        Some(NodegroupOptions::build(
            n.nodegroups.as_ref(),
            n.max_parallel.as_ref(),
            n.force,
            n.timeout.as_ref(),
            v,
            "upgrade",
        ))
    }

    async fn plan(step: &UpgradeNodegroups, cx: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        let hop = cx.hop.map(|h| h.to_string()).unwrap_or_default();
        let groups: Vec<String> = cx
            .projection
            .nodegroups
            .iter()
            .filter(|g| step.selects(&g.name))
            .map(|g| {
                format!(
                    "UpdateNodegroupVersion {} ({} nodes) → {hop}",
                    g.name, g.desired_size
                )
            })
            .collect();
        let mut lines = if groups.is_empty() {
            vec!["no managed node groups".into()]
        } else {
            groups
        };
        // Read once for every hop's plan, a failure included: an API server that does not
        // answer costs the plan one wait, not one per hop.
        let inventory = match &cx.projection.inventory {
            Some(read) => read.clone(),
            None => {
                let read = others::inventory(&cx.conn.kube).await;
                cx.projection.inventory = Some(read.clone());
                read
            }
        };
        match (inventory, cx.hop) {
            (Ok(found), Some(hop)) => lines.extend(others::lines(&found, hop)),
            (Err(e), _) => lines.push(format!(
                "cannot tell which other nodes the cluster has: {e}"
            )),
            _ => {}
        }
        Ok(lines)
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

async fn run(step: &UpgradeNodegroups, ctx: &StepCtx<'_>) -> StepResult {
    let hop = ctx.hop()?;
    let cluster = ctx.cluster().to_string();
    let all = eks::nodegroups(&ctx.conn.eks, &cluster).await?;
    let todo: Vec<NodegroupInfo> = step
        .chosen(all, &cluster)?
        .into_iter()
        .filter(|g| g.version.is_none_or(|v| v < hop))
        .collect();
    let moved = rollout::move_groups(ctx, todo, hop, &step.rollout()).await;

    let unmanaged = rollout::unmanaged_nodes(ctx.conn.kube.clone(), |v| v < hop)
        .await
        .unwrap_or_default();
    if unmanaged != Unmanaged::default() {
        ctx.record(&UNMANAGED, &unmanaged).await?;
        for line in behind(&unmanaged, hop) {
            ctx.warn(&line);
        }
        // Karpenter's nodes lagging now is the normal course of drift, which has only just
        // begun: said, not warned.
        for (pool, nodes) in &unmanaged.karpenter {
            ctx.log(&format!(
                "Karpenter NodePool `{pool}` has {} node{} behind {hop}: {}; Karpenter replaces them only if their EC2NodeClass selects an AMI for {hop} (such as `alias: al2023@latest`); a `convergeNodePools` step waits for that",
                nodes.len(),
                if nodes.len() == 1 { "" } else { "s" },
                nodes.join(", ")
            ));
        }
    }
    if let Some(error) = moved.error() {
        // What this step changed before failing stays changed until recovery moves it back:
        // the report lists it.
        if !moved.done.is_empty() {
            ctx.record(&UPGRADED, &moved.done).await?;
        }
        return Err(error);
    }
    let mut summary = if moved.done.is_empty() {
        format!("every managed node group was already at {hop}")
    } else {
        format!("upgraded {}", moved.done.join(", "))
    };
    let manual = unmanaged.count() - unmanaged.karpenter.values().map(Vec::len).sum::<usize>();
    if manual > 0 {
        summary.push_str(&format!(
            "; {manual} nodes outside managed node groups are still behind {hop}"
        ));
    }
    Ok(summary)
}

/// One warning per kind of node this step does not move, that is behind `hop` and that nothing
/// else moves by itself (Karpenter's are logged apart).
fn behind(unmanaged: &Unmanaged, hop: Version) -> Vec<String> {
    let mut out = Vec::new();
    for (group, nodes) in &unmanaged.self_managed {
        out.push(format!(
            "self-managed nodes in `{group}` need a manual upgrade to {hop}: {}",
            nodes.join(", ")
        ));
    }
    if !unmanaged.hybrid.is_empty() {
        out.push(format!(
            "hybrid nodes need a manual upgrade to {hop} (nodeadm): {}",
            unmanaged.hybrid.join(", ")
        ));
    }
    if !unmanaged.fargate.is_empty() {
        out.push(format!(
            "{} Fargate nodes keep their version until their pods are restarted",
            unmanaged.fargate.len()
        ));
    }
    out
}
