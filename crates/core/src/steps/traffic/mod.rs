//! `shiftTraffic`: moves the requests of `spec.traffic`'s record from blue to green by the
//! weights of its two weighted sets, stage by stage (`[10, 50, 100]`: green 10 %, then half,
//! then all). Each stage is one Route 53 change batch; the stage waits until the change is
//! `INSYNC`, then the record's TTL (resolvers keep the old answer that long), then holds while
//! green serves its share, looking at green's health and error rate every `interval`. A look that
//! finds green failing fails the step, and `onFailure`'s `switchBack` puts every request back on
//! blue in one change.
//!
//! Each stage records what it is about to ask before it asks, and the change id right after, so
//! a resumed run waits for a change it sent instead of sending it again, and refuses weights it
//! did not set instead of guessing ([`weights::next`]).

pub mod analysis;
mod dns;
pub mod weights;

pub use dns::{gate_text, point, read_sets, scale_gate, split_of, wait_insync, wait_ttl};
use dns::{green_value, plan};

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use self::analysis::{Assessment, Counts, Looker};
use self::weights::{Intent, Next, Split};
use super::blue_green::Traffic;
use super::green::{self, RECORD_TYPE};
use super::kind::{BuildCx, Kind, Placement, PlanCx, Role, TimeScale};
use super::{Context, StepCtx, StepError, StepResult};
use crate::cloud::connect::Connection;
use crate::cloud::eks::EksError;
use crate::cloud::route53;
use crate::format::Validator;
use crate::format::spanned::{Loc, Spanned};
use crate::format::text::DurationText;
use crate::journal::Fact;
use crate::types::{HumanDuration, Phase};

/// What stage `i` set out to do, recorded before its change is sent.
pub const STAGE_INTENT: Fact<Intent> = Fact::new("stageIntent");
/// The Route 53 change id of stage `i`, recorded as soon as Route 53 accepted it.
pub const STAGE_CHANGE: Fact<String> = Fact::new("stageChange");
/// When stage `i`'s change was seen `INSYNC` (or found applied by a resumed run).
pub const STAGE_INSYNC: Fact<String> = Fact::new("stageInsync");
/// How stage `i`'s hold ended.
pub const STAGE_VERDICT: Fact<StageVerdict> = Fact::new("stageVerdict");

/// Defaults of the step's options.
pub mod defaults {
    use std::time::Duration;

    pub const STAGES: &[u32] = &[10, 50, 100];
    pub const HOLD: Duration = Duration::from_secs(5 * 60);
    pub const INTERVAL: Duration = Duration::from_secs(30);
    /// How often Route 53 is asked whether a change is `INSYNC`.
    pub const INSYNC_POLL: Duration = Duration::from_secs(10);
}

/// Options for moving traffic to green.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawShiftTraffic {
    /// Green's share of the requests at each stage, in percent: ascending, ending at `100`.
    /// Default: `[10, 50, 100]`.
    pub stages: Option<Spanned<Vec<Spanned<u32>>>>,
    /// How long each stage holds, green looked at every `interval`, before the next. Default:
    /// `5m`.
    pub hold: Option<Spanned<DurationText>>,
    /// Time between two looks at green's health and error rate. Default: `30s`.
    pub interval: Option<Spanned<DurationText>>,
    /// How long one stage may take: Route 53 propagating the change, and a hold extended
    /// until enough requests are counted to judge. Default: three times `hold`.
    pub timeout: Option<Spanned<DurationText>>,
}

/// A validated `shiftTraffic` step, with the workflow's `spec.traffic` it moves.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShiftTraffic {
    pub stages: Vec<u32>,
    pub hold: HumanDuration,
    pub interval: HumanDuration,
    pub timeout: HumanDuration,
    pub traffic: Traffic,
    /// How long this run waits per second of a record's TTL: a second, less in a sandbox
    /// whose clock runs faster (the TTL is read from Route 53, not from the file).
    pub ttl_second: HumanDuration,
    pub insync_poll: HumanDuration,
}

