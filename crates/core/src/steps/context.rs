//! What a running step may use, and how it ends.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::checks::Coverage;
use crate::cloud::connect::Connection;
use crate::cloud::eks::EksError;
use crate::events::{Event, Level, Reporter};
use crate::journal::handle::JournalHandle;
use crate::journal::store::StoreError;
use crate::journal::{Fact, StepKey};
use crate::types::Version;
use crate::velero;

/// A boxed cause: the error a step failure comes from, kept whole for its chain of sources.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The step found the cluster, or its own work, not as it should be; the message says why.
    #[error("{0}")]
    Failed(String),
    /// An operation the step started on AWS is still running after the step's timeout. It is
    /// not a failure to recover from: the run stops, resumable, and `resume` re-attaches.
    #[error("{0}")]
    InFlight(String),
    /// The step must wait longer than the run may (a soak past the maintenance window): the run
    /// stops, resumable, and the next run continues the step.
    #[error("{0}")]
    Paused(String),
    /// The journal could not be written: continuing would risk repeating side effects.
    #[error("cannot write the journal: {0}")]
    Journal(#[from] StoreError),
    /// An EKS call failed.
    #[error(transparent)]
    Eks(#[from] EksError),
    /// EKS refused to move the control plane. `by_insights` when readiness insights block it
    /// (`force` overrides those), otherwise the request itself is not allowed.
    #[error("{message}")]
    Refused {
        by_insights: bool,
        message: String,
        #[source]
        source: EksError,
    },
    /// EKS kept answering that another update holds the cluster until the step's timeout.
    #[error("{message}")]
    Busy {
        message: String,
        #[source]
        source: EksError,
    },
    /// A call failed while the step was doing what `context` says.
    #[error("{context}: {}", crate::errors::chain(source.as_ref()))]
    Call {
        context: String,
        #[source]
        source: Cause,
    },
    /// A call failed, and its own message says what the step was doing.
    #[error("{}", crate::errors::chain(.0.as_ref()))]
    Cause(#[source] Cause),
    /// A call failed; `note` says what that leaves behind.
    #[error("{}; {note}", crate::errors::chain(source.as_ref()))]
    Noted {
        #[source]
        source: Cause,
        note: &'static str,
    },
}

/// Turns any error into a step failure that keeps it as the cause.
pub trait Context<T> {
    /// The error as the cause, after what the step was doing: `cannot read Backup `b`: …`.
    fn context(self, what: impl FnOnce() -> String) -> Result<T, StepError>;
    /// The error as the cause, when its message already says what was being done.
    fn cause(self) -> Result<T, StepError>;
    /// The error as the cause, followed by what it leaves behind.
    fn note(self, note: &'static str) -> Result<T, StepError>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> Context<T> for Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, StepError> {
        self.map_err(|e| StepError::Call {
            context: what(),
            source: Box::new(e),
        })
    }

    fn cause(self) -> Result<T, StepError> {
        self.map_err(|e| StepError::Cause(Box::new(e)))
    }

    fn note(self, note: &'static str) -> Result<T, StepError> {
        self.map_err(|e| StepError::Noted {
            source: Box::new(e),
            note,
        })
    }
}

pub type StepResult = Result<String, StepError>;

/// Everything a step may use.
pub struct StepCtx<'a> {
    pub conn: &'a Connection,
    /// The workflow's name, for messages sent outside the run (webhooks).
    pub workflow_name: &'a str,
    /// Where Velero runs.
    pub velero: &'a velero::Settings,
    /// What the workflow's hops move besides the control plane.
    pub coverage: Coverage,
    pub run_id: &'a str,
    pub key: &'a StepKey,
    /// The version this hop upgrades to (`upgrade` steps), or the failed hop's (`onFailure`).
    pub hop: Option<Version>,
    /// The control-plane version before the current or failed hop: what a rollback returns to.
    pub version_before: Option<Version>,
    pub journal: &'a JournalHandle,
    pub reporter: &'a dyn Reporter,
    /// `--yes`: approval steps pass without asking.
    pub approved: bool,
    /// How long the maintenance window stays open, when the run must keep to one.
    pub window_left: Option<std::time::Duration>,
    pub state_dir: &'a Path,
    /// When progress was last reported, and what it said.
    pub last_progress: std::sync::Mutex<(Option<std::time::Instant>, String)>,
    /// The connection to green in a blue/green run, made when a step first asks for it.
    pub green: &'a super::green::GreenSlot,
}

impl StepCtx<'_> {
    /// Reports progress. Repeats of the same message are dropped, and a changing message is
    /// passed on at most once a second, so a fast loop never floods a log.
    pub fn progress(&self, message: &str, done: Option<u64>, total: Option<u64>) {
        let Ok(mut last) = self.last_progress.lock() else {
            return;
        };
        let finished = done.is_some() && done == total;
        let same = last.1 == message;
        let recent = last
            .0
            .is_some_and(|w| w.elapsed() < std::time::Duration::from_secs(1));
        if !finished && (same || recent) {
            return;
        }
        *last = (Some(std::time::Instant::now()), message.to_string());
        drop(last);
        self.reporter.emit(&Event::StepProgress {
            step: self.key,
            message,
            done,
            total,
        });
    }

    /// A line for the step's log (a tool's output, say), never throttled.
    pub fn log(&self, line: &str) {
        self.reporter.emit(&Event::Message {
            level: Level::Info,
            message: &format!("{}: {line}", self.key),
        });
    }

    pub fn warn(&self, message: &str) {
        self.reporter.emit(&Event::Message {
            level: Level::Warning,
            message,
        });
    }

    /// A fact this step recorded in an earlier attempt.
    pub async fn fact<T: DeserializeOwned>(&self, fact: &Fact<T>) -> Option<T> {
        self.journal.fact(self.key, fact).await
    }

    /// Records a fact durably before returning.
    pub async fn record<T: Serialize>(&self, fact: &Fact<T>, value: &T) -> Result<(), StepError> {
        Ok(self.journal.record(self.key, fact, value).await?)
    }

    /// A fact recorded by another step of the run, found by its id.
    pub async fn fact_of<T: DeserializeOwned>(&self, step_id: &str, fact: &Fact<T>) -> Option<T> {
        self.journal.fact_of(step_id, fact).await
    }

    pub fn cluster(&self) -> &str {
        &self.conn.cluster.name
    }

    /// The green cluster of a blue/green run, as `createGreen` or `adoptGreen` recorded it.
    pub async fn green_cluster(&self) -> Result<super::green::GreenCluster, StepError> {
        self.journal
            .run_fact(&super::green::GREEN)
            .await
            .ok_or_else(|| {
                StepError::Failed(
                    "no green cluster is recorded: `createGreen` or `adoptGreen` runs first".into(),
                )
            })
    }

    /// A connection to green, made once per process from the recorded name: the same AWS
    /// configuration, green's own endpoint, certificate and token.
    pub async fn green(&self) -> Result<&Connection, StepError> {
        let green = self.green_cluster().await?;
        self.green
            .get_or_try_init(|| crate::cloud::connect::sibling(self.conn, &green.name))
            .await
            .context(|| format!("cannot connect to green cluster `{}`", green.name))
    }

    pub fn hop(&self) -> Result<Version, StepError> {
        self.hop
            .ok_or_else(|| StepError::Failed("this step runs only within a hop".into()))
    }
}

/// The name of a Velero object a step creates: unique per run (and so per bucket), stable across
/// resumes, at most 63 characters.
pub fn object_name(run_id: &str, step_id: &str) -> String {
    let name = format!("eks-upgrade-{run_id}-{step_id}");
    let trimmed: String = name.chars().take(63).collect();
    trimmed.trim_end_matches('-').to_string()
}
