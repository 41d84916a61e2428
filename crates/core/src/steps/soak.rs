//! `soak`: lets a hop bake before it goes further — the control plane and add-ons run at the new
//! version while the nodes stay on the old one, so a failure found now needs only the
//! control-plane rollback (EKS's best-practice shape, and GKE's two-step upgrade). The soak
//! counts from when it first started, across resumes. An unattended run whose maintenance window
//! closes before the soak ends pauses, resumable; the next run inside a window continues once the
//! soak has passed. A person at a terminal sees a countdown and may go on early.
//!
//! In a blue/green run, `watchTraffic: true` keeps looking at green while it serves the traffic
//! during the soak — its health and error rate, as each `shiftTraffic` stage does — and fails
//! the step (and so switches back) when green fails.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::blue_green::Traffic;
use super::kind::{BuildCx, Kind, Placement, PlanCx, TimeScale};
use super::traffic::{
    self,
    analysis::{self, Assessment, Looker},
};
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
    /// In a blue/green run, look at green's health and error rate (`spec.traffic.errorRate`)
    /// every `30s` while soaking; a failing green fails the step. Default: `false`.
    pub watch_traffic: Option<Spanned<bool>>,
}

/// A validated `soak` step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Soak {
    pub duration: HumanDuration,
    /// What to watch while soaking, with `watchTraffic: true`.
    pub watch: Option<Watch>,
}

/// The traffic a soak watches, and how often.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Watch {
    pub traffic: Traffic,
    pub interval: HumanDuration,
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

    fn build(raw: &Spanned<RawSoak>, v: &mut Validator<'_>, cx: &BuildCx<'_>) -> Option<Soak> {
        let watch = match &raw.value.watch_traffic {
            Some(w) if w.value => Some(Watch {
                traffic: traffic::traffic_settings(v, cx, w.loc, "watchTraffic")?,
                interval: HumanDuration(traffic::defaults::INTERVAL),
            }),
            _ => None,
        };
        Some(Soak {
            duration: v.positive(
                "duration",
                Some(&raw.value.duration),
                Duration::from_secs(1800),
            ),
            watch,
        })
    }

    fn on_green(step: &Soak) -> bool {
        step.watch.is_some()
    }

    async fn plan(step: &Soak, _: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        let mut lines = vec![format!(
            "waits {} before going on; an unattended run whose window closes first pauses and resumes in the next window",
            step.duration
        )];
        if let Some(w) = &step.watch {
            lines.push(format!(
                "meanwhile looks at green every {} ({}); a failing green fails the step",
                w.interval,
                traffic::gate_text(&w.traffic)
            ));
        }
        Ok(lines)
    }

    async fn run(step: &Soak, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }

    fn scale_time(step: &mut Soak, scale: &TimeScale) {
        scale.apply(&mut step.duration, 0);
        if let Some(w) = &mut step.watch {
            scale.apply(&mut w.interval, 50);
            traffic::scale_gate(&mut w.traffic, scale);
        }
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
    let watching = match &step.watch {
        Some(w) => Some((
            w,
            ctx.green().await?,
            Looker::new(ctx, w.traffic.error_rate.as_ref()).await?,
        )),
        None => None,
    };
    let until = Instant::now() + left;
    let mut next_look = Instant::now();
    let (mut looks, mut unhealthy_before) = (0u32, false);
    loop {
        let now = Instant::now();
        if now >= until {
            break;
        }
        let mut tick = Duration::from_secs(1);
        if let Some((w, green, looker)) = &watching {
            if now >= next_look {
                let look = looker.look(green).await;
                looks += 1;
                let gate = w.traffic.error_rate.as_ref();
                if let Assessment::Fail(why) = analysis::assess(&look, gate, unhealthy_before) {
                    return Err(StepError::Failed(format!(
                        "while soaking, after {}: {why}",
                        HumanDuration(round(soaked + (now - (until - left))))
                    )));
                }
                unhealthy_before = !look.problems.is_empty();
                next_look = Instant::now() + w.interval.0;
            }
            tick = tick.min(next_look.saturating_duration_since(Instant::now()));
        }
        let remaining = until.saturating_duration_since(Instant::now());
        ctx.progress(
            &format!("soaking: {} left", HumanDuration(round(remaining))),
            None,
            None,
        );
        tokio::time::sleep(remaining.min(tick)).await;
    }
    if watching.is_some() {
        return Ok(format!(
            "soaked {} with green watched ({looks} looks, none failing)",
            step.duration
        ));
    }
    Ok(format!("soaked {}", step.duration))
}

/// Whole seconds, for messages.
fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs().max(1))
}
