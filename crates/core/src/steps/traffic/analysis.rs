//! The look a traffic stage (and a watched soak) takes at green while it serves requests:
//! green's health, the way `healthCheck` sees it, and the share of failed requests on each side
//! from the workflow's Prometheus queries. Only green's rate decides; blue's is read so that a
//! failure can say whether the problem is green's own or everybody's.
//!
//! Too few requests is "cannot judge", never "no errors": a stage waits for more, up to its
//! timeout. One unhealthy look is asked again (an API server may refuse one request); two in a
//! row fail.

use serde::{Deserialize, Serialize};

use crate::cloud::connect::Connection;
use crate::cloud::metrics;
use crate::steps::blue_green::{ErrorRate, Prometheus};
use crate::steps::health::{self, BASELINE, HealthCheck, Snapshot};
use crate::steps::{StepCtx, StepError};
use crate::types::{HumanDuration, Version};

/// Failed and all requests of one cluster over the window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub errors: f64,
    pub requests: f64,
}

impl Counts {
    /// The share of failed requests; `None` without requests.
    pub fn rate(self) -> Option<f64> {
        (self.requests > 0.0).then(|| self.errors / self.requests)
    }

    /// `1.5% (3 of 200 requests in 2m)`, over the window the queries asked for.
    pub fn describe(self, window: &HumanDuration) -> String {
        let window = queried(window);
        match self.rate() {
            Some(r) => format!(
                "{} ({} of {} requests in {window})",
                percent(r),
                self.errors.round(),
                self.requests.round()
            ),
            None => format!("unknown (no requests in {window})"),
        }
    }
}

/// The window as the queries ask for it: whole seconds, at least one (see
/// [`Prometheus::query`]).
pub fn queried(window: &HumanDuration) -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(window.0.as_secs().max(1)))
}

/// A fraction as a percentage with one decimal: `0.015` → `1.5%`.
pub fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{}%", p.round())
    } else {
        format!("{p:.1}%")
    }
}

/// What green's error rate says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "rate", content = "why")]
pub enum RateVerdict {
    /// At or below the allowed share.
    Within,
    /// Above the allowed share, over enough requests to say so.
    TooHigh,
    /// Not enough data (or no answer) to say.
    CannotJudge(String),
    /// The workflow names no error rate: green's health alone decides.
    NotGated,
}

/// One look at green while it takes traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Look {
    /// What is wrong with green's health (empty when healthy).
    pub problems: Vec<String>,
    pub green: Option<Counts>,
    pub blue: Option<Counts>,
    pub verdict: RateVerdict,
}

/// Green's rate against the gate: pure, so every verdict is tested without a cluster.
/// `green` is `Err` when the queries had no answer.
pub fn judge(gate: &ErrorRate, green: Result<Option<Counts>, String>) -> RateVerdict {
    let counts = match green {
        Err(why) => return RateVerdict::CannotJudge(why),
        Ok(None) => {
            return RateVerdict::CannotJudge(format!(
                "no requests to green are counted in the last {}",
                queried(&gate.window)
            ));
        }
        Ok(Some(c)) => c,
    };
    if counts.requests < gate.min_requests as f64 {
        return RateVerdict::CannotJudge(format!(
            "green served {} requests in the last {}; {} are needed to judge its error rate",
            counts.requests.round(),
            queried(&gate.window),
            gate.min_requests
        ));
    }
    match counts.rate() {
        Some(r) if r > gate.max => RateVerdict::TooHigh,
        _ => RateVerdict::Within,
    }
}

/// What a look means for the stage or soak watching.
#[derive(Debug, Clone, PartialEq)]
pub enum Assessment {
    /// Green is healthy and its error rate within the gate (or not gated).
    Good,
    /// Nothing to decide on yet; the reason is shown as progress.
    Unsure(String),
    /// The stage fails; the message names what was seen.
    Fail(String),
}

