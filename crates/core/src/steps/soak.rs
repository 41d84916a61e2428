//! `soak`: lets a hop bake before it goes further — the control plane and add-ons run at the new
//! version while the nodes stay on the old one, so a failure found now needs only the
//! control-plane rollback (EKS's best-practice shape, and GKE's two-step upgrade). The soak
//! counts from when it first started, across resumes. An unattended run whose maintenance window
//! closes before the soak ends pauses, resumable; the next run inside a window continues once the
//! soak has passed. A person at a terminal sees a countdown and may go on early.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kind::{BuildCx, Kind, Placement, PlanCx, TimeScale};
use super::{StepCtx, StepError, StepResult};
use crate::cloud::eks::EksError;
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::DurationText;
use crate::journal::Fact;
use crate::types::{HumanDuration, Phase};

/// When the soak began (RFC 3339): it counts from there across resumes.
pub const STARTED_AT: Fact<String> = Fact::new("soakStartedAt");
/// Set when a person chose to go on before the soak ended.
pub const CUT_SHORT: Fact<String> = Fact::new("soakCutShort");

/// Options for a soak.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSoak {
    /// How long to wait, such as `30m` or `24h`.
    pub duration: Spanned<DurationText>,
}

/// A validated `soak` step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Soak {
    pub duration: HumanDuration,
}

pub struct SoakKind;

impl Kind for SoakKind {
    type Raw = RawSoak;
    type Model = Soak;

    const DOC: &'static str = "Waits before the hop goes on, so that the new control plane and add-ons bake while the\nnodes still run the old version. Put it before the node groups: a failure found by then needs\nonly the control-plane rollback.";
    const TITLE: &'static str = "Soak";
    const PLACEMENT: Placement = Placement {
        sections: &[Phase::Upgrade, Phase::Finish],
        why: "a soak lets an upgrade bake; recovery must not wait, and nothing has changed before the upgrade",
    };
    const MUTATES: bool = false;
    const EXAMPLE: &'static str = "{ duration: 30m }";

    fn build(raw: &Spanned<RawSoak>, v: &mut Validator<'_>, _: &BuildCx<'_>) -> Option<Soak> {
        Some(Soak {
            duration: v.positive(
                "duration",
                Some(&raw.value.duration),
                Duration::from_secs(1800),
            ),
        })
    }

    async fn plan(step: &Soak, _: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        Ok(vec![format!(
            "waits {} before going on; an unattended run whose window closes first pauses and resumes in the next window",
            step.duration
        )])
    }

    async fn run(step: &Soak, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }

    fn scale_time(step: &mut Soak, scale: &TimeScale) {
        scale.apply(&mut step.duration, 0);
    }

    // Not counted against the window: a soak may outlast it by design, pausing the run and
    // continuing in a later window.
}

async fn run(step: &Soak, ctx: &StepCtx<'_>) -> StepResult {
    let started = match ctx
        .fact(&STARTED_AT)
        .await
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
    {
        Some(t) => t.with_timezone(&Utc),
        None => {
            let now = Utc::now();
            ctx.record(&STARTED_AT, &now.to_rfc3339()).await?;
            now
        }
    };
    let soaked = (Utc::now() - started).to_std().unwrap_or_default();
    let Some(left) = step.duration.0.checked_sub(soaked).filter(|d| !d.is_zero()) else {
        return Ok(format!("soaked {}", step.duration));
    };
    if let Some(window) = ctx.window_left
        && window < left
    {
        return Err(StepError::Paused(format!(
            "the soak has {} left and the maintenance window closes in {}; the next run in the window continues once it has passed",
            HumanDuration(round(left)),
            HumanDuration(round(window))
        )));
    }
    if ctx.reporter.interactive()
        && ctx
            .reporter
            .confirm(&format!(
                "The soak has {} left. Go on now instead?",
                HumanDuration(round(left))
            ))
            .unwrap_or(false)
    {
        ctx.record(&CUT_SHORT, &Utc::now().to_rfc3339()).await?;
        return Ok(format!(
            "cut short by a person after {} of {}",
            HumanDuration(round(soaked)),
            step.duration
        ));
    }
    let until = Instant::now() + left;
    loop {
        let now = Instant::now();
        if now >= until {
            break;
        }
        let remaining = until - now;
        ctx.progress(
            &format!("soaking: {} left", HumanDuration(round(remaining))),
            None,
            None,
        );
        tokio::time::sleep(remaining.min(Duration::from_secs(1))).await;
    }
    Ok(format!("soaked {}", step.duration))
}

/// Whole seconds, for messages.
fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs().max(1))
}
