//! `rollbackControlPlane`: moves the control plane back to the version before the failed hop,
//! where EKS allows it (within 7 days of the upgrade, not after an automatic one). When EKS
//! refuses, the step says why and records it, and recovery goes on: the report lists it among
//! what could not be rolled back.

use serde::{Deserialize, Serialize};

use super::control_plane::{VersionChange, change_version};
use super::{StepCtx, StepError, StepResult};
use crate::cloud::connect::describe_cluster;
use crate::workflow::model::RollbackControlPlane;

/// What the report needs to say about the control plane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackResult {
    pub rolled_back: bool,
    pub from: String,
    pub to: String,
    pub reason: String,
}

pub async fn run(step: &RollbackControlPlane, ctx: &StepCtx<'_>) -> StepResult {
    let Some(before) = ctx.version_before else {
        return Err(StepError::Failed(
            "no version to roll back to is known for this run".into(),
        ));
    };
    let info = describe_cluster(&ctx.conn.eks, ctx.cluster(), &ctx.conn.cluster.region)
        .await
        .map_err(|e| StepError::Failed(e.to_string()))?;
    let recorded = ctx.fact::<String>("updateId").await;
    if info.version == before && recorded.is_none() {
        let result = RollbackResult {
            rolled_back: false,
            from: info.version.to_string(),
            to: before.to_string(),
            reason: "the control plane never left this version".into(),
        };
        ctx.record("rollback", &result).await?;
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
            ctx.record("rollback", &result).await?;
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
        Err(StepError::Failed(message)) if message.starts_with("EKS refused") => {
            let result = RollbackResult {
                rolled_back: false,
                from: info.version.to_string(),
                to: before.to_string(),
                reason: message.clone(),
            };
            ctx.record("rollback", &result).await?;
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
