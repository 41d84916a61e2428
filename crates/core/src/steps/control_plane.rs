//! `upgradeControlPlane`: UpdateClusterVersion to the hop's version, then DescribeUpdate with
//! backoff until it finishes. Resumes by re-attaching to the recorded update; adopts an update
//! to the same version already in progress; retries while another update holds the cluster.

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kind::{BuildCx, Kind, Placement, PlanCx, Role, TimeScale};
use super::{Context, StepCtx, StepError, StepResult};
use crate::cloud::connect::describe_cluster;
use crate::cloud::eks::{self, EksError, UpdateOf, UpdateState, eks_error};
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::DurationText;
use crate::journal::Fact;
use crate::types::{HumanDuration, Phase, Version};

/// The EKS update that moves the control plane, journaled as soon as EKS returns it.
pub const UPDATE_ID: Fact<String> = Fact::new("updateId");
/// The idempotency token sent with UpdateClusterVersion, journaled before the call.
pub const CLIENT_REQUEST_TOKEN: Fact<String> = Fact::new("clientRequestToken");
/// How the update ended.
pub const UPDATE: Fact<UpdateState> = Fact::new("update");

/// How long to wait for EKS unless the step says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// Where upgrade steps may appear: each runs once per hop.
pub const PER_HOP: Placement = Placement {
    sections: &[Phase::Upgrade],
    why: "upgrade steps run once per hop, in `upgrade`",
};

/// Options for the control-plane upgrade.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawUpgradeControlPlane {
    /// How long to wait for EKS. Default: `60m`.
    pub timeout: Option<Spanned<DurationText>>,
    /// Upgrade even when EKS upgrade insights report blocking issues. Default: `false`.
    pub force: Option<bool>,
}

/// A validated `upgradeControlPlane` step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeControlPlane {
    pub timeout: HumanDuration,
    pub force: bool,
}

pub struct UpgradeControlPlaneKind;

impl Kind for UpgradeControlPlaneKind {
    type Raw = RawUpgradeControlPlane;
    type Model = UpgradeControlPlane;

    const DOC: &'static str = "Upgrades the control plane to the hop's version.";
    const TITLE: &'static str = "Upgrade control plane";
    const PLACEMENT: Placement = PER_HOP;
    const MUTATES: bool = true;
    const ROLES: &'static [Role] = &[Role::MovesControlPlane];
    const EXAMPLE: &'static str = "{ timeout: 60m }";

    fn build(
        raw: &Spanned<RawUpgradeControlPlane>,
        v: &mut Validator<'_>,
        _: &BuildCx<'_>,
    ) -> Option<UpgradeControlPlane> {
        Some(UpgradeControlPlane {
            timeout: v.positive("timeout", raw.value.timeout.as_ref(), DEFAULT_TIMEOUT),
            force: raw.value.force.unwrap_or(false),
        })
    }

    async fn plan(
        step: &UpgradeControlPlane,
        cx: &mut PlanCx<'_>,
    ) -> Result<Vec<String>, EksError> {
        Ok(vec![format!(
            "UpdateClusterVersion {} → {}{}",
            cx.before,
            cx.hop.map(|h| h.to_string()).unwrap_or_default(),
            if step.force { " (force)" } else { "" }
        )])
    }

    async fn run(step: &UpgradeControlPlane, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }

    fn scale_time(step: &mut UpgradeControlPlane, scale: &TimeScale) {
        scale.timeout(&mut step.timeout);
    }

    fn typical_minutes(_: &UpgradeControlPlane) -> u64 {
        15
    }
}

/// Why an UpdateClusterVersion call was refused, as far as the caller cares: EKS's own words,
/// and its error.
pub enum Refusal {
    /// 409: another update is in progress; retry later.
    Busy(String, EksError),
    /// InvalidState: readiness checks (upgrade or rollback insights) block it; `force` overrides.
    Blocked(String, EksError),
    /// Anything else: the request itself is not allowed.
    Refused(String, EksError),
}

/// Options of a version change: an upgrade or a rollback.
pub struct VersionChange {
    pub version: Version,
    pub force: bool,
    pub rollback_timeout_minutes: Option<u32>,
    pub timeout: Duration,
}

/// Starts (or re-attaches to) the update that moves the control plane to `change.version`, and
/// waits for it. The update id and the idempotency token are journaled first, so a crash at any
/// point never produces a second update.
pub async fn change_version(
    ctx: &StepCtx<'_>,
    change: &VersionChange,
) -> Result<UpdateState, StepError> {
    let cluster = ctx.cluster().to_string();
    let started = Instant::now();
    let update_id = match ctx.fact(&UPDATE_ID).await {
        Some(id) => id,
        None => {
            let adopted = eks::in_progress_updates(&ctx.conn.eks, &cluster, UpdateOf::Cluster)
                .await?
                .into_iter()
                .find(|u| u.version.as_deref() == Some(change.version.to_string().as_str()));
            match adopted {
                Some(u) => {
                    ctx.progress(
                        &format!("adopting update {} already in progress", u.id),
                        None,
                        None,
                    );
                    ctx.record(&UPDATE_ID, &u.id).await?;
                    u.id
                }
                None => start_update(ctx, &cluster, change, started).await?,
            }
        }
    };
    let deadline = change.timeout.saturating_sub(started.elapsed());
    let wait = eks::wait_update(
        &ctx.conn.eks,
        &cluster,
        &update_id,
        UpdateOf::Cluster,
        |u| {
            ctx.progress(
                &format!(
                    "EKS update {}: {} ({}s)",
                    u.id,
                    u.status,
                    started.elapsed().as_secs()
                ),
                None,
                None,
            );
        },
    );
    let state = tokio::time::timeout(deadline, wait)
        .await
        .map_err(|_| StepError::InFlight(format!("EKS update {update_id} did not finish within {}; it continues on AWS, and `eks-upgrade resume` re-attaches to it", crate::types::HumanDuration(change.timeout))))??;
    ctx.record(&UPDATE, &state).await?;
    Ok(state)
}

