//! `switchBack`: after a failure, puts every request of `spec.traffic`'s record back on blue in
//! one Route 53 change — blue's set at 100 and green's at 0 in the same batch, so there is no
//! moment with a third mix — and waits until the change is `INSYNC` and the record's TTL has
//! passed. The batch upserts both sets whatever they hold now: it must win over any weights,
//! and sending it twice does no harm. If green never had weight, nothing is sent at all.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::blue_green::Traffic;
use super::green::{self, RECORD_TYPE};
use super::kind::{BuildCx, Kind, Placement, PlanCx, Role, TimeScale};
use super::traffic::{self, weights::Split};
use super::{Context, StepCtx, StepError, StepResult};
use crate::cloud::eks::EksError;
use crate::cloud::route53::{self, Weighted};
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::DurationText;
use crate::journal::Fact;
use crate::types::{HumanDuration, Phase};

/// The Route 53 change id of the switch back, recorded as soon as Route 53 accepted it.
pub const SWITCH_CHANGE: Fact<String> = Fact::new("switchChange");

/// Defaults of the step's options.
pub mod defaults {
    use std::time::Duration;

    pub const TIMEOUT: Duration = Duration::from_secs(10 * 60);
}

/// Options for switching traffic back to blue.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSwitchBack {
    /// How long to wait for Route 53 to report the change `INSYNC`. Default: `10m`.
    pub timeout: Option<Spanned<DurationText>>,
}

/// A validated `switchBack` step, with the workflow's `spec.traffic`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SwitchBack {
    pub timeout: HumanDuration,
    pub traffic: Traffic,
    /// How long this run waits per second of the record's TTL (see `shiftTraffic`).
    pub ttl_second: HumanDuration,
    pub insync_poll: HumanDuration,
}

pub struct SwitchBackKind;

impl Kind for SwitchBackKind {
    type Raw = RawSwitchBack;
    type Model = SwitchBack;

    const DOC: &'static str = "Puts every request of `spec.traffic`'s record back on blue in one Route 53 change (blue\n100, green 0) when a step failed after traffic moved, and waits until it is INSYNC. Sends\nnothing if green never had weight.";
    const TITLE: &'static str = "Switch traffic back to blue";
    const PLACEMENT: Placement = Placement {
        sections: &[Phase::OnFailure],
        why: "switching back is how a blue/green run recovers from a failure",
    };
    const MUTATES: bool = true;
    const ROLES: &'static [Role] = &[Role::SwitchesBack];
    const EXAMPLE: &'static str = "{}";

    fn build(
        raw: &Spanned<RawSwitchBack>,
        v: &mut Validator<'_>,
        cx: &BuildCx<'_>,
    ) -> Option<SwitchBack> {
        let timeout = v.positive("timeout", raw.value.timeout.as_ref(), defaults::TIMEOUT);
        let traffic = traffic::traffic_settings(v, cx, raw.loc, "switchBack")?;
        Some(SwitchBack {
            timeout,
            traffic,
            ttl_second: HumanDuration(Duration::from_secs(1)),
            insync_poll: HumanDuration(traffic::defaults::INSYNC_POLL),
        })
    }

    async fn plan(_: &SwitchBack, _: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        Ok(vec![
            "if a step fails after traffic moved: blue 100/green 0 in one change".into(),
        ])
    }

    async fn run(step: &SwitchBack, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }

    fn scale_time(step: &mut SwitchBack, scale: &TimeScale) {
        scale.timeout(&mut step.timeout);
        scale.apply(&mut step.ttl_second, 0);
        scale.apply(&mut step.insync_poll, 20);
    }

    fn typical_minutes(_: &SwitchBack) -> u64 {
        2
    }
}

/// The batch of the switch back: blue's set at 100 and green's (when it exists) at 0, each
/// with its values and TTL as they are.
pub fn back_to_blue(sets: &[Weighted], traffic: &Traffic) -> Option<Vec<Weighted>> {
    let find = |id: &str| sets.iter().find(|s| s.set_identifier == id);
    let blue = find(&traffic.blue_set)?;
    let mut out = vec![Weighted {
        weight: 100,
        ..blue.clone()
    }];
    if let Some(green) = find(&traffic.green_set) {
        out.push(Weighted {
            weight: 0,
            ..green.clone()
        });
    }
    Some(out)
}

