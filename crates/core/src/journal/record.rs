//! The journal: the durable record of a run. It is rewritten atomically before and after every
//! side effect ("about to create Backup X", "created Backup X with uid U", "UpdateClusterVersion
//! returned update I"), so a run killed at any point can be resumed without repeating or
//! duplicating anything.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::facts::Fact;
use crate::types::{Phase, Version};

/// The journal format this release writes (and the newest it reads). Version 2 added the
/// checksum (`seal.rs`).
pub const JOURNAL_VERSION: u32 = 2;

/// Where a step sits in a run: its section, its hop (for `upgrade` steps) and its id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepKey {
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hop: Option<Version>,
    pub id: String,
}

impl std::fmt::Display for StepKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.hop {
            Some(h) => write!(f, "{}[{h}].{}", self.phase.key(), self.id),
            None => write!(f, "{}.{}", self.phase.key(), self.id),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StepStatus {
    /// Started and not finished: on resume, the step re-attaches to what it started.
    Running,
    Succeeded,
    Failed,
    /// Not run because an earlier failure ended its section.
    Skipped,
}

/// One step's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    pub key: StepKey,
    pub kind: String,
    pub title: String,
    pub status: StepStatus,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// Facts written before and after side effects, by name: `backup`, `updateId`,
    /// `clientRequestToken`, `verification`… Steps read them back on resume.
    #[serde(default)]
    pub facts: BTreeMap<String, Value>,
    /// One line on what the step did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How many times the step was started (more than one after a resume).
    #[serde(default = "one")]
    pub attempts: u32,
}

fn one() -> u32 {
    1
}

/// Where the run's state machine is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum RunState {
    /// Created; nothing has touched the cluster.
    Started,
    Prepare,
    /// Running the steps of hop `hop` (1-based index into `hops`).
    Upgrade {
        hop: usize,
    },
    /// An upgrade step failed; recovery is running.
    Recovery,
    Finish,
    /// Finished; see `outcome`.
    Done,
}

/// What a run came to, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RunResult {
    /// Every hop done (exit 0).
    Succeeded,
    /// Already at the target (exit 0).
    NothingToDo,
    /// Stopped before changing anything (exit 3).
    Stopped,
    /// The maintenance window did not allow the next hop (exit 3, resumable).
    OutsideWindow,
    /// An upgrade step failed and recovery completed (exit 4).
    Restored,
    /// A person must take over (exit 5).
    NeedsHuman,
}

impl RunResult {
    /// The word used in the journal, the report and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Succeeded => "succeeded",
            RunResult::NothingToDo => "nothingToDo",
            RunResult::Stopped => "stopped",
            RunResult::OutsideWindow => "outsideWindow",
            RunResult::Restored => "restored",
            RunResult::NeedsHuman => "needsHuman",
        }
    }
}

impl std::fmt::Display for RunResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub result: RunResult,
    pub exit_code: u8,
    pub message: String,
}

/// The failure that sent the run into recovery, or stopped it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureRecord {
    pub step: StepKey,
    pub message: String,
    /// The control-plane version before the failed hop: what a rollback returns to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_before: Option<Version>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Journal {
    pub journal_version: u32,
    pub run_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub workflow_name: String,
    pub workflow_path: String,
    /// The workflow text as the run read it: a resume runs exactly this, whatever the file
    /// says by then.
    pub workflow_text: String,
    pub cluster: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The control-plane version when the run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_version: Option<Version>,
    #[serde(default)]
    pub hops: Vec<Version>,
    /// Hops whose `upgrade` steps all succeeded.
    #[serde(default)]
    pub completed_hops: Vec<Version>,
    pub state: RunState,
    #[serde(default)]
    pub steps: Vec<StepRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Whether the operator approved risky steps up front (`--yes`).
    #[serde(default)]
    pub approved: bool,
    /// Set when a signal stopped the run; `resume` continues from `state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted_at: Option<String>,
    /// Run-wide facts (the health baseline, the lock holder…).
    #[serde(default)]
    pub facts: BTreeMap<String, Value>,
}

impl StepRecord {
    /// A fact this step recorded, if it is there and has the fact's type.
    pub fn get<T: DeserializeOwned>(&self, fact: &Fact<T>) -> Option<T> {
        serde_json::from_value(self.facts.get(fact.name())?.clone()).ok()
    }
}

impl Journal {
    pub fn step(&self, key: &StepKey) -> Option<&StepRecord> {
        self.steps.iter().find(|s| &s.key == key)
    }

    pub fn step_mut(&mut self, key: &StepKey) -> Option<&mut StepRecord> {
        self.steps.iter_mut().find(|s| &s.key == key)
    }

    /// A fact recorded by any step of the run, most recent first: steps find the backup a
    /// `veleroBackup` step made, or a verification, by the step id they reference.
    pub fn fact_of<T: DeserializeOwned>(&self, step_id: &str, fact: &Fact<T>) -> Option<T> {
        self.steps
            .iter()
            .rev()
            .filter(|s| s.key.id == step_id)
            .find_map(|s| s.get(fact))
    }

    /// A run-wide fact.
    pub fn get<T: DeserializeOwned>(&self, fact: &Fact<T>) -> Option<T> {
        serde_json::from_value(self.facts.get(fact.name())?.clone()).ok()
    }

    pub fn is_finished(&self) -> bool {
        self.state == RunState::Done
    }
}

/// A run id: sortable by start time, unique enough to name Velero objects.
pub fn new_run_id() -> String {
    let now = chrono::Utc::now();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", now.format("%Y%m%dt%H%M%Sz"), &random[..6])
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