/// Judges a look. `unhealthy_before`: the look before this one found green unhealthy too.
pub fn assess(look: &Look, gate: Option<&ErrorRate>, unhealthy_before: bool) -> Assessment {
    if look.verdict == RateVerdict::TooHigh
        && let (Some(gate), Some(green)) = (gate, look.green)
    {
        let blue = look
            .blue
            .map_or_else(|| "unknown".to_string(), |b| b.describe(&gate.window));
        return Assessment::Fail(format!(
            "green's error rate is {}, above the {} allowed; blue's is {blue}",
            green.describe(&gate.window),
            percent(gate.max)
        ));
    }
    if !look.problems.is_empty() {
        let what = format!("green is unhealthy: {}", look.problems.join("; "));
        return if unhealthy_before {
            Assessment::Fail(what)
        } else {
            Assessment::Unsure(what)
        };
    }
    match &look.verdict {
        RateVerdict::CannotJudge(why) => Assessment::Unsure(why.clone()),
        _ => Assessment::Good,
    }
}

/// What a look needs, read once per step: the gate, green's name and version, blue's name and
/// health baseline, an HTTP client.
pub struct Looker<'a> {
    pub gate: Option<&'a ErrorRate>,
    pub green_name: String,
    pub green_version: Version,
    pub blue_name: String,
    pub baseline: Snapshot,
    pub url: Option<String>,
    pub http: reqwest::Client,
}

