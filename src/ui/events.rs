//! What a run reports as it goes. One event type serves every face: the JSON log serializes it,
//! the text log formats it, the terminal draws it as progress.

use serde::Serialize;

use crate::engine::journal::{StepKey, StepStatus};
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
