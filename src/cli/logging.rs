//! Debug logs for incidents: `-v` and `RUST_LOG` turn on the `tracing` output the AWS SDK, kube
//! and hyper already emit (retries, HTTP status, request ids), on stderr, as text or as JSON
//! lines. Without either nothing is installed, so the tool's output stays exactly what it is.
//! Every line passes through the redacting writer of [`crate::ui::redact`].

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::util::SubscriberInitExt;

use crate::ui::redact::{Redacting, add_secret, add_secret_url};
use crate::ui::reporter::LogFormat;
use eks_upgrade_core::steps::notify::WebhookUrl;
use eks_upgrade_core::workflow::{StepKind, Workflow};

/// Our own crates, for the `-v` levels.
const OWN: &[&str] = &["eks_upgrade", "eks_upgrade_core", "eks_upgrade_sandbox"];

/// The libraries whose debug output answers "what did the tool send, and what came back".
const WIRE: &[&str] = &[
    "aws_config",
    "aws_smithy_runtime",
    "aws_smithy_http_client",
    "aws_sdk_eks",
    "aws_sdk_ec2",
    "aws_sdk_s3",
    "kube",
    "hyper",
    "hyper_util",
    "reqwest",
];

/// How many `-v` were given, for child processes of the same binary (`demo`, `run --sandbox`).
static VERBOSITY: AtomicU8 = AtomicU8::new(0);
/// Whether a subscriber is installed: secrets are only worth registering then.
static ENABLED: AtomicBool = AtomicBool::new(false);

pub fn verbosity() -> u8 {
    VERBOSITY.load(Ordering::Relaxed)
}

/// The filter `-v` stands for; `None` for no logs at all.
pub fn filter_for(verbose: u8) -> Option<String> {
    let own = |level: &str| {
        OWN.iter()
            .map(|c| format!("{c}={level}"))
            .collect::<Vec<_>>()
    };
    let directives = match verbose {
        0 => return None,
        1 => [vec!["warn".to_string()], own("info")].concat(),
        2 => [
            vec!["info".to_string()],
            own("debug"),
            WIRE.iter().map(|c| format!("{c}=debug")).collect(),
        ]
        .concat(),
        _ => vec!["trace".to_string()],
    };
    Some(directives.join(","))
}

/// Installs the subscriber when `-v` or `RUST_LOG` asks for logs. Called once, before any
/// command runs.
pub fn init(verbose: u8, format: LogFormat) {
    VERBOSITY.store(verbose, Ordering::Relaxed);
    let env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let from_flags = filter_for(verbose);
    let (filter, rejected) = match env {
        Some(directives) => match EnvFilter::try_new(&directives) {
            Ok(f) => (f, None),
            // The operator asked for logs: say why `RUST_LOG` is ignored, through the log itself
            // so a JSON log stays JSON.
            Err(e) => {
                let fallback = from_flags.unwrap_or_else(|| "warn".to_string());
                (
                    EnvFilter::try_new(&fallback).unwrap_or_else(|_| EnvFilter::new("warn")),
                    Some(e.to_string()),
                )
            }
        },
        None => match from_flags.map(|f| EnvFilter::try_new(&f)) {
            Some(Ok(f)) => (f, None),
            _ => return,
        },
    };
    register_environment_secrets();
    let writer = Redacting::new(std::io::stderr);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false);
    // Another subscriber can only exist if this ran twice; the first one stays.
    let installed = match format {
        LogFormat::Json => builder.json().flatten_event(true).finish().try_init(),
        LogFormat::Text => builder.finish().try_init(),
    };
    ENABLED.store(installed.is_ok(), Ordering::Relaxed);
    if let Some(e) = rejected {
        tracing::warn!("ignoring `RUST_LOG`: {e}");
    }
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        "debug logs on; credentials and tokens are redacted"
    );
}

/// The credentials the AWS SDK reads from the environment, redacted by value on top of the
/// patterns.
fn register_environment_secrets() {
    for name in [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_WEB_IDENTITY_TOKEN",
    ] {
        if let Ok(v) = std::env::var(name) {
            add_secret(&v);
        }
    }
}

/// The workflow's webhook URLs, literal or read from the environment, redacted by value. Only
/// needed when logs are on.
pub fn register_workflow_secrets(workflow: &Workflow) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    for (_, step) in workflow.steps() {
        if let StepKind::Notify(n) = &step.kind {
            match &n.url {
                WebhookUrl::Literal(url) => add_secret_url(url),
                WebhookUrl::Env(var) => {
                    if let Ok(url) = std::env::var(var) {
                        add_secret_url(&url);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_is_a_valid_filter() {
        assert_eq!(filter_for(0), None);
        for v in 1..=4 {
            let f = filter_for(v).expect("a filter");
            assert!(EnvFilter::try_new(&f).is_ok(), "{f}");
        }
        let one = filter_for(1).unwrap_or_default();
        assert!(one.starts_with("warn,") && one.contains("eks_upgrade_core=info"));
        let two = filter_for(2).unwrap_or_default();
        for c in ["aws_smithy_runtime=debug", "kube=debug", "hyper=debug"] {
            assert!(two.contains(c), "{two}");
        }
        assert_eq!(filter_for(3).as_deref(), Some("trace"));
    }
}