/// How a stage's hold ended, for the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageVerdict {
    pub percent: u32,
    pub passed: bool,
    /// Looks taken during the hold.
    pub looks: u32,
    pub green: Option<Counts>,
    pub blue: Option<Counts>,
    /// What decided: the failure, or what the last look saw.
    pub why: String,
}

/// `spec.traffic`, or a problem at the step's location naming what is missing.
pub fn traffic_settings(
    v: &mut Validator<'_>,
    cx: &BuildCx<'_>,
    loc: Loc,
    key: &str,
) -> Option<Traffic> {
    if let Some(t) = cx.blue_green.and_then(|b| b.traffic.as_ref()) {
        return Some(t.clone());
    }
    // `spec.traffic` as written may have been refused already: its own problems say why.
    if cx.blue_green.is_none() || !v.has_problems() {
        v.problem(
            loc,
            format!("`{key}` moves DNS weights, but the workflow has no `spec.traffic`"),
            "no record to move",
            "add `spec.traffic` with the `zone`, the `record`, and blue's and green's weighted sets",
        );
    }
    None
}

pub struct ShiftTrafficKind;

impl Kind for ShiftTrafficKind {
    type Raw = RawShiftTraffic;
    type Model = ShiftTraffic;

    const DOC: &'static str = "Moves the requests of `spec.traffic`'s record from blue to green in stages, by the weights\nof its weighted sets: after each change is INSYNC and the record's TTL has passed, it holds\nwhile green's health and error rate are watched; a failing green fails the step.";
    const TITLE: &'static str = "Shift traffic";
    const PLACEMENT: Placement = Placement {
        sections: &[Phase::Upgrade],
        why: "traffic moves to green once green is built, restored and checked",
    };
    const MUTATES: bool = true;
    const ROLES: &'static [Role] = &[Role::ShiftsTraffic];
    const EXAMPLE: &'static str = "{ stages: [10, 50, 100], hold: 5m, interval: 30s }";

    fn build(
        raw: &Spanned<RawShiftTraffic>,
        v: &mut Validator<'_>,
        cx: &BuildCx<'_>,
    ) -> Option<ShiftTraffic> {
        let r = &raw.value;
        let stages = match &r.stages {
            None => defaults::STAGES.to_vec(),
            Some(list) => {
                let values: Vec<u32> = list.value.iter().map(|s| s.value).collect();
                for p in weights::check_stages(&values) {
                    let loc = p
                        .index()
                        .and_then(|i| list.value.get(i))
                        .map_or(list.loc, |s| s.loc);
                    v.problem(loc, p.message(), "stages", p.help());
                }
                values
            }
        };
        let hold = v.positive("hold", r.hold.as_ref(), defaults::HOLD);
        let interval = v.positive("interval", r.interval.as_ref(), defaults::INTERVAL);
        let timeout = v.positive("timeout", r.timeout.as_ref(), hold.0 * 3);
        if let Some(t) = &r.timeout
            && timeout < hold
        {
            v.problem(
                t.loc,
                format!("`timeout` {timeout} is shorter than `hold` {hold}"),
                "shorter than the hold",
                "give each stage at least its hold, such as three times `hold`",
            );
        }
        let traffic = traffic_settings(v, cx, raw.loc, "shiftTraffic")?;
        Some(ShiftTraffic {
            stages,
            hold,
            interval,
            timeout,
            traffic,
            ttl_second: HumanDuration(Duration::from_secs(1)),
            insync_poll: HumanDuration(defaults::INSYNC_POLL),
        })
    }

    async fn plan(step: &ShiftTraffic, cx: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        Ok(plan(step, cx.conn).await)
    }

    async fn run(step: &ShiftTraffic, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }

    fn scale_time(step: &mut ShiftTraffic, scale: &TimeScale) {
        scale.apply(&mut step.hold, 100);
        scale.apply(&mut step.interval, 50);
        scale.timeout(&mut step.timeout);
        scale.apply(&mut step.ttl_second, 0);
        scale.apply(&mut step.insync_poll, 20);
        scale_gate(&mut step.traffic, scale);
    }

    fn typical_minutes(step: &ShiftTraffic) -> u64 {
        // Each stage: Route 53 propagation and the TTL (about two minutes), then the hold.
        step.stages.len() as u64 * (step.hold.0.as_secs() / 60 + 2)
    }
}