impl<'a> Looker<'a> {
    /// Prepares looks for a step. Fails when the gate's URL is not set: without it no stage
    /// could ever be judged, which is a setting to fix, not a wait.
    pub async fn new(ctx: &StepCtx<'_>, gate: Option<&'a ErrorRate>) -> Result<Self, StepError> {
        let green = ctx.green_cluster().await?;
        let url = match gate {
            Some(g) => Some(g.prometheus.url.resolve().ok_or_else(|| {
                StepError::Failed(match &g.prometheus.url {
                    crate::steps::blue_green::UrlFrom::Env(var) => format!(
                        "`{var}` is not set, so green's error rate cannot be read\nhint: set it to the base URL of the Prometheus query API"
                    ),
                    crate::steps::blue_green::UrlFrom::Literal(_) => {
                        "the Prometheus URL is empty".to_string()
                    }
                })
            })?),
            None => None,
        };
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| StepError::Call {
                context: "cannot make an HTTP client for Prometheus".into(),
                source: Box::new(e),
            })?;
        Ok(Looker {
            gate,
            green_name: green.name,
            green_version: green.version,
            blue_name: ctx.cluster().to_string(),
            baseline: ctx.journal.run_fact(&BASELINE).await.unwrap_or_default(),
            url,
            http,
        })
    }

    /// One look at green through `green` (its connection).
    pub async fn look(&self, green: &Connection) -> Look {
        let step = HealthCheck {
            settle: HumanDuration::default(),
            timeout: HumanDuration(health::LOOK_AT_LEAST),
            interval: HumanDuration(health::LOOK_AT_LEAST),
            namespaces: None,
            probes: Vec::new(),
            on: health::Side::Green,
        };
        let problems = match tokio::time::timeout(
            health::LOOK_AT_LEAST,
            health::look(green, &step, &self.baseline, self.green_version, &self.http),
        )
        .await
        {
            Ok(Ok((problems, _))) => problems,
            Ok(Err(e)) => vec![e.to_string()],
            Err(_) => vec![format!(
                "green did not answer within {}",
                HumanDuration(health::LOOK_AT_LEAST)
            )],
        };
        let (Some(gate), Some(url)) = (self.gate, self.url.as_deref()) else {
            return Look {
                problems,
                green: None,
                blue: None,
                verdict: RateVerdict::NotGated,
            };
        };
        let green = self.counts(gate, url, &self.green_name).await;
        let blue = self.counts(gate, url, &self.blue_name).await.ok().flatten();
        let verdict = judge(gate, green.clone());
        Look {
            problems,
            green: green.ok().flatten(),
            blue,
            verdict,
        }
    }

    /// A cluster's counts; `Ok(None)` when no requests are counted at all.
    async fn counts(
        &self,
        gate: &ErrorRate,
        url: &str,
        cluster: &str,
    ) -> Result<Option<Counts>, String> {
        let ask = |template: &str| {
            let query = Prometheus::query(template, cluster, &gate.window);
            async move {
                metrics::instant(&self.http, url, &query)
                    .await
                    .map_err(|e| crate::errors::chain(&e))
            }
        };
        let Some(requests) = ask(&gate.prometheus.requests).await? else {
            return Ok(None);
        };
        // No series of failed requests is no failed request, once requests are counted.
        let errors = ask(&gate.prometheus.errors).await?.unwrap_or(0.0);
        Ok(Some(Counts { errors, requests }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::blue_green::UrlFrom;

    fn gate() -> ErrorRate {
        ErrorRate {
            prometheus: Prometheus {
                url: UrlFrom::Env("PROMETHEUS_URL".into()),
                errors: "e".into(),
                requests: "r".into(),
            },
            max: 0.01,
            min_requests: 50,
            window: HumanDuration(std::time::Duration::from_secs(120)),
        }
    }

    fn counts(errors: f64, requests: f64) -> Result<Option<Counts>, String> {
        Ok(Some(Counts { errors, requests }))
    }

    #[test]
    fn green_is_judged_only_over_enough_requests() {
        let g = gate();
        assert_eq!(judge(&g, counts(0.0, 1000.0)), RateVerdict::Within);
        // Exactly the allowed share passes; a hair above fails.
        assert_eq!(judge(&g, counts(10.0, 1000.0)), RateVerdict::Within);
        assert_eq!(judge(&g, counts(11.0, 1000.0)), RateVerdict::TooHigh);
        assert_eq!(judge(&g, counts(50.0, 50.0)), RateVerdict::TooHigh);
        // Every request failing, but too few of them: not judged yet.
        assert!(matches!(
            judge(&g, counts(49.0, 49.0)),
            RateVerdict::CannotJudge(why) if why.contains("49 requests") && why.contains("50 are needed")
        ));
        // No data is not zero errors.
        assert!(matches!(judge(&g, Ok(None)), RateVerdict::CannotJudge(_)));
        assert_eq!(
            judge(&g, Err("cannot reach".into())),
            RateVerdict::CannotJudge("cannot reach".into())
        );
    }

    fn look(problems: &[&str], green: Option<Counts>, verdict: RateVerdict) -> Look {
        Look {
            problems: problems.iter().map(|p| p.to_string()).collect(),
            green,
            blue: Some(Counts {
                errors: 0.0,
                requests: 900.0,
            }),
            verdict,
        }
    }

    #[test]
    fn a_failure_names_both_rates() {
        let g = gate();
        let bad = look(
            &[],
            Some(Counts {
                errors: 100.0,
                requests: 100.0,
            }),
            RateVerdict::TooHigh,
        );
        assert_eq!(
            assess(&bad, Some(&g), false),
            Assessment::Fail(
                "green's error rate is 100% (100 of 100 requests in 2m), above the 1% allowed; blue's is 0% (0 of 900 requests in 2m)".into()
            )
        );
    }

    #[test]
    fn one_unhealthy_look_is_asked_again_two_fail() {
        let g = gate();
        let sick = look(&["pod x: CrashLoopBackOff"], None, RateVerdict::NotGated);
        assert!(
            matches!(assess(&sick, Some(&g), false), Assessment::Unsure(w) if w.contains("CrashLoopBackOff"))
        );
        assert!(
            matches!(assess(&sick, Some(&g), true), Assessment::Fail(w) if w.starts_with("green is unhealthy"))
        );
        let fine = look(&[], None, RateVerdict::NotGated);
        assert_eq!(assess(&fine, None, true), Assessment::Good);
        let unsure = look(&[], None, RateVerdict::CannotJudge("few".into()));
        assert_eq!(
            assess(&unsure, Some(&g), false),
            Assessment::Unsure("few".into())
        );
        let within = look(
            &[],
            Some(Counts {
                errors: 1.0,
                requests: 1000.0,
            }),
            RateVerdict::Within,
        );
        assert_eq!(assess(&within, Some(&g), false), Assessment::Good);
    }

    #[test]
    fn percentages_read_well() {
        assert_eq!(percent(0.01), "1%");
        assert_eq!(percent(0.015), "1.5%");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(
            Counts {
                errors: 0.0,
                requests: 0.0
            }
            .describe(&HumanDuration(std::time::Duration::from_secs(60))),
            "unknown (no requests in 1m)"
        );
        // A window shorter than a second (a fast sandbox) is queried as one second.
        assert_eq!(
            Counts {
                errors: 1.0,
                requests: 2.0
            }
            .describe(&HumanDuration(std::time::Duration::from_millis(200))),
            "50% (1 of 2 requests in 1s)"
        );
    }
}
