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
pub mod weights;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use self::analysis::{Assessment, Counts, Looker};
use self::weights::{Intent, Next, Split};
use super::blue_green::{GreenTarget, Traffic};
use super::green::{self, RECORD_TYPE, WeightPoint};
use super::kind::{BuildCx, Kind, Placement, PlanCx, Role, TimeScale};
use super::{Context, StepCtx, StepError, StepResult};
use crate::cloud::connect::Connection;
use crate::cloud::eks::EksError;
use crate::cloud::route53::{self, Route53Error, Weighted};
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

/// The error-rate window is wall-clock time in a faster sandbox too.
pub fn scale_gate(traffic: &mut Traffic, scale: &TimeScale) {
    if let Some(gate) = &mut traffic.error_rate {
        scale.apply(&mut gate.window, 1000);
    }
}

/// The gate as a plan shows it.
pub fn gate_text(traffic: &Traffic) -> String {
    match &traffic.error_rate {
        Some(g) => format!("green 5xx ≤ {}", analysis::percent(g.max)),
        None => "judged by green's health alone".into(),
    }
}

/// Blue's and green's weights among the sets read.
pub fn split_of(sets: &[Weighted], traffic: &Traffic) -> Split {
    let weight = |id: &str| {
        sets.iter()
            .find(|s| s.set_identifier == id)
            .map(|s| s.weight)
    };
    Split {
        blue: weight(&traffic.blue_set),
        green: weight(&traffic.green_set),
    }
}

/// Reads the record's weighted sets: the zone id and the sets.
pub async fn read_sets(
    conn: &Connection,
    traffic: &Traffic,
) -> Result<(String, Vec<Weighted>), Route53Error> {
    let zone = route53::zone_id(&conn.route53, &traffic.zone).await?;
    let sets = route53::weighted(&conn.route53, &zone, &traffic.record, RECORD_TYPE).await?;
    Ok((zone, sets))
}

async fn plan(step: &ShiftTraffic, conn: &Connection) -> Vec<String> {
    let t = &step.traffic;
    let record = route53::fqdn(&t.record);
    let moves: Vec<String> = step
        .stages
        .iter()
        .map(|&p| Split::stage(p).short())
        .collect();
    let (now, ttl, unread) = match read_sets(conn, t).await {
        Ok((_, sets)) => {
            let s = split_of(&sets, t);
            let ttl = sets
                .iter()
                .find(|w| w.set_identifier == t.blue_set)
                .map(|w| format!(" {}s", w.ttl.max(0)))
                .unwrap_or_default();
            let blue = s.blue.map_or("no set".to_string(), |b| b.to_string());
            (
                format!("blue {blue}/green {}", s.green.unwrap_or(0)),
                ttl,
                None,
            )
        }
        Err(e) => (
            "blue ?/green ?".to_string(),
            String::new(),
            Some(format!(
                "the current weights of `{record}` cannot be read now: {}",
                crate::errors::chain(&e)
            )),
        ),
    };
    let mut lines = vec![format!(
        "dns {record}: {now} → {} (each after INSYNC + TTL{ttl}, hold {}, {})",
        moves.join(" → "),
        step.hold,
        gate_text(t)
    )];
    lines.push(match &t.green_target {
        GreenTarget::Service { namespace, name } => format!(
            "dns {record}: green's set `{}` points at the load balancer of Service `{namespace}/{name}` on green",
            t.green_set
        ),
        GreenTarget::Value(v) => {
            format!("dns {record}: green's set `{}` points at `{v}`", t.green_set)
        }
    });
    lines.extend(unread);
    lines
}

/// What green's set points at: the value written, or the load balancer hostname of the
/// Service on green, waited for (the restore has just created the Service) until `timeout`.
async fn green_value(
    green: &Connection,
    traffic: &Traffic,
    interval: Duration,
    timeout: Duration,
) -> Result<String, StepError> {
    let (namespace, name) = match &traffic.green_target {
        GreenTarget::Value(v) => return Ok(v.clone()),
        GreenTarget::Service { namespace, name } => (namespace, name),
    };
    let api: kube::Api<Service> = kube::Api::namespaced(green.kube.clone(), namespace);
    let started = Instant::now();
    loop {
        let why = match api.get_opt(name).await {
            Ok(Some(svc)) => {
                let ingress = svc
                    .status
                    .and_then(|s| s.load_balancer)
                    .and_then(|lb| lb.ingress)
                    .unwrap_or_default();
                if let Some(host) = ingress.iter().find_map(|i| i.hostname.clone()) {
                    return Ok(host);
                }
                if ingress.iter().any(|i| i.ip.is_some()) {
                    return Err(StepError::Failed(format!(
                        "Service `{namespace}/{name}` on green has a load balancer IP address but no hostname, and a CNAME needs a hostname\nhint: write green's `value` in `spec.traffic`"
                    )));
                }
                format!("Service `{namespace}/{name}` on green has no load balancer hostname yet")
            }
            Ok(None) => format!("Service `{namespace}/{name}` does not exist on green"),
            Err(e) => format!(
                "cannot read Service `{namespace}/{name}` on green: {}",
                crate::errors::kube(&e)
            ),
        };
        if started.elapsed() + interval > timeout {
            return Err(StepError::Failed(format!(
                "{why} after {}\nhint: green's set must point at green's load balancer; check that the restore brought the Service",
                HumanDuration(Duration::from_secs(started.elapsed().as_secs()))
            )));
        }
        tokio::time::sleep(interval).await;
    }
}

