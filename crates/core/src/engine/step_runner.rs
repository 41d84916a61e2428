//! Running the steps of a section: skipping what already succeeded, journaling each step before
//! and after it runs, and recording the steps a failure leaves unrun.

use std::time::Instant;

use super::run::{Engine, EngineError, PhaseEnd};
use crate::events::{Event, Level};
use crate::journal::{StepKey, StepRecord, StepStatus, now};
use crate::steps::Step;
use crate::steps::{StepCtx, StepError};
use crate::types::Phase;
use crate::types::Version;

/// How one step ended.
enum StepEnd {
    Done,
    Failed(String),
    InFlight(String),
    /// The step waits longer than the run may (a soak past the window).
    Paused(String),
}

impl Engine<'_> {
    /// Runs the steps of a section in order; the first failure ends the section.
    pub(super) async fn run_phase(
        &self,
        phase: Phase,
        hop: Option<Version>,
        before: Option<Version>,
    ) -> Result<PhaseEnd, EngineError> {
        for step in self.workflow.phase(phase) {
            let key = StepKey {
                phase,
                hop,
                id: step.id.clone(),
            };
            let message = match self.run_step(step, &key, hop, before).await? {
                StepEnd::Done => continue,
                StepEnd::InFlight(message) => return Ok(PhaseEnd::InFlight { key, message }),
                StepEnd::Paused(message) => return Ok(PhaseEnd::Paused { key, message }),
                StepEnd::Failed(message) => message,
            };
            {
                let rest: Vec<StepKey> = self
                    .workflow
                    .phase(phase)
                    .iter()
                    .skip_while(|s| s.id != step.id)
                    .skip(1)
                    .map(|s| StepKey {
                        phase,
                        hop,
                        id: s.id.clone(),
                    })
                    .collect();
                self.skip(step, rest).await?;
                return Ok(PhaseEnd::Failed { key, message });
            }
        }
        Ok(PhaseEnd::Done)
    }

    /// Records the steps a failure left unrun, so the report shows them.
    async fn skip(&self, _failed: &Step, rest: Vec<StepKey>) -> Result<(), EngineError> {
        let steps: Vec<(StepKey, String, String)> = rest
            .into_iter()
            .filter_map(|k| {
                self.workflow
                    .phase(k.phase)
                    .iter()
                    .find(|s| s.id == k.id)
                    .map(|s| (k, s.kind.key().to_string(), s.title()))
            })
            .collect();
        self.journal
            .update(|j| {
                for (key, kind, title) in steps {
                    if j.step(&key).is_none() {
                        j.steps.push(StepRecord {
                            key,
                            kind,
                            title,
                            status: StepStatus::Skipped,
                            started_at: now(),
                            ended_at: Some(now()),
                            facts: Default::default(),
                            summary: Some("skipped after an earlier failure".into()),
                            error: None,
                            attempts: 0,
                        });
                    }
                }
            })
            .await?;
        Ok(())
    }

    /// Runs one step unless it already succeeded. Returns the failure message, if any.
    async fn run_step(
        &self,
        step: &Step,
        key: &StepKey,
        hop: Option<Version>,
        before: Option<Version>,
    ) -> Result<StepEnd, EngineError> {
        let previous = self
            .journal
            .read(|j| {
                j.step(key)
                    .map(|s| (s.status, s.summary.clone(), s.error.clone()))
            })
            .await;
        match previous {
            Some((StepStatus::Succeeded, summary, _)) => {
                self.say(
                    Level::Info,
                    &format!("{key}: already done ({})", summary.unwrap_or_default()),
                );
                return Ok(StepEnd::Done);
            }
            Some((StepStatus::Failed, _, error)) => {
                return Ok(StepEnd::Failed(
                    error.unwrap_or_else(|| "failed earlier".into()),
                ));
            }
            _ => {}
        }
        let title = step.title();
        self.journal
            .update(|j| match j.step_mut(key) {
                Some(r) => {
                    r.status = StepStatus::Running;
                    r.attempts += 1;
                }
                None => j.steps.push(StepRecord {
                    key: key.clone(),
                    kind: step.kind.key().into(),
                    title: title.clone(),
                    status: StepStatus::Running,
                    started_at: now(),
                    ended_at: None,
                    facts: Default::default(),
                    summary: None,
                    error: None,
                    attempts: 1,
                }),
            })
            .await?;
        self.reporter.emit(&Event::StepStarted {
            step: key,
            kind: step.kind.key(),
            title: &title,
        });
        let started = Instant::now();
        let run_id = self.journal.read(|j| j.run_id.clone()).await;
        let ctx = StepCtx {
            conn: self.conn,
            workflow_name: &self.workflow.name,
            velero: &self.workflow.velero,
            coverage: self.workflow.coverage(),
            run_id: &run_id,
            key,
            hop,
            version_before: before,
            journal: self.journal,
            reporter: self.reporter,
            approved: self.options.yes,
            window_left: self.window_left(),
            state_dir: &self.options.state_dir,
            last_progress: Default::default(),
            green: &self.green,
        };
        let run = async {
            match self.before_step(step, key.phase).await {
                Ok(()) => step.kind.run(&ctx).await,
                Err(refused) => Err(StepError::Failed(refused)),
            }
        };
        let result = match run.await {
            // The journal cannot be written: stop, keeping the store's error as it is.
            Err(StepError::Journal(e)) => return Err(EngineError::Journal(e)),
            other => other,
        };
        let (status, summary, error) = match &result {
            Ok(s) => (StepStatus::Succeeded, s.clone(), None),
            // Still running on AWS, or waiting past the window: the record stays `running`, so
            // `resume` re-attaches.
            Err(e @ (StepError::InFlight(_) | StepError::Paused(_))) => {
                (StepStatus::Running, e.to_string(), Some(e.to_string()))
            }
            Err(e) => (StepStatus::Failed, e.to_string(), Some(e.to_string())),
        };
        self.journal
            .update(|j| {
                if let Some(r) = j.step_mut(key) {
                    r.status = status;
                    r.ended_at = Some(now());
                    r.summary = Some(summary.clone());
                    r.error = error.clone();
                }
            })
            .await?;
        self.reporter.emit(&Event::StepFinished {
            step: key,
            title: &title,
            status,
            summary: &summary,
            duration_ms: started.elapsed().as_millis() as u64,
        });
        let paused = matches!(result, Err(StepError::Paused(_)));
        Ok(match (status, error) {
            (_, None) => StepEnd::Done,
            (StepStatus::Running, Some(e)) if paused => StepEnd::Paused(e),
            (StepStatus::Running, Some(e)) => StepEnd::InFlight(e),
            (_, Some(e)) => StepEnd::Failed(e),
        })
    }
}
