//! `notify`: a webhook (Slack-compatible JSON) told about the run. The step subscribes it: it
//! sends `start` when reached, and the engine sends `success` or `failure` when the run ends.
//! A failed notification is logged and never fails the upgrade.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{StepCtx, StepResult};
use crate::workflow::model::{Notify, NotifyEvent, WebhookUrl};

/// What the engine keeps to notify at the end of the run. The URL itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub step: String,
    pub on: Vec<NotifyEvent>,
    pub timeout_ms: u64,
    pub retries: u32,
}

/// The URL, read when needed so it never sits in the journal or a log.
pub fn resolve_url(workflow: &crate::workflow::Workflow, step_id: &str) -> Option<String> {
    workflow.steps().find_map(|(_, s)| match &s.kind {
        crate::workflow::StepKind::Notify(n) if s.id == step_id => match &n.url {
            WebhookUrl::Literal(u) => Some(u.clone()),
            WebhookUrl::Env(var) => std::env::var(var).ok().filter(|v| !v.is_empty()),
        },
        _ => None,
    })
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

pub async fn run(step: &Notify, ctx: &StepCtx<'_>) -> StepResult {
    let subscription = Subscription {
        step: ctx.key.id.clone(),
        on: step.on.clone(),
        timeout_ms: step.timeout.0.as_millis() as u64,
        retries: step.retries,
    };
    ctx.record("subscription", &subscription).await?;
    if !step.on.contains(&NotifyEvent::Start) {
        return Ok("subscribed; nothing to send at the start".into());
    }
    let Some(url) = resolve_url(ctx.workflow, &ctx.key.id) else {
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
        &ctx.workflow.name,
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