/// A weight change for the run fact `TRAFFIC`.
pub fn point(
    ctx: &StepCtx<'_>,
    to: Split,
    change_id: Option<String>,
    status: &str,
    why: String,
) -> WeightPoint {
    WeightPoint {
        at: crate::journal::now(),
        step: ctx.key.id.clone(),
        blue: to.blue.unwrap_or(0),
        green: to.green.unwrap_or(0),
        change_id,
        status: status.into(),
        why,
    }
}

/// Waits until change `id` is `INSYNC`. A change still pending at the timeout is in flight,
/// not failed: `resume` waits for it again.
pub async fn wait_insync(
    ctx: &StepCtx<'_>,
    id: &str,
    poll: Duration,
    timeout: Duration,
) -> Result<(), StepError> {
    ctx.progress(
        &format!("waiting for Route 53 change `{id}` to be INSYNC"),
        None,
        None,
    );
    match route53::wait_insync(&ctx.conn.route53, id, poll, timeout).await {
        Ok(()) => Ok(()),
        Err(e @ Route53Error::NotInSync { .. }) => Err(StepError::InFlight(e.to_string())),
        Err(e) => Err(e).cause(),
    }
}

/// Waits `ttl` seconds of the record's TTL: until resolvers no longer answer with what they
/// cached before the change.
pub async fn wait_ttl(ctx: &StepCtx<'_>, ttl: i64, ttl_second: Duration) {
    let wait = ttl_second.mul_f64(ttl.max(0) as f64);
    ctx.progress(
        &format!(
            "waiting the record's TTL ({}s) for cached answers to expire",
            ttl.max(0)
        ),
        None,
        None,
    );
    tokio::time::sleep(wait).await;
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
mod tests {
    use super::*;
    use crate::steps::blue_green::BlueGreen;

    fn traffic() -> Traffic {
        crate::steps::blue_green::example_traffic()
    }

    /// The step built from `yaml`, with or without `spec.traffic`, and its problems' messages.
    fn built(yaml: &str, with_traffic: bool) -> (Option<ShiftTraffic>, Vec<String>) {
        let raw: Spanned<RawShiftTraffic> =
            serde_saphyr::from_str_with_options(yaml, crate::format::parse_options())
                .expect("the options parse");
        let mut v = Validator::new(yaml);
        let velero = crate::velero::Settings {
            namespace: "velero".into(),
            storage_location: "default".into(),
        };
        let bg = BlueGreen {
            green_name: None,
            traffic: with_traffic.then(traffic),
        };
        let cx = BuildCx {
            velero: &velero,
            blue_green: Some(&bg),
            dir: std::path::Path::new("."),
        };
        let step = ShiftTrafficKind::build(&raw, &mut v, &cx);
        let problems = v.into_problems().into_iter().map(|p| p.message).collect();
        (step, problems)
    }

    #[test]
    fn defaults_are_three_stages_of_five_minutes() {
        let (step, problems) = built("{}", true);
        assert!(problems.is_empty(), "{problems:?}");
        let step = step.expect("built");
        assert_eq!(step.stages, [10, 50, 100]);
        assert_eq!(step.hold.to_string(), "5m");
        assert_eq!(step.interval.to_string(), "30s");
        assert_eq!(step.timeout.to_string(), "15m");
        assert_eq!(step.traffic, traffic());
    }

    #[test]
    fn stages_and_timeout_are_checked_where_written() {
        let (_, problems) = built("{ stages: [50, 10, 90], hold: 10m, timeout: 5m }", true);
        assert_eq!(
            problems,
            [
                "the last stage sends green `90`%, not all the traffic",
                "stage `10` does not move past `50` before it",
                "`timeout` 5m is shorter than `hold` 10m",
            ]
        );
    }

    #[test]
    fn without_spec_traffic_the_step_is_refused() {
        let (step, problems) = built("{ stages: [100] }", false);
        assert!(step.is_none());
        assert_eq!(
            problems,
            ["`shiftTraffic` moves DNS weights, but the workflow has no `spec.traffic`"]
        );
    }

    #[test]
    fn a_faster_clock_shortens_the_waits_and_the_ttl() {
        let (step, _) = built("{ hold: 10m, interval: 1m }", true);
        let mut step = step.expect("built");
        ShiftTrafficKind::scale_time(&mut step, &TimeScale::new(600.0).expect("a scale"));
        assert_eq!(step.hold.0, Duration::from_secs(1));
        assert_eq!(step.interval.0, Duration::from_millis(100));
        // A 60 s TTL lasts a tenth of a second.
        assert_eq!((step.ttl_second.0 * 60).as_millis(), 100);
    }
}
