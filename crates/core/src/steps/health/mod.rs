//! `healthCheck`: after an optional settle time, retries until the cluster is healthy or the
//! timeout passes. Healthy means: the API server reports the expected version, nodes are Ready,
//! kube-system pods run, workloads are available, EKS add-ons are ACTIVE, and the workflow's
//! HTTP probes answer. Problems the cluster already had before the upgrade (the baseline taken in
//! `prepare`) do not fail the check unless they got worse, and each node manager must have as
//! many Ready nodes as then, counting replacements in flight.
//!
//! In a blue/green run, `on: green` looks at green instead, through its own API and EKS: the
//! same checks against blue's baseline, so what was already broken on blue (and came over with
//! the restore) does not count, and capacity is compared only for the node managers green has
//! (what `createGreen` did not copy is reported there, not here).

mod managers;
mod snapshot;

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use managers::{ManagerCount, capacity};
pub use snapshot::{Problem, Snapshot, regressions, snapshot};

use super::kind::{BuildCx, Kind, Placement, PlanCx, TimeScale};
use super::{Context, StepCtx, StepError, StepResult};
use crate::cloud::connect::Connection;
use crate::cloud::eks::{self, EksError};
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::DurationText;
use crate::journal::Fact;
use crate::types::{HumanDuration, Phase, Version};

/// The run-wide health baseline, recorded when `prepare` ends.
pub const BASELINE: Fact<Snapshot> = Fact::new("baseline");
/// The look that found the cluster healthy.
pub const HEALTH: Fact<Snapshot> = Fact::new("health");
/// What was still wrong when the check gave up.
pub const PROBLEMS: Fact<Vec<String>> = Fact::new("problems");

/// Defaults of the step's options.
pub mod defaults {
    use std::time::Duration;

    pub const TIMEOUT: Duration = Duration::from_secs(15 * 60);
    pub const INTERVAL: Duration = Duration::from_secs(10);
    pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
}

/// An HTTP endpoint that must answer for the cluster to count as healthy.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawProbe {
    /// The URL to GET.
    pub url: Spanned<String>,
    /// The expected status code. Default: any 2xx.
    pub expect_status: Option<Spanned<u16>>,
    /// Per-request timeout. Default: `5s`.
    pub timeout: Option<Spanned<DurationText>>,
}

/// Options for the health check.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawHealthCheck {
    /// Wait this long before the first check. Default: `0s`.
    pub settle: Option<Spanned<DurationText>>,
    /// Give up after this long. Default: `15m`.
    pub timeout: Option<Spanned<DurationText>>,
    /// Time between attempts. Default: `10s`.
    pub interval: Option<Spanned<DurationText>>,
    /// Namespaces whose workloads are checked. Default: all.
    pub namespaces: Option<Vec<String>>,
    /// Extra HTTP probes.
    #[serde(default)]
    pub probes: Vec<Spanned<RawProbe>>,
    /// The cluster to look at: `blue` (default; the cluster the run upgrades) or `green` (the
    /// cluster a blue/green run built).
    pub on: Option<Side>,
}

/// Which cluster of a blue/green run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Side {
    /// The cluster the run started from.
    #[default]
    Blue,
    /// The cluster a blue/green run built.
    Green,
}

/// An HTTP endpoint that must answer, validated.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub url: String,
    pub expect_status: Option<u16>,
    pub timeout: HumanDuration,
}

/// A validated `healthCheck` step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    pub settle: HumanDuration,
    pub timeout: HumanDuration,
    pub interval: HumanDuration,
    pub namespaces: Option<Vec<String>>,
    pub probes: Vec<Probe>,
    pub on: Side,
}

pub struct HealthCheckKind;

impl Kind for HealthCheckKind {
    type Raw = RawHealthCheck;
    type Model = HealthCheck;

    const DOC: &'static str =
        "Checks the cluster's health against the baseline taken before the upgrade.";
    const TITLE: &'static str = "Health check";
    const PLACEMENT: Placement = Placement {
        sections: &Phase::ALL,
        why: "",
    };
    const MUTATES: bool = false;
    const EXAMPLE: &'static str = "{ settle: 1m, timeout: 15m }";

