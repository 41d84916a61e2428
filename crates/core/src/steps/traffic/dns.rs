//! The Route 53 side of a stage: the sets of the record as read, the weights they give, where
//! green's set points, the plan's lines, the points of the run's weight history, and the waits
//! (INSYNC, then the record's TTL) before a stage's weights count.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;

use super::ShiftTraffic;
use super::analysis;
use super::weights::Split;
use crate::cloud::connect::Connection;
use crate::cloud::route53::{self, Route53Error, Weighted};
use crate::steps::blue_green::{GreenTarget, Traffic};
use crate::steps::green::{RECORD_TYPE, WeightPoint};
use crate::steps::kind::TimeScale;
use crate::steps::{Context, StepCtx, StepError};
use crate::types::HumanDuration;

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

pub(super) async fn plan(step: &ShiftTraffic, conn: &Connection) -> Vec<String> {
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
pub(super) async fn green_value(
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