async fn start_update(
    ctx: &StepCtx<'_>,
    cluster: &str,
    change: &VersionChange,
    started: Instant,
) -> Result<String, StepError> {
    let token = match ctx.fact(&CLIENT_REQUEST_TOKEN).await {
        Some(t) => t,
        None => {
            let t = uuid::Uuid::new_v4().to_string();
            ctx.record(&CLIENT_REQUEST_TOKEN, &t).await?;
            t
        }
    };
    let mut delay = Duration::from_secs(2);
    loop {
        let mut req = ctx
            .conn
            .eks
            .update_cluster_version()
            .name(cluster)
            .version(change.version.to_string())
            .client_request_token(&token);
        if change.force {
            req = req.force(true);
        }
        if let Some(minutes) = change.rollback_timeout_minutes {
            req = req.rollback_config(
                aws_sdk_eks::types::RollbackConfig::builder()
                    .timeout_minutes(minutes as i32)
                    .build(),
            );
        }
        let refusal = match req.send().await {
            Ok(out) => {
                let id = out
                    .update()
                    .and_then(|u| u.id())
                    .unwrap_or_default()
                    .to_string();
                ctx.record(&UPDATE_ID, &id).await?;
                return Ok(id);
            }
            Err(e) => {
                // EKS's own sentence when it gave one; the SDK's chain of causes otherwise.
                let message = e
                    .as_service_error()
                    .and_then(|s| aws_sdk_eks::error::ProvideErrorMetadata::message(s))
                    .map(str::to_string)
                    .unwrap_or_else(|| crate::errors::sdk("EKS", "UpdateClusterVersion", &e));
                let error = eks_error("UpdateClusterVersion", e);
                if error.is("ResourceInUseException") {
                    Refusal::Busy(message, error)
                } else if error.is("InvalidStateException") {
                    Refusal::Blocked(message, error)
                } else {
                    Refusal::Refused(message, error)
                }
            }
        };
        match refusal {
            // EKS keeps replacing control-plane instances for a while after an update reports
            // Successful, and platform-version patches run on their own: both answer 409.
            Refusal::Busy(message, _) if started.elapsed() + delay < change.timeout => {
                ctx.progress(
                    &format!("EKS is busy ({message}); retrying in {}s", delay.as_secs()),
                    None,
                    None,
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(60));
            }
            Refusal::Busy(message, source) => {
                return Err(StepError::Busy {
                    message: format!(
                        "EKS stayed busy for {}: {message}",
                        crate::types::HumanDuration(change.timeout)
                    ),
                    source,
                });
            }
            Refusal::Blocked(message, source) => {
                return Err(StepError::Refused {
                    by_insights: true,
                    message: format!(
                        "EKS refused: {message} Review them with `aws eks list-insights --cluster-name {cluster}`; set `force: true` on the step to proceed anyway"
                    ),
                    source,
                });
            }
            Refusal::Refused(message, source) => {
                return Err(StepError::Refused {
                    by_insights: false,
                    message: format!(
                        "EKS refused to move the control plane to {}: {message}",
                        change.version
                    ),
                    source,
                });
            }
        }
    }
}

async fn run(step: &UpgradeControlPlane, ctx: &StepCtx<'_>) -> StepResult {
    let target = ctx.hop()?;
    let info = describe_cluster(&ctx.conn.eks, ctx.cluster(), &ctx.conn.cluster.region)
        .await
        .cause()?;
    let recorded = ctx.fact(&UPDATE_ID).await;
    if info.version == target && recorded.is_none() {
        return Ok(format!("control plane already at {target}"));
    }
    let from = info.version;
    if recorded.is_none() && from.next_minor() != target {
        return Err(StepError::Failed(format!(
            "the control plane is at {from}; this hop expects {} before moving to {target}",
            target.prev_minor().unwrap_or(target)
        )));
    }
    let state = change_version(
        ctx,
        &VersionChange {
            version: target,
            force: step.force,
            rollback_timeout_minutes: None,
            timeout: step.timeout.0,
        },
    )
    .await?;
    if state.succeeded() {
        Ok(format!(
            "control plane upgraded to {target} (update {})",
            state.id
        ))
    } else {
        Err(StepError::Failed(format!(
            "EKS update {} to {target} ended {}{}; EKS keeps the control plane on the previous version",
            state.id,
            state.status,
            if state.errors.is_empty() {
                String::new()
            } else {
                format!(": {}", state.errors.join("; "))
            }
        )))
    }
}