    fn build(
        raw: &Spanned<RawHealthCheck>,
        v: &mut Validator<'_>,
        _: &BuildCx<'_>,
    ) -> Option<HealthCheck> {
        let h = &raw.value;
        let mut probes = Vec::new();
        for p in &h.probes {
            let url = &p.value.url;
            if !(url.value.starts_with("http://") || url.value.starts_with("https://")) {
                v.problem(
                    url.loc,
                    format!("probe URL `{}` is not an http(s) URL", url.value),
                    "not http(s)",
                    "write a full URL such as `https://app.example.com/healthz`",
                );
            }
            if let Some(code) = p
                .value
                .expect_status
                .as_ref()
                .filter(|c| !(100..=599).contains(&c.value))
            {
                v.problem(
                    code.loc,
                    format!("`{}` is not an HTTP status code", code.value),
                    "not 100–599",
                    "use a status code such as `200`",
                );
            }
            probes.push(Probe {
                url: url.value.clone(),
                expect_status: p.value.expect_status.as_ref().map(|c| c.value),
                timeout: v.positive("timeout", p.value.timeout.as_ref(), defaults::PROBE_TIMEOUT),
            });
        }
        Some(HealthCheck {
            settle: v.duration("settle", h.settle.as_ref(), Duration::ZERO),
            timeout: v.positive("timeout", h.timeout.as_ref(), defaults::TIMEOUT),
            interval: v.positive("interval", h.interval.as_ref(), defaults::INTERVAL),
            namespaces: h.namespaces.clone(),
            probes,
            on: h.on.unwrap_or_default(),
        })
    }

    fn on_green(step: &HealthCheck) -> bool {
        step.on == Side::Green
    }

    async fn plan(step: &HealthCheck, _: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        Ok(vec![match step.on {
            Side::Blue => "reads the cluster's health; changes nothing".into(),
            Side::Green => {
                "green: reads its health against blue's baseline; changes nothing".into()
            }
        }])
    }

    async fn run(step: &HealthCheck, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }

    fn scale_time(step: &mut HealthCheck, scale: &TimeScale) {
        scale.apply(&mut step.settle, 0);
        scale.timeout(&mut step.timeout);
        scale.apply(&mut step.interval, 100);
    }

    fn typical_minutes(step: &HealthCheck) -> u64 {
        step.settle.0.as_secs() / 60 + 2
    }
}

async fn probe(client: &reqwest::Client, p: &Probe) -> Option<String> {
    match client.get(&p.url).timeout(p.timeout.0).send().await {
        Ok(resp) => {
            let code = resp.status().as_u16();
            let ok = match p.expect_status {
                Some(want) => code == want,
                None => resp.status().is_success(),
            };
            (!ok).then(|| format!("probe {} answered {code}", p.url))
        }
        Err(e) => Some(format!("probe {} failed: {e}", p.url)),
    }
}

/// What the control-plane version should be now: the hop's in `upgrade` (green is made at the
/// hop's version), otherwise what EKS says.
async fn expected_version(ctx: &StepCtx<'_>, conn: &Connection) -> Result<Version, StepError> {
    if ctx.key.phase == Phase::Upgrade
        && let Some(h) = ctx.hop
    {
        return Ok(h);
    }
    crate::cloud::connect::describe_cluster(&conn.eks, &conn.cluster.name, &conn.cluster.region)
        .await
        .map(|c| c.version)
        .cause()
}

