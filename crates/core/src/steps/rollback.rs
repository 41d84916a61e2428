//! `rollbackControlPlane`: moves the control plane back to the version before the failed hop,
//! the last part of reversing it — after `rollbackNodegroups` and `rollbackAddons`, as EKS
//! requires. It first reads EKS's rollback-readiness insights (refreshed) and shows each ERROR
//! and WARNING; while any is ERROR the rollback would be refused, so the step fails with them
//! instead of forcing, unless the workflow says `force`. Fargate pods, which cannot be moved
//! back, may be restarted after the rollback on an explicit opt-in. On Auto Mode clusters the
//! one rollback call also moves the Auto Mode nodes, first. When EKS refuses anyway (past 7
//! days, after an automatic upgrade), the step fails: the hop could not be reversed, and a
//! person decides what comes next.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::control_plane::{self, UPDATE_ID, VersionChange, change_version};
use super::kind::{BuildCx, Kind, Placement, PlanCx, Role, TimeScale};
use super::readiness;
use super::restore::RECOVERY;
use super::{Context, StepCtx, StepError, StepResult};
use crate::cloud::connect::describe_cluster;
use crate::cloud::eks::EksError;
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::DurationText;
use crate::journal::Fact;
use crate::types::HumanDuration;

/// What became of the control plane: the report's account of the rollback.
pub const ROLLBACK: Fact<RollbackResult> = Fact::new("rollback");

/// What the report needs to say about the control plane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackResult {
    pub rolled_back: bool,
    pub from: String,
    pub to: String,
    pub reason: String,
}

/// EKS rollback options.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRollbackConfig {
    /// How long EKS may take to roll back, in minutes (120 to 10080). Default: EKS's own (720).
    pub timeout_minutes: Option<Spanned<u32>>,
}

/// What to do about Fargate pods newer than the version the control plane returns to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FargatePods {
    /// Report them; EKS refuses the rollback while they run (default).
    Report,
    /// Roll back with `force` when they are all that blocks it, then delete them so that they
    /// start again at the older version.
    Restart,
}

/// Options for the control-plane rollback.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRollbackControlPlane {
    /// How long to wait for the rollback. Default: `60m`.
    pub timeout: Option<Spanned<DurationText>>,
    /// Roll back even when EKS rollback-readiness checks object. Default: `false`.
    pub force: Option<bool>,
    /// Passed to EKS as `rollbackConfig`.
    pub rollback_config: Option<Spanned<RawRollbackConfig>>,
    /// `report` (default) or `restart`: Fargate pods cannot be rolled back; with `restart`
    /// they are deleted after the rollback and come back at the older version.
    pub fargate_pods: Option<FargatePods>,
}

/// A validated `rollbackControlPlane` step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackControlPlane {
    pub timeout: HumanDuration,
    pub force: bool,
    pub rollback_timeout_minutes: Option<u32>,
    pub fargate_pods: FargatePods,
}

pub struct RollbackControlPlaneKind;

impl Kind for RollbackControlPlaneKind {
    type Raw = RawRollbackControlPlane;
    type Model = RollbackControlPlane;

    const DOC: &'static str =
        "Rolls the control plane back one minor version, where EKS allows it.";
    const TITLE: &'static str = "Roll back control plane";
    const PLACEMENT: Placement = RECOVERY;
    const MUTATES: bool = true;
    const ROLES: &'static [Role] = &[Role::RollsBackControlPlane];
    const EXAMPLE: &'static str = "{}";

    fn build(
        raw: &Spanned<RawRollbackControlPlane>,
        v: &mut Validator<'_>,
        _: &BuildCx<'_>,
    ) -> Option<RollbackControlPlane> {
        let r = &raw.value;
        let minutes = r
            .rollback_config
            .as_ref()
            .and_then(|c| c.value.timeout_minutes.as_ref());
        if let Some(m) = minutes.filter(|m| !(120..=10080).contains(&m.value)) {
            v.problem(
                m.loc,
                format!("`timeoutMinutes` is {}, outside what EKS accepts", m.value),
                "not 120–10080",
                "EKS accepts 120 (2 hours) to 10080 (7 days); leave it out for EKS's default of 720",
            );
        }
        Some(RollbackControlPlane {
            timeout: v.positive(
                "timeout",
                r.timeout.as_ref(),
                control_plane::DEFAULT_TIMEOUT,
            ),
            force: r.force.unwrap_or(false),
            rollback_timeout_minutes: minutes.map(|m| m.value),
            fargate_pods: r.fargate_pods.unwrap_or(FargatePods::Report),
        })
    }

