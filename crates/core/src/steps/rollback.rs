//! `rollbackControlPlane`: moves the control plane back to the version before the failed hop,
//! where EKS allows it (within 7 days of the upgrade, not after an automatic one). When EKS
//! refuses, the step says why and records it, and recovery goes on: the report lists it among
//! what could not be rolled back.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::control_plane::{self, UPDATE_ID, VersionChange, change_version};
use super::kind::{BuildCx, Kind, Placement, PlanCx, TimeScale};
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
}

/// A validated `rollbackControlPlane` step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackControlPlane {
    pub timeout: HumanDuration,
    pub force: bool,
    pub rollback_timeout_minutes: Option<u32>,
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
    if info.version == before && recorded.is_none() {
        let result = RollbackResult {
            rolled_back: false,
            from: info.version.to_string(),
            to: before.to_string(),
            reason: "the control plane never left this version".into(),
        };
        ctx.record(&ROLLBACK, &result).await?;
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
    let change = VersionChange {
        version: before,
        force: step.force,
        rollback_timeout_minutes: step.rollback_timeout_minutes,
        timeout: step.timeout.0,
    };
    match change_version(ctx, &change).await {
        Ok(state) if state.succeeded() => {
            let result = RollbackResult {
                rolled_back: true,
                from: info.version.to_string(),
                to: before.to_string(),
                reason: format!("update {}", state.id),
            };
            ctx.record(&ROLLBACK, &result).await?;
            Ok(format!(
                "control plane rolled back {} → {before} (update {})",
                info.version, state.id
            ))
        }
        Ok(state) => Err(StepError::Failed(format!(
            "the rollback update {} ended {}: {}",
            state.id,
            state.status,
            state.errors.join("; ")
        ))),
        Err(StepError::Refused { message, .. }) => {
            let result = RollbackResult {
                rolled_back: false,
                from: info.version.to_string(),
                to: before.to_string(),
                reason: message.clone(),
            };
            ctx.record(&ROLLBACK, &result).await?;
            ctx.warn(&format!(
                "the control plane stays at {}: {message}",
                info.version
            ));
            Ok(format!(
                "EKS does not allow rolling back {} → {before}: {message}",
                info.version
            ))
        }
        Err(e) => Err(e),
    }
}
