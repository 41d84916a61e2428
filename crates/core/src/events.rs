//! What a run reports as it goes, and the interface it reports through. One event type serves
//! every face: the JSON log serializes it, the text log formats it, the terminal draws it as
//! progress. The faces themselves (a terminal with progress bars and prompts, log lines) live in
//! the binary, above everything that emits events, as in uv's reporters.

use serde::Serialize;

use crate::journal::{StepKey, StepStatus};
use crate::types::Version;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum Event<'a> {
    #[serde(rename_all = "camelCase")]
    RunStarted {
        run_id: &'a str,
        workflow: &'a str,
        cluster: &'a str,
        region: &'a str,
        from: Option<Version>,
        hops: &'a [Version],
        resumed: bool,
    },
    #[serde(rename_all = "camelCase")]
    PhaseStarted {
        phase: &'a str,
        hop: Option<Version>,
    },
    #[serde(rename_all = "camelCase")]
    StepStarted {
        step: &'a StepKey,
        kind: &'a str,
        title: &'a str,
    },
    #[serde(rename_all = "camelCase")]
    StepProgress {
        step: &'a StepKey,
        message: &'a str,
        done: Option<u64>,
        total: Option<u64>,
    },
    #[serde(rename_all = "camelCase")]
    StepFinished {
        step: &'a StepKey,
        title: &'a str,
        status: StepStatus,
        summary: &'a str,
        duration_ms: u64,
    },
    #[serde(rename_all = "camelCase")]
    Message { level: Level, message: &'a str },
    #[serde(rename_all = "camelCase")]
    RunFinished {
        run_id: &'a str,
        result: &'a str,
        exit_code: u8,
        message: &'a str,
        duration_ms: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    #[error("a confirmation is needed, but there is no terminal to ask on")]
    NoTerminal,
    #[error("the prompt failed: {0}")]
    Failed(String),
}

/// How a run talks to whoever started it.
pub trait Reporter: Send + Sync {
    fn emit(&self, event: &Event<'_>);
    /// Asks a yes/no question. Unattended reporters refuse rather than hang.
    fn confirm(&self, question: &str) -> Result<bool, PromptError>;
    /// Picks one of `items`. Unattended reporters refuse.
    fn select(&self, prompt: &str, items: &[String], default: usize) -> Result<usize, PromptError>;
    fn interactive(&self) -> bool;
}