fn conflict(record: &str, current: Split, intent: &Intent, stage: u32) -> StepError {
    StepError::Failed(format!(
        "the weights of `{}` are {current}, but the stage to {stage}% expected {} before its change or {} after it; the run will not guess\nhint: set the weights back to {} and run `resume`, or let `onFailure` switch traffic back to blue",
        route53::fqdn(record),
        intent.from,
        intent.to,
        intent.from
    ))
}

async fn run(step: &ShiftTraffic, ctx: &StepCtx<'_>) -> StepResult {
    let t = &step.traffic;
    let green_conn = ctx.green().await?;
    let looker = Looker::new(ctx, t.error_rate.as_ref()).await?;
    let count = step.stages.len();
    let mut before: Option<Split> = None;
    let mut done = Vec::new();
    for (i, &percent) in step.stages.iter().enumerate() {
        let member = i.to_string();
        let to = Split::stage(percent);
        let why = format!("stage {} of {count}: green {percent}%", i + 1);
        if let Some(v) = ctx.fact(&STAGE_VERDICT.of(&member)).await
            && v.passed
        {
            before = Some(to);
            done.push(format!("{percent}%"));
            continue;
        }
        let (zone, sets) = read_sets(ctx.conn, t)
            .await
            .context(|| format!("cannot read the weights of `{}`", route53::fqdn(&t.record)))?;
        let current = split_of(&sets, t);
        let intent = match ctx.fact(&STAGE_INTENT.of(&member)).await {
            Some(intent) => intent,
            None => {
                // The first stage starts from the weights as read; every later one from the
                // weights the stage before it set.
                let intent = Intent {
                    from: before.unwrap_or(current),
                    to,
                };
                if !current.same(intent.from) {
                    return Err(conflict(&t.record, current, &intent, percent));
                }
                ctx.record(&STAGE_INTENT.of(&member), &intent).await?;
                intent
            }
        };
        let change = ctx.fact(&STAGE_CHANGE.of(&member)).await;
        let insync = ctx.fact(&STAGE_INSYNC.of(&member)).await.is_some();
        let blue = sets.iter().find(|s| s.set_identifier == t.blue_set);
        let ttl = blue.map_or(60, |b| b.ttl);
        match weights::next(&intent, change.as_deref(), insync, current) {
            Next::Conflict => return Err(conflict(&t.record, current, &intent, percent)),
            Next::Submit => {
                let Some(blue) = blue else {
                    return Err(StepError::Failed(format!(
                        "`{}` has no weighted {RECORD_TYPE} set `{}` for blue\nhint: make blue's record a weighted set with that `setIdentifier` (weight 100) before the run",
                        route53::fqdn(&t.record),
                        t.blue_set
                    )));
                };
                let value = green_value(green_conn, t, step.interval.0, step.timeout.0).await?;
                let desired = weights::desired(blue, &t.green_set, &value, to);
                ctx.progress(&format!("{why}: moving the weights to {to}"), None, None);
                let sent = route53::move_weights(
                    &ctx.conn.route53,
                    &zone,
                    &t.record,
                    RECORD_TYPE,
                    &sets,
                    &desired,
                    &format!("eks-upgrade run {}: {why}", ctx.run_id),
                )
                .await
                .context(|| {
                    format!(
                        "cannot move the weights of `{}` to {to}",
                        route53::fqdn(&t.record)
                    )
                })?;
                match sent {
                    Some(id) => {
                        ctx.record(&STAGE_CHANGE.of(&member), &id).await?;
                        green::record_point(
                            ctx.journal,
                            point(ctx, to, Some(id.clone()), "PENDING", why.clone()),
                        )
                        .await?;
                        insync_then_record(ctx, step, &member, &id, to, &why).await?;
                    }
                    // Nothing differed: the sets already were as asked.
                    None => applied_unrecorded(ctx, &member, to, &why).await?,
                }
            }
            Next::Wait(id) => insync_then_record(ctx, step, &member, &id, to, &why).await?,
            Next::Done { known: true } => {}
            Next::Done { known: false } => {
                ctx.log(&format!(
                    "{why}: Route 53 already has {to}, set by a change whose id was not recorded; waiting the TTL and going on"
                ));
                applied_unrecorded(ctx, &member, to, &why).await?;
            }
        }
        wait_ttl(ctx, ttl, step.ttl_second.0).await;
        let verdict = hold(step, ctx, &looker, green_conn, percent, &why).await;
        ctx.record(&STAGE_VERDICT.of(&member), &verdict).await?;
        if !verdict.passed {
            return Err(StepError::Failed(format!(
                "at green {percent}%: {}",
                verdict.why
            )));
        }
        before = Some(to);
        done.push(format!("{percent}%"));
    }
    Ok(format!(
        "traffic moved to green in {} stages ({}); `{}` now sends {}",
        count,
        done.join(" → "),
        route53::fqdn(&t.record),
        Split::stage(step.stages.last().copied().unwrap_or(100))
    ))
}