    async fn plan(_: &RollbackControlPlane, _: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        Ok(vec![
            "if an upgrade step fails: rolls the control plane back one minor version, where EKS allows it".into(),
        ])
    }

    async fn run(step: &RollbackControlPlane, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }

    fn scale_time(step: &mut RollbackControlPlane, scale: &TimeScale) {
        scale.timeout(&mut step.timeout);
    }
}

async fn run(step: &RollbackControlPlane, ctx: &StepCtx<'_>) -> StepResult {
    let Some(before) = ctx.version_before else {
        return Err(StepError::Failed(
            "no version to roll back to is known for this run".into(),
        ));
    };
    let info = describe_cluster(&ctx.conn.eks, ctx.cluster(), &ctx.conn.cluster.region)
        .await
        .cause()?;
    let recorded = ctx.fact(&UPDATE_ID).await;
    let refused = |reason: String| RollbackResult {
        rolled_back: false,
        from: info.version.to_string(),
        to: before.to_string(),
        reason,
    };
    if info.version == before && recorded.is_none() {
        ctx.record(
            &ROLLBACK,
            &refused("the control plane never left this version".into()),
        )
        .await?;
        return Ok(format!(
            "control plane still at {before}: nothing to roll back"
        ));
    }
    if recorded.is_none() && info.version.prev_minor() != Some(before) {
        return Err(StepError::Failed(format!(
            "the control plane is at {}; EKS can roll back only one minor version, not to {before}",
            info.version
        )));
    }
    // Before asking: what EKS would say. A rollback already asked for (a resumed step) is
    // waited on, not asked again.
    let mut force = step.force;
    let mut restart_fargate = false;
    if recorded.is_none() {
        let readiness = readiness::read(ctx).await?;
        let errors = readiness.errors();
        if !errors.is_empty() && !force {
            match readiness.only_fargate_pods() {
                Some(pods) if step.fargate_pods == FargatePods::Restart => {
                    ctx.warn(&format!(
                        "rolling back with `force`: only Fargate pods newer than {before} block it ({}), and `fargatePods: restart` starts them again at {before} afterwards",
                        pods.join(", ")
                    ));
                    force = true;
                    restart_fargate = true;
                }
                _ => {
                    let why: Vec<String> = errors.iter().map(|i| readiness::describe(i)).collect();
                    let message = format!(
                        "EKS would refuse to roll the control plane back {} → {before}, and the workflow does not force it: {}",
                        info.version,
                        why.join("; ")
                    );
                    ctx.record(&ROLLBACK, &refused(message.clone())).await?;
                    return Err(StepError::Failed(message));
                }
            }
        }
    }
    let change = VersionChange {
        version: before,
        force,
        rollback_timeout_minutes: step.rollback_timeout_minutes,
        timeout: step.timeout.0,
    };
    match change_version(ctx, &change).await {
        Ok(state) if state.succeeded() => {
            // Trust, then verify: EKS's cluster must now report the version.
            let now = describe_cluster(&ctx.conn.eks, ctx.cluster(), &ctx.conn.cluster.region)
                .await
                .cause()?;
            if now.version != before {
                return Err(StepError::Failed(format!(
                    "the rollback update {} reported success, but EKS shows the control plane at {}, not {before}",
                    state.id, now.version
                )));
            }
            let result = RollbackResult {
                rolled_back: true,
                from: info.version.to_string(),
                to: before.to_string(),
                reason: format!("update {}", state.id),
            };
            ctx.record(&ROLLBACK, &result).await?;
            let mut summary = format!(
                "control plane rolled back {} → {before} (update {})",
                info.version, state.id
            );
            if restart_fargate || step.fargate_pods == FargatePods::Restart {
                let pods = readiness::restart_fargate_pods(ctx, before).await?;
                if !pods.is_empty() {
                    summary.push_str(&format!(
                        "; restarted {} Fargate pods at {before}",
                        pods.len()
                    ));
                }
            }
            Ok(summary)
        }
        Ok(state) => {
            let message = format!(
                "the rollback update {} ended {}: {}",
                state.id,
                state.status,
                state.errors.join("; ")
            );
            ctx.record(&ROLLBACK, &refused(message.clone())).await?;
            Err(StepError::Failed(message))
        }
        Err(StepError::Refused { message, .. }) => {
            ctx.record(&ROLLBACK, &refused(message.clone())).await?;
            Err(StepError::Failed(format!(
                "EKS does not allow rolling back {} → {before}: {message}",
                info.version
            )))
        }
        Err(e) => Err(e),
    }
}
