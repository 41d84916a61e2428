//! `rollbackNodegroups`: the first half of reversing a failed hop. EKS rolls back only the
//! control plane, and refuses to while any kubelet is newer than the version it would return to;
//! so the managed node groups the hop moved go back first, with UpdateNodegroupVersion to the
//! previous version — the same rollout, disruption-budget handling and `PodEvictionFailure` as
//! an upgrade. Nodes no managed group owns (self-managed, hybrid, Fargate) cannot be moved by
//! the tool: they are reported with what a person must do.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kind::{BuildCx, Kind, Placement, PlanCx, Role, TimeScale};
use super::nodegroups::NodegroupOptions;
use super::nodegroups::rollout::{self, Unmanaged};
use super::restore::RECOVERY;
use super::{StepCtx, StepError, StepResult};
use crate::cloud::eks::{self, EksError, NodegroupInfo};
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::DurationText;
use crate::journal::Fact;
use crate::types::Version;

/// `GROUP → VERSION` for each group moved back, in the order they finished.
pub const ROLLED_BACK: Fact<Vec<String>> = Fact::new("rolledBack");
/// Nodes newer than the rollback target that no managed node group owns.
pub const LEFT_FOR_A_PERSON: Fact<Unmanaged> = Fact::new("leftForAPerson");

/// Options for rolling managed node groups back.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRollbackNodegroups {
    /// Managed node groups to roll back. Default: every one newer than the version the control
    /// plane returns to.
    pub nodegroups: Option<Vec<Spanned<String>>>,
    /// How many node groups to roll back at once. Default: `1`.
    pub max_parallel: Option<Spanned<u32>>,
    /// Replace nodes even when pod disruption budgets block draining. Default: `false`.
    pub force: Option<bool>,
    /// How long to wait for each node group. Default: `90m`.
    pub timeout: Option<Spanned<DurationText>>,
}

/// A validated `rollbackNodegroups` step.
pub type RollbackNodegroups = NodegroupOptions;

pub struct RollbackNodegroupsKind;

impl Kind for RollbackNodegroupsKind {
    type Raw = RawRollbackNodegroups;
    type Model = RollbackNodegroups;

    const DOC: &'static str = "Rolls managed node groups back to the version before the failed hop: EKS rolls back the\ncontrol plane only once no kubelet is newer than it. Put it before `rollbackControlPlane`.";
    const TITLE: &'static str = "Roll back node groups";
    const PLACEMENT: Placement = RECOVERY;
    const MUTATES: bool = true;
    const ROLES: &'static [Role] = &[Role::RollsBackNodes];
    const EXAMPLE: &'static str = "{ maxParallel: 1 }";

    fn build(
        raw: &Spanned<RawRollbackNodegroups>,
        v: &mut Validator<'_>,
        _: &BuildCx<'_>,
    ) -> Option<RollbackNodegroups> {
        let n = &raw.value;
        Some(NodegroupOptions::build(
            n.nodegroups.as_ref(),
            n.max_parallel.as_ref(),
            n.force,
            n.timeout.as_ref(),
            v,
            "roll back",
        ))
    }

    async fn plan(step: &RollbackNodegroups, cx: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        let groups: Vec<&str> = cx
            .projection
            .nodegroups
            .iter()
            .filter(|g| step.selects(&g.name))
            .map(|g| g.name.as_str())
            .collect();
        Ok(vec![if groups.is_empty() {
            "if an upgrade step fails: no managed node groups to roll back".to_string()
        } else {
            format!(
                "if an upgrade step fails: UpdateNodegroupVersion back to the version before the failed hop for {} (those the hop moved)",
                groups.join(", ")
            )
        }])
    }

    async fn run(step: &RollbackNodegroups, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }

    fn scale_time(step: &mut RollbackNodegroups, scale: &TimeScale) {
        scale.timeout(&mut step.timeout);
    }
}

async fn run(step: &RollbackNodegroups, ctx: &StepCtx<'_>) -> StepResult {
    let Some(target) = ctx.version_before else {
        return Err(StepError::Failed(
            "no version to roll back to is known for this run".into(),
        ));
    };
    let cluster = ctx.cluster().to_string();
    let all = eks::nodegroups(&ctx.conn.eks, &cluster).await?;
    let todo: Vec<NodegroupInfo> = step
        .chosen(all, &cluster)?
        .into_iter()
        .filter(|g| g.version.is_some_and(|v| v > target))
        .collect();
    let moved = rollout::move_groups(ctx, todo, target, &step.rollout()).await;
    if !moved.done.is_empty() {
        ctx.record(&ROLLED_BACK, &moved.done).await?;
    }
    let left = rollout::unmanaged_nodes(ctx.conn.kube.clone(), |v| v > target)
        .await
        .unwrap_or_default();
    if left != Unmanaged::default() {
        ctx.record(&LEFT_FOR_A_PERSON, &left).await?;
        for line in what_a_person_must_do(&left, target) {
            ctx.warn(&line);
        }
    }
    if let Some(error) = moved.error() {
        return Err(error);
    }
    let mut summary = if moved.done.is_empty() {
        format!("no managed node group is newer than {target}")
    } else {
        format!("rolled back {}", moved.done.join(", "))
    };
    if left.count() > 0 {
        summary.push_str(&format!(
            "; {} nodes newer than {target} outside managed node groups need a person",
            left.count()
        ));
    }
    Ok(summary)
}

/// One line per kind of node the tool cannot move back.
pub fn what_a_person_must_do(left: &Unmanaged, target: Version) -> Vec<String> {
    let mut out = Vec::new();
    for (group, nodes) in &left.self_managed {
        out.push(format!(
            "self-managed nodes in `{group}` run a kubelet newer than {target}: {}; replace them with nodes at {target} (their AMI or nodeadm) before the control plane can roll back",
            nodes.join(", ")
        ));
    }
    for (pool, nodes) in &left.karpenter {
        out.push(format!(
            "Karpenter NodePool `{pool}` runs a kubelet newer than {target} on {}; point its EC2NodeClass at an AMI for {target} (`amiSelectorTerms` with that AMI's `id`), wait for Karpenter to replace the nodes, then run `eks-upgrade resume`",
            nodes.join(", ")
        ));
    }
    if !left.hybrid.is_empty() {
        out.push(format!(
            "hybrid nodes run a kubelet newer than {target}: {}; reinstall them at {target} with nodeadm before the control plane can roll back",
            left.hybrid.join(", ")
        ));
    }
    if !left.fargate.is_empty() {
        out.push(format!(
            "{} Fargate nodes run a kubelet newer than {target}, and Fargate cannot be rolled back: EKS refuses the control-plane rollback while their pods run; set `fargatePods: restart` on `rollbackControlPlane` to roll back anyway and restart those pods at {target} afterwards",
            left.fargate.len()
        ));
    }
    out
}