/// Waits for a change the stage sent, then records it `INSYNC`.
async fn insync_then_record(
    ctx: &StepCtx<'_>,
    step: &ShiftTraffic,
    member: &str,
    id: &str,
    to: Split,
    why: &str,
) -> Result<(), StepError> {
    wait_insync(ctx, id, step.insync_poll.0, step.timeout.0).await?;
    ctx.record(&STAGE_INSYNC.of(member), &crate::journal::now())
        .await?;
    green::record_point(
        ctx.journal,
        point(ctx, to, Some(id.to_string()), "INSYNC", why.to_string()),
    )
    .await?;
    Ok(())
}

/// Records weights found in place without a change id of this run.
async fn applied_unrecorded(
    ctx: &StepCtx<'_>,
    member: &str,
    to: Split,
    why: &str,
) -> Result<(), StepError> {
    green::record_point(
        ctx.journal,
        point(
            ctx,
            to,
            None,
            "APPLIED",
            format!("{why} (change id unknown)"),
        ),
    )
    .await?;
    ctx.record(&STAGE_INSYNC.of(member), &crate::journal::now())
        .await?;
    Ok(())
}

/// Holds a stage: looks at green every `interval` for `hold`, longer while its error rate
/// cannot be judged, up to `timeout`. Ends with the verdict; never with an error, so that the
/// verdict is recorded whatever it is.
async fn hold(
    step: &ShiftTraffic,
    ctx: &StepCtx<'_>,
    looker: &Looker<'_>,
    green_conn: &Connection,
    percent: u32,
    why: &str,
) -> StageVerdict {
    let gate = step.traffic.error_rate.as_ref();
    let started = Instant::now();
    let mut looks = 0u32;
    let mut unhealthy_before = false;
    loop {
        let look = looker.look(green_conn).await;
        looks += 1;
        let verdict = |passed: bool, why: String| StageVerdict {
            percent,
            passed,
            looks,
            green: look.green,
            blue: look.blue,
            why,
        };
        let elapsed = started.elapsed();
        match analysis::assess(&look, gate, unhealthy_before) {
            Assessment::Fail(message) => return verdict(false, message),
            Assessment::Good if elapsed >= step.hold.0 => {
                let seen = match (gate, look.green) {
                    (Some(g), Some(c)) => format!("green's error rate {}", c.describe(&g.window)),
                    _ => "green healthy".to_string(),
                };
                return verdict(true, seen);
            }
            Assessment::Good => ctx.progress(
                &format!(
                    "{why}: holding, {} left",
                    HumanDuration(Duration::from_secs(
                        (step.hold.0 - elapsed).as_secs().max(1)
                    ))
                ),
                None,
                None,
            ),
            Assessment::Unsure(reason) => {
                if elapsed + step.interval.0 > step.timeout.0 {
                    return verdict(
                        false,
                        format!(
                            "cannot judge green after {}: {reason}",
                            HumanDuration(Duration::from_secs(elapsed.as_secs()))
                        ),
                    );
                }
                ctx.progress(&format!("{why}: {reason}"), None, None);
            }
        }
        unhealthy_before = !look.problems.is_empty();
        tokio::time::sleep(step.interval.0).await;
    }
}

#[cfg(test)]
mod tests;