async fn run(step: &SwitchBack, ctx: &StepCtx<'_>) -> StepResult {
    let t = &step.traffic;
    let record = route53::fqdn(&t.record);
    let why = "switch back to blue after a failure".to_string();
    let id = match ctx.fact(&SWITCH_CHANGE).await {
        // Sent before the run stopped: only wait for it.
        Some(id) => id,
        None => {
            // One reading serves both questions: did traffic move (the journal, or Route 53
            // itself — a stage may have been sent and not recorded before a crash), and what
            // the batch back replaces. An unreadable Route 53 matters only if traffic moved.
            let read = traffic::read_sets(ctx.conn, t).await;
            let serves_green = read
                .as_ref()
                .is_ok_and(|(_, sets)| traffic::split_of(sets, t).green.unwrap_or(0) > 0);
            if !green::moved(&green::traffic(ctx.journal).await) && !serves_green {
                return Ok(
                    "no traffic had moved: DNS is as it was, nothing sent to Route 53".into(),
                );
            }
            let (zone, sets) =
                read.context(|| format!("cannot read the weights of `{record}` to switch back"))?;
            let Some(batch) = back_to_blue(&sets, t) else {
                return Err(StepError::Failed(format!(
                    "`{record}` has no weighted {RECORD_TYPE} set `{}` for blue to switch back to\nhint: a person must point `{record}` at blue again",
                    t.blue_set
                )));
            };
            ctx.progress(
                "switching every request back to blue in one change",
                None,
                None,
            );
            let id = route53::upsert_weights(
                &ctx.conn.route53,
                &zone,
                &t.record,
                RECORD_TYPE,
                &batch,
                &format!("eks-upgrade run {}: {why}", ctx.run_id),
            )
            .await
            .context(|| format!("cannot switch `{record}` back to blue"))?;
            ctx.record(&SWITCH_CHANGE, &id).await?;
            green::record_point(
                ctx.journal,
                traffic::point(
                    ctx,
                    Split::ALL_BLUE,
                    Some(id.clone()),
                    "PENDING",
                    why.clone(),
                ),
            )
            .await?;
            id
        }
    };
    traffic::wait_insync(ctx, &id, step.insync_poll.0, step.timeout.0).await?;
    green::record_point(
        ctx.journal,
        traffic::point(ctx, Split::ALL_BLUE, Some(id.clone()), "INSYNC", why),
    )
    .await?;
    let (_, sets) = traffic::read_sets(ctx.conn, t)
        .await
        .context(|| format!("cannot read the weights of `{record}` after switching back"))?;
    let ttl = sets
        .iter()
        .find(|s| s.set_identifier == t.blue_set)
        .map_or(60, |s| s.ttl);
    traffic::wait_ttl(ctx, ttl, step.ttl_second.0).await;
    let now = green::dns_weights(ctx.conn, t)
        .await
        .context(|| format!("cannot read the weights of `{record}` after switching back"))?;
    if !now.all_blue() {
        return Err(StepError::Failed(format!(
            "Route 53 change `{id}` is INSYNC, but `{record}` now has {now}: requests may still reach green\nhint: a person must set blue's weight to 100 and green's to 0"
        )));
    }
    Ok(format!(
        "traffic switched back to blue in one change (`{id}`, INSYNC): `{record}` has {now}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic() -> Traffic {
        crate::steps::blue_green::example_traffic()
    }

    fn set(id: &str, weight: i64, ttl: i64) -> Weighted {
        Weighted {
            set_identifier: id.into(),
            weight,
            ttl,
            values: vec![format!("{id}.elb")],
        }
    }

    #[test]
    fn the_switch_back_sets_both_weights_and_keeps_values_and_ttls() {
        let sets = [
            set("blue", 50, 60),
            set("green", 50, 30),
            set("other", 5, 60),
        ];
        assert_eq!(
            back_to_blue(&sets, &traffic()),
            Some(vec![set("blue", 100, 60), set("green", 0, 30)])
        );
        // Without green's set there is only blue to set.
        assert_eq!(
            back_to_blue(&[set("blue", 0, 60)], &traffic()),
            Some(vec![set("blue", 100, 60)])
        );
        assert_eq!(back_to_blue(&[set("green", 100, 60)], &traffic()), None);
    }
}
