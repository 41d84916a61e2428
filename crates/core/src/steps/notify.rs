//! `notify`: a webhook (Slack-compatible JSON) told about the run. The step subscribes it: it
//! sends `start` when reached, and the engine sends `success` or `failure` when the run ends.
//! A failed notification is logged and never fails the upgrade.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kind::{BuildCx, Kind, Placement, PlanCx};
use super::{StepCtx, StepResult};
use crate::cloud::eks::EksError;
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::DurationText;
use crate::journal::Fact;
use crate::types::{HumanDuration, Phase};

/// The subscription the engine notifies at the end of the run.
pub const SUBSCRIPTION: Fact<Subscription> = Fact::new("subscription");

/// Defaults of the step's options.
pub mod defaults {
    use std::time::Duration;

    pub const TIMEOUT: Duration = Duration::from_secs(10);
    pub const RETRIES: u32 = 3;
}

/// Moments a notification can be sent at.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum NotifyEvent {
    /// When the `notify` step is reached.
    Start,
    /// When the run ends with every hop done.
    Success,
    /// When the run ends in any other way.
    Failure,
}

/// Options for a webhook notification.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawNotify {
    /// The webhook URL. Prefer `urlEnv`: webhook URLs are secrets.
    pub url: Option<Spanned<String>>,
    /// The environment variable holding the webhook URL.
    pub url_env: Option<Spanned<String>>,
    /// When to send. Default: all of `start`, `success`, `failure`.
    pub on: Option<Vec<NotifyEvent>>,
    /// Per-attempt timeout. Default: `10s`.
    pub timeout: Option<Spanned<DurationText>>,
    /// Extra attempts after a failed one. Default: `3`.
    pub retries: Option<u32>,
}

/// Where a webhook URL comes from. The URL itself is never logged.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum WebhookUrl {
    #[serde(serialize_with = "redact")]
    Literal(String),
    Env(String),
}

fn redact<S: serde::Serializer>(_: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("<redacted>")
}

impl WebhookUrl {
    /// The URL, read when needed so it never sits in the journal or a log.
    pub fn resolve(&self) -> Option<String> {
        match self {
            WebhookUrl::Literal(u) => Some(u.clone()),
            WebhookUrl::Env(var) => std::env::var(var).ok().filter(|v| !v.is_empty()),
        }
    }
}

/// A validated `notify` step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notify {
    pub url: WebhookUrl,
    pub on: Vec<NotifyEvent>,
    pub timeout: HumanDuration,
    pub retries: u32,
}

/// What the engine keeps to notify at the end of the run. The URL itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub step: String,
    pub on: Vec<NotifyEvent>,
    pub timeout_ms: u64,
    pub retries: u32,
}

pub struct NotifyKind;

impl Kind for NotifyKind {
    type Raw = RawNotify;
    type Model = Notify;

    const DOC: &'static str = "Subscribes a webhook to the run: `start` is sent when the step is reached, `success` or\n`failure` when the run ends. Allowed in `prepare`; put it first to hear about every outcome.";
    const TITLE: &'static str = "Notify";
    const PLACEMENT: Placement = Placement {
        sections: &[Phase::Prepare],
        why: "a webhook is subscribed once, at the start of the run",
    };
    const MUTATES: bool = false;
    const EXAMPLE: &'static str = "{ urlEnv: SLACK_WEBHOOK_URL }";

