//! The run state machine: prepare → upgrade (once per hop) → finish, and recovery when an
//! upgrade step fails, with the failure policy of the design and its exit codes. Every
//! transition and every step is journaled, so `resume` continues exactly where a run stopped.

use std::path::PathBuf;
use std::time::Duration;

use super::assess;
use crate::cloud::connect::Connection;
use crate::events::Reporter;
use crate::events::{Event, Level};
use crate::exit::ExitStatus;
use crate::journal::handle::JournalHandle;
use crate::journal::store::StoreError;
use crate::journal::{FailureRecord, Outcome, RunResult, RunState, StepKey};
use crate::steps::health::BASELINE;
use crate::types::Phase;
use crate::workflow::{StepKind, Workflow};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot write the journal: {0}")]
    Journal(#[from] StoreError),
}

/// How the run behaves, beyond the workflow.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `--yes`: approvals pass without asking.
    pub yes: bool,
    /// Enforce the maintenance window (unattended runs).
    pub enforce_window: bool,
    pub state_dir: PathBuf,
}

pub struct Engine<'a> {
    pub conn: &'a Connection,
    pub workflow: &'a Workflow,
    pub journal: &'a JournalHandle,
    pub reporter: &'a dyn Reporter,
    pub options: RunOptions,
    /// Blue's lease, and green's once a blue/green run has taken it.
    pub locks: &'a super::locks::LockSet,
    /// The connection to green in a blue/green run, made when a step first needs it.
    pub green: crate::steps::green::GreenSlot,
}

/// What a phase of steps ended with.
pub(super) enum PhaseEnd {
    Done,
    Failed {
        key: StepKey,
        message: String,
    },
    /// A step's AWS operation outlived the step's timeout and is still running.
    InFlight {
        key: StepKey,
        message: String,
    },
    /// A step must wait past the maintenance window (a soak).
    Paused {
        key: StepKey,
        message: String,
    },
}

/// A step left an AWS operation running past its timeout: stop, resumable, for a person to
/// decide whether to wait longer.
pub(super) fn in_flight(key: &StepKey, message: &str) -> Outcome {
    outcome(
        ExitStatus::NeedsHuman,
        RunResult::NeedsHuman,
        format!(
            "`{}` is still waiting on AWS: {message}; nothing was rolled back, and `eks-upgrade resume` continues the run",
            key.id
        ),
    )
}

/// A step must wait past the maintenance window: stop, resumable; the next run in a window
/// continues.
fn paused(key: &StepKey, message: &str) -> Outcome {
    outcome(
        ExitStatus::Stopped,
        RunResult::OutsideWindow,
        format!(
            "`{}` paused the run: {message}; `eks-upgrade resume` (or the next scheduled run) continues it",
            key.id
        ),
    )
}

pub(super) fn outcome(
    status: ExitStatus,
    result: RunResult,
    message: impl Into<String>,
) -> Outcome {
    Outcome {
        result,
        exit_code: status.code(),
        message: message.into(),
    }
}