/// One look at the cluster `conn` reaches: the problems that count against the check. A
/// traffic stage's analysis takes the same look at green.
pub async fn look(
    conn: &Connection,
    step: &HealthCheck,
    baseline: &Snapshot,
    expected: Version,
    http: &reqwest::Client,
) -> Result<(Vec<String>, Snapshot), StepError> {
    let mut failures = Vec::new();
    match conn.kube.apiserver_version().await {
        Ok(info) => {
            let minor = info.minor.trim_end_matches('+');
            if info.major != expected.major.to_string() || minor != expected.minor.to_string() {
                failures.push(format!(
                    "the API server reports {}.{minor}, expected {expected}",
                    info.major
                ));
            }
        }
        Err(e) => failures.push(format!(
            "the API server does not answer /version: {}",
            crate::errors::kube(&e)
        )),
    }
    // An API server that does not answer is a failed look, not a failed check: it is asked
    // again until the timeout, so one refused request never sets off a restore and rollback.
    let snap = match snapshot(conn.kube.clone(), step.namespaces.as_deref()).await {
        Ok(snap) => {
            // Green has only the managers `createGreen` copied; the others are reported there.
            let managers: Vec<ManagerCount> = match step.on {
                Side::Blue => baseline.managers.clone(),
                Side::Green => baseline
                    .managers
                    .iter()
                    .filter(|m| snap.managers.iter().any(|g| g.manager == m.manager))
                    .cloned()
                    .collect(),
            };
            failures.extend(
                regressions(baseline, &snap.problems)
                    .iter()
                    .chain(&capacity(&managers, &snap.managers))
                    .map(|p| format!("{}: {}", p.id(), p.detail)),
            );
            snap
        }
        Err(e) => {
            failures.push(format!(
                "cannot read the cluster: {}",
                crate::errors::kube(&e)
            ));
            Snapshot::default()
        }
    };
    match eks::addons(&conn.eks, &conn.cluster.name).await {
        Ok(addons) => failures.extend(
            addons
                .iter()
                .filter(|a| a.status != "ACTIVE")
                .map(|a| format!("add-on {} is {}", a.name, a.status)),
        ),
        Err(e) => failures.push(e.to_string()),
    }
    for p in &step.probes {
        if let Some(f) = probe(http, p).await {
            failures.push(f);
        }
    }
    Ok((failures, snap))
}

/// The least time one look at the cluster gets, whatever is left of the step's timeout (which the
/// sandbox's time scale shrinks to seconds).
pub const LOOK_AT_LEAST: Duration = Duration::from_secs(30);

async fn run(step: &HealthCheck, ctx: &StepCtx<'_>) -> StepResult {
    let baseline: Snapshot = ctx.journal.run_fact(&BASELINE).await.unwrap_or_default();
    if !step.settle.0.is_zero() {
        ctx.progress(&format!("settling for {}", step.settle), None, None);
        tokio::time::sleep(step.settle.0).await;
    }
    let conn = match step.on {
        Side::Blue => ctx.conn,
        Side::Green => ctx.green().await?,
    };
    let side = match step.on {
        Side::Blue => String::new(),
        Side::Green => format!("green `{}` ", conn.cluster.name),
    };
    let expected = expected_version(ctx, conn).await?;
    let http = reqwest::Client::builder()
        .build()
        .context(|| "cannot make an HTTP client for probes".into())?;
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        // The Kubernetes client retries an overloaded API server for minutes; a look gets what
        // is left of the step's timeout, but never less than `LOOK_AT_LEAST`: a slow answer
        // from a busy cluster is an answer, not a failed check.
        let left = step
            .timeout
            .0
            .saturating_sub(started.elapsed())
            .max(step.interval.0)
            .max(LOOK_AT_LEAST);
        let (failures, snap) =
            match tokio::time::timeout(left, look(conn, step, &baseline, expected, &http)).await {
                Ok(looked) => looked?,
                Err(_) => (
                    vec![format!(
                        "the cluster did not answer within {}",
                        crate::types::HumanDuration(left)
                    )],
                    Snapshot::default(),
                ),
            };
        if failures.is_empty() {
            let known = snap.problems.len();
            ctx.record(&HEALTH, &snap).await?;
            return Ok(format!(
                "{side}healthy at {expected}: {}, {} workloads available{}",
                managers::summary(&snap.managers),
                snap.workloads,
                if known > 0 {
                    format!(" ({known} problems that predate the upgrade ignored)")
                } else {
                    String::new()
                }
            ));
        }
        if started.elapsed() + step.interval.0 > step.timeout.0 {
            ctx.record(&PROBLEMS, &failures).await?;
            return Err(StepError::Failed(format!(
                "{side}still unhealthy after {} ({attempt} checks): {}",
                crate::types::HumanDuration(Duration::from_secs(started.elapsed().as_secs())),
                failures.join("; ")
            )));
        }
        ctx.progress(
            &format!(
                "{} problems, checking again: {}",
                failures.len(),
                failures.first().map(String::as_str).unwrap_or("")
            ),
            None,
            None,
        );
        tokio::time::sleep(step.interval.0).await;
    }
}