    fn build(raw: &Spanned<RawNotify>, v: &mut Validator<'_>, _: &BuildCx<'_>) -> Option<Notify> {
        let n = &raw.value;
        let url = match (&n.url, &n.url_env) {
            (Some(u), None) => {
                if !(u.value.starts_with("https://") || u.value.starts_with("http://")) {
                    v.problem(
                        u.loc,
                        "the webhook `url` is not an http(s) URL",
                        "not http(s)",
                        "write the full webhook URL, or use `urlEnv` to read it from the environment",
                    );
                }
                WebhookUrl::Literal(u.value.clone())
            }
            (None, Some(e)) => {
                if !crate::types::names::env_var(&e.value) {
                    v.problem(
                        e.loc,
                        format!("`{}` is not an environment variable name", e.value),
                        "invalid name",
                        "use letters, digits and `_`, such as `SLACK_WEBHOOK_URL`",
                    );
                }
                WebhookUrl::Env(e.value.clone())
            }
            (Some(_), Some(e)) => {
                v.problem(
                    e.loc,
                    "`notify` has both `url` and `urlEnv`",
                    "second source",
                    "keep one; `urlEnv` keeps the secret out of the file",
                );
                return None;
            }
            (None, None) => {
                v.problem(
                    raw.loc,
                    "`notify` needs a webhook",
                    "no `url` or `urlEnv`",
                    "add `urlEnv: SLACK_WEBHOOK_URL` (or `url:`)",
                );
                return None;
            }
        };
        let mut on = n.on.clone().unwrap_or_else(|| {
            vec![
                NotifyEvent::Start,
                NotifyEvent::Success,
                NotifyEvent::Failure,
            ]
        });
        on.sort();
        on.dedup();
        if on.is_empty() {
            v.problem(
                raw.loc,
                "`notify` has an empty `on` list",
                "never sends",
                "list at least one of `start`, `success`, `failure`, or leave `on` out for all three",
            );
        }
        Some(Notify {
            url,
            on,
            timeout: v.positive("timeout", n.timeout.as_ref(), defaults::TIMEOUT),
            retries: n.retries.unwrap_or(defaults::RETRIES),
        })
    }

    async fn plan(step: &Notify, _: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        Ok(vec![format!(
            "posts to the webhook {} on {}",
            match &step.url {
                WebhookUrl::Env(var) => format!("in `${var}`"),
                WebhookUrl::Literal(_) => "(URL in the workflow)".to_string(),
            },
            step.on
                .iter()
                .map(|e| format!("{e:?}").to_lowercase())
                .collect::<Vec<_>>()
                .join(", ")
        )])
    }

    async fn run(step: &Notify, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }
}

/// Posts `text` to the webhook, retrying with backoff. Returns why it failed, without the URL.
pub async fn post(url: &str, text: &str, timeout: Duration, retries: u32) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| e.to_string())?;
    let body = serde_json::json!({ "text": text });
    let mut last = String::new();
    for attempt in 0..=retries {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt.min(6)))).await;
        }
        match client.post(url).json(&body).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = format!("the webhook answered {}", r.status()),
            // The error text of reqwest may contain the URL; keep only its kind.
            Err(e) => {
                last = if e.is_timeout() {
                    "the webhook timed out".into()
                } else if e.is_connect() {
                    "cannot connect to the webhook".into()
                } else {
                    "the request failed".into()
                }
            }
        }
    }
    Err(format!("{last} ({} attempts)", retries + 1))
}

pub fn message(event: NotifyEvent, workflow: &str, cluster: &str, detail: &str) -> String {
    let word = match event {
        NotifyEvent::Start => "started",
        NotifyEvent::Success => "succeeded",
        NotifyEvent::Failure => "did not succeed",
    };
    format!("eks-upgrade: workflow `{workflow}` on cluster `{cluster}` {word}. {detail}")
}

async fn run(step: &Notify, ctx: &StepCtx<'_>) -> StepResult {
    let subscription = Subscription {
        step: ctx.key.id.clone(),
        on: step.on.clone(),
        timeout_ms: step.timeout.0.as_millis() as u64,
        retries: step.retries,
    };
    ctx.record(&SUBSCRIPTION, &subscription).await?;
    if !step.on.contains(&NotifyEvent::Start) {
        return Ok("subscribed; nothing to send at the start".into());
    }
    let Some(url) = step.url.resolve() else {
        ctx.warn(&format!(
            "`{}`: the webhook URL is not set; no notifications will be sent",
            ctx.key.id
        ));
        return Ok("no webhook URL; notifications skipped".into());
    };
    let hops: Vec<String> = ctx
        .journal
        .read(|j| j.hops.iter().map(|v| v.to_string()).collect())
        .await;
    let text = message(
        NotifyEvent::Start,
        ctx.workflow_name,
        ctx.cluster(),
        &format!("Upgrading through {}.", hops.join(", ")),
    );
    match post(&url, &text, step.timeout.0, step.retries).await {
        Ok(()) => Ok("sent `start`".into()),
        Err(e) => {
            ctx.warn(&format!("`{}`: {e}; the run goes on", ctx.key.id));
            Ok(format!("could not send `start`: {e}"))
        }
    }
}