impl Engine<'_> {
    pub(super) fn say(&self, level: Level, message: &str) {
        self.reporter.emit(&Event::Message { level, message });
    }

    /// Runs (or continues) the run until it ends or a window closes. Returns the outcome.
    pub async fn execute(&self) -> Result<Outcome, EngineError> {
        loop {
            let state = self.journal.read(|j| j.state.clone()).await;
            match state {
                RunState::Started => {
                    let hops = self.journal.read(|j| j.hops.clone()).await;
                    if hops.is_empty() {
                        return self
                            .finish_with(outcome(
                                ExitStatus::Success,
                                RunResult::NothingToDo,
                                "the cluster is already at the target version",
                            ))
                            .await;
                    }
                    if let Some(o) = self.window_closed(0).await {
                        return self.finish_with(o).await;
                    }
                    self.journal.update(|j| j.state = RunState::Prepare).await?;
                }
                RunState::Prepare => {
                    if let Some(stop) = self.record_baseline().await? {
                        return self.finish_with(stop).await;
                    }
                    self.reporter.emit(&Event::PhaseStarted {
                        phase: "prepare",
                        hop: None,
                    });
                    match self.run_phase(Phase::Prepare, None, None).await? {
                        PhaseEnd::Done => {
                            self.journal
                                .update(|j| j.state = RunState::Upgrade { hop: 1 })
                                .await?
                        }
                        PhaseEnd::InFlight { key, message } => {
                            return self.pause_with(in_flight(&key, &message)).await;
                        }
                        PhaseEnd::Paused { key, message } => {
                            return self.pause_with(paused(&key, &message)).await;
                        }
                        PhaseEnd::Failed { key, message } => {
                            return self.finish_with(outcome(ExitStatus::Stopped, RunResult::Stopped, format!("stopped before changing the cluster: `{}` failed: {message}", key.id))).await;
                        }
                    }
                }
                RunState::Upgrade { hop } => {
                    let (hops, start) = self
                        .journal
                        .read(|j| (j.hops.clone(), j.start_version))
                        .await;
                    let Some(&version) = hops.get(hop.saturating_sub(1)) else {
                        self.journal.update(|j| j.state = RunState::Finish).await?;
                        continue;
                    };
                    let before = if hop <= 1 {
                        start
                    } else {
                        hops.get(hop - 2).copied()
                    };
                    let started = self
                        .journal
                        .read(|j| {
                            j.steps.iter().any(|s| {
                                s.key.phase == Phase::Upgrade && s.key.hop == Some(version)
                            })
                        })
                        .await;
                    if !started && let Some(o) = self.window_closed(hop).await {
                        return self.pause_with(o).await;
                    }
                    self.reporter.emit(&Event::PhaseStarted {
                        phase: "upgrade",
                        hop: Some(version),
                    });
                    match self
                        .run_phase(Phase::Upgrade, Some(version), before)
                        .await?
                    {
                        PhaseEnd::Done => {
                            self.journal
                                .update(|j| {
                                    if !j.completed_hops.contains(&version) {
                                        j.completed_hops.push(version);
                                    }
                                    j.state = RunState::Upgrade { hop: hop + 1 };
                                })
                                .await?
                        }
                        PhaseEnd::InFlight { key, message } => {
                            return self.pause_with(in_flight(&key, &message)).await;
                        }
                        PhaseEnd::Paused { key, message } => {
                            return self.pause_with(paused(&key, &message)).await;
                        }
                        PhaseEnd::Failed { key, message } => {
                            self.journal
                                .update(|j| {
                                    j.failure = Some(FailureRecord {
                                        step: key,
                                        message,
                                        version_before: before,
                                    });
                                    j.state = RunState::Recovery;
                                })
                                .await?
                        }
                    }
                }
                RunState::Recovery => return self.recover().await,
                RunState::Finish => {
                    if !self.workflow.finish.is_empty() {
                        self.reporter.emit(&Event::PhaseStarted {
                            phase: "finish",
                            hop: None,
                        });
                    }
                    let target = self.journal.read(|j| j.hops.last().copied()).await;
                    let message = match self.run_phase(Phase::Finish, None, None).await? {
                        PhaseEnd::Done => format!(
                            "the cluster is at {}",
                            target.map(|v| v.to_string()).unwrap_or_default()
                        ),
                        // The upgrade itself succeeded; a failed post-upgrade step is reported, not
                        // recovered from.
                        PhaseEnd::InFlight { key, message } => {
                            return self.pause_with(in_flight(&key, &message)).await;
                        }
                        PhaseEnd::Paused { key, message } => {
                            return self.pause_with(paused(&key, &message)).await;
                        }
                        PhaseEnd::Failed { key, message } => {
                            self.say(
                                Level::Warning,
                                &format!("finish step `{}` failed: {message}", key.id),
                            );
                            format!(
                                "the cluster is at {}; finish step `{}` failed",
                                target.map(|v| v.to_string()).unwrap_or_default(),
                                key.id
                            )
                        }
                    };
                    return self
                        .finish_with(outcome(ExitStatus::Success, RunResult::Succeeded, message))
                        .await;
                }
                RunState::Done => {
                    let o = self.journal.read(|j| j.outcome.clone()).await;
                    return Ok(o.unwrap_or_else(|| {
                        outcome(
                            ExitStatus::Success,
                            RunResult::Succeeded,
                            "the run had already finished",
                        )
                    }));
                }
            }
        }
    }

    pub(super) async fn finish_with(&self, o: Outcome) -> Result<Outcome, EngineError> {
        let stored = o.clone();
        self.journal
            .update(|j| {
                j.outcome = Some(stored);
                j.state = RunState::Done;
                j.interrupted_at = None;
            })
            .await?;
        self.notify_end(&o).await;
        Ok(o)
    }

    /// Tells the webhooks `notify` steps subscribed how the run ended. Failures are logged only.
    async fn notify_end(&self, o: &Outcome) {
        use crate::steps::notify::{self, NotifyEvent, SUBSCRIPTION, Subscription};
        let event = if o.exit_code == 0 {
            NotifyEvent::Success
        } else {
            NotifyEvent::Failure
        };
        let subscriptions: Vec<Subscription> = self
            .journal
            .read(|j| {
                j.steps
                    .iter()
                    .filter_map(|s| s.get(&SUBSCRIPTION))
                    .collect()
            })
            .await;
        for sub in subscriptions.iter().filter(|s| s.on.contains(&event)) {
            let url = self.workflow.steps().find_map(|(_, s)| match &s.kind {
                StepKind::Notify(n) if s.id == sub.step => n.url.resolve(),
                _ => None,
            });
            let Some(url) = url else {
                continue;
            };
            let text = notify::message(
                event,
                &self.workflow.name,
                &self.conn.cluster.name,
                &format!("{} (exit code {})", o.message, o.exit_code),
            );
            if let Err(e) = notify::post(
                &url,
                &text,
                Duration::from_millis(sub.timeout_ms),
                sub.retries,
            )
            .await
            {
                self.say(
                    Level::Warning,
                    &format!("notification `{}` failed: {e}", sub.step),
                );
            }
        }
    }

    /// Stops without finishing: the journal keeps its state, so `resume` continues later.
    pub(super) async fn pause_with(&self, o: Outcome) -> Result<Outcome, EngineError> {
        let stored = o.clone();
        self.journal.update(|j| j.outcome = Some(stored)).await?;
        Ok(o)
    }

    /// Records the cluster's health before any change. Health checks after a hop count only
    /// what is new or worse than this; without it every problem the cluster already had would
    /// look like a regression and trigger a restore and rollback, so a baseline that cannot be
    /// read stops the run before it changes anything.
    async fn record_baseline(&self) -> Result<Option<Outcome>, EngineError> {
        if self
            .journal
            .read(|j| j.facts.contains_key(BASELINE.name()))
            .await
        {
            return Ok(None);
        }
        // As long as the workflow gives a health check: the Kubernetes client retries an
        // overloaded API server for minutes, and the run should stop sooner than that.
        let bound = self
            .workflow
            .steps()
            .filter_map(|(_, s)| match &s.kind {
                crate::steps::StepKind::HealthCheck(h) => Some(h.timeout.0),
                _ => None,
            })
            .min()
            .unwrap_or(std::time::Duration::from_secs(120))
            .max(crate::steps::health::LOOK_AT_LEAST);
        let read = crate::steps::health::snapshot(self.conn.kube.clone(), None);
        let read = match tokio::time::timeout(bound, read).await {
            Ok(read) => read.map_err(|e| crate::errors::kube(&e)),
            Err(_) => Err(format!(
                "the cluster did not answer within {}",
                crate::types::HumanDuration(bound)
            )),
        };
        match read {
            Ok(snap) => {
                if !snap.problems.is_empty() {
                    self.say(Level::Warning, &format!("{} problems existed before the upgrade; health checks will not count them unless they get worse", snap.problems.len()));
                }
                self.journal.record_run_fact(&BASELINE, &snap).await?;
                Ok(None)
            }
            Err(e) => Ok(Some(outcome(
                ExitStatus::Stopped,
                RunResult::Stopped,
                format!(
                    "stopped before changing the cluster: cannot record the health baseline the checks after each hop compare with: {e}"
                ),
            ))),
        }
    }

    /// The outcome to stop with when the maintenance window does not allow hop `hop` (0 = the
    /// run's start) now.
    async fn window_closed(&self, hop: usize) -> Option<Outcome> {
        if !self.options.enforce_window {
            return None;
        }
        let window = self.workflow.window.as_ref()?;
        let now = chrono::Utc::now();
        let completed = self.journal.read(|j| j.completed_hops.clone()).await;
        let done = if completed.is_empty() {
            String::new()
        } else {
            format!(
                " Hops completed: {}.",
                completed
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let next = window
            .next(now)
            .map(|o| o.start.to_rfc3339())
            .unwrap_or_else(|| "never".into());
        match window.remaining(now) {
            None => Some(outcome(
                ExitStatus::Stopped,
                RunResult::OutsideWindow,
                format!("outside the maintenance window; it next opens at {next}.{done}"),
            )),
            Some(left) => {
                let need = self.expected_hop_duration();
                (hop > 0 && left < need).then(|| {
                    outcome(
                        ExitStatus::Stopped,
                        RunResult::OutsideWindow,
                        format!("the next hop usually takes {}, but the window closes in {}; it waits for the next window ({next}).{done}", crate::types::HumanDuration(need), crate::types::HumanDuration(Duration::from_secs(left.as_secs()))),
                    )
                })
            }
        }
    }

    /// How long the maintenance window stays open, when this run must keep to one.
    pub(super) fn window_left(&self) -> Option<Duration> {
        if !self.options.enforce_window {
            return None;
        }
        let window = self.workflow.window.as_ref()?;
        Some(window.remaining(chrono::Utc::now()).unwrap_or_default())
    }

    /// A hop's usual duration: what EKS typically takes for each of its steps.
    fn expected_hop_duration(&self) -> Duration {
        let minutes: u64 = self
            .workflow
            .upgrade
            .iter()
            .map(|s| s.kind.typical_minutes())
            .sum();
        Duration::from_secs(minutes * 60)
    }

    async fn recover(&self) -> Result<Outcome, EngineError> {
        if self.workflow.strategy() == crate::workflow::Strategy::BlueGreen {
            return self.recover_blue_green().await;
        }
        let failure = self.journal.read(|j| j.failure.clone()).await;
        let Some(failure) = failure else {
            return self
                .finish_with(outcome(
                    ExitStatus::NeedsHuman,
                    RunResult::NeedsHuman,
                    "recovery started without a recorded failure",
                ))
                .await;
        };
        let completed = self.journal.read(|j| j.completed_hops.clone()).await;
        let hops_done = if completed.is_empty() {
            "no hop completed".to_string()
        } else {
            format!(
                "hops completed: {}",
                completed
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        if self.workflow.on_failure.is_empty() {
            return self
                .finish_with(outcome(
                    ExitStatus::NeedsHuman,
                    RunResult::NeedsHuman,
                    format!(
                        "`{}` failed ({}) and the workflow has no `onFailure` steps; {hops_done}",
                        failure.step.id, failure.message
                    ),
                ))
                .await;
        }
        self.say(
            Level::Error,
            &format!(
                "`{}` failed: {}; running onFailure",
                failure.step, failure.message
            ),
        );
        self.reporter.emit(&Event::PhaseStarted {
            phase: "onFailure",
            hop: failure.step.hop,
        });
        match self.run_phase(Phase::OnFailure, failure.step.hop, failure.version_before).await? {
            PhaseEnd::Done => {
                // Restored means healthy *and* supported: a kubelet or an add-on left newer than
                // the control plane is a cluster a person must finish.
                let state = assess::cluster_state(self.conn).await;
                self.journal.record_run_fact(&assess::FINAL_STATE, &state).await?;
                if state.unsupported.is_empty() {
                    self.finish_with(outcome(
                        ExitStatus::Restored,
                        RunResult::Restored,
                        format!("`{}` failed ({}); recovery completed, and the cluster is healthy and in a supported configuration again; {hops_done}", failure.step.id, failure.message),
                    ))
                    .await
                } else {
                    self.finish_with(outcome(
                        ExitStatus::NeedsHuman,
                        RunResult::NeedsHuman,
                        format!("`{}` failed ({}); recovery ran, but the cluster is not in a supported configuration: {}; {hops_done}; a person must take over", failure.step.id, failure.message, state.unsupported.join("; ")),
                    ))
                    .await
                }
            }
            PhaseEnd::InFlight { key, message } | PhaseEnd::Paused { key, message } => {
                return self.pause_with(in_flight(&key, &message)).await;
            }
                        PhaseEnd::Failed { key, message } => {
                self.finish_with(outcome(
                    ExitStatus::NeedsHuman,
                    RunResult::NeedsHuman,
                    format!("`{}` failed ({}), then recovery step `{}` failed: {message}; {hops_done}; a person must take over", failure.step.id, failure.message, key.id),
                ))
                .await
            }
        }
    }
}
