//! Recovery of a blue/green run. Blue is never changed in place, so there is nothing to restore
//! or roll back on it: what matters is where traffic is. If green never had weight, blue and
//! DNS are as they were and the run stopped (exit 3). If traffic moved, `onFailure` (which
//! starts with `switchBack`) must have put every request back on blue in one change: the run
//! reads the weights from Route 53 itself and checks blue's state before it says so (exit 4);
//! anything less needs a person (exit 5). Green is kept either way, for investigation.

use super::assess;
use super::run::{Engine, EngineError, PhaseEnd, in_flight, outcome};
use crate::cloud::connect::sibling;
use crate::events::{Event, Level};
use crate::exit::ExitStatus;
use crate::journal::StepStatus;
use crate::journal::{Outcome, RunResult};
use crate::steps::green::{self, GREEN};
use crate::steps::{Role, Step};
use crate::types::Phase;
use crate::workflow::Strategy;

impl Engine<'_> {
    pub(super) async fn recover_blue_green(&self) -> Result<Outcome, EngineError> {
        let Some(failure) = self.journal.read(|j| j.failure.clone()).await else {
            return self
                .finish_with(outcome(
                    ExitStatus::NeedsHuman,
                    RunResult::NeedsHuman,
                    "recovery started without a recorded failure",
                ))
                .await;
        };
        let blue = &self.conn.cluster.name;
        let kept = match self.journal.run_fact(&GREEN).await {
            Some(g) => format!("green `{}` is kept for investigation", g.name),
            None => "no green cluster was made".to_string(),
        };
        let failed = format!("`{}` failed ({})", failure.step.id, failure.message);
        let end = if self.workflow.on_failure.is_empty() {
            PhaseEnd::Done
        } else {
            self.say(Level::Error, &format!("{failed}; running onFailure"));
            self.reporter.emit(&Event::PhaseStarted {
                phase: "onFailure",
                hop: failure.step.hop,
            });
            self.run_phase(Phase::OnFailure, failure.step.hop, failure.version_before)
                .await?
        };
        if let PhaseEnd::InFlight { key, message } | PhaseEnd::Paused { key, message } = &end {
            return self.pause_with(in_flight(key, message)).await;
        }
        let recovery_failed = match &end {
            PhaseEnd::Failed { key, message } => {
                Some(format!("recovery step `{}` failed: {message}", key.id))
            }
            _ => None,
        };
        let traffic = self
            .workflow
            .blue_green
            .as_ref()
            .and_then(|b| b.traffic.as_ref());
        let points = green::traffic(self.journal).await;
        // Trust, then verify: the weights as Route 53 serves them now, read once. They also
        // catch a stage sent but not recorded (a crash between the two) before the run says
        // that no traffic moved; unreadable, only the journal can say.
        let weights = match traffic {
            Some(t) => green::dns_weights(self.conn, t)
                .await
                .map_err(|e| crate::errors::chain(&e)),
            None => Err("the workflow names no `spec.traffic`".to_string()),
        };
        let serves_green = weights.as_ref().is_ok_and(|w| w.green.unwrap_or(0) > 0);
        if !green::moved(&points) && !serves_green {
            let note = recovery_failed
                .map(|r| format!("; {r}"))
                .unwrap_or_default();
            return self
                .finish_with(outcome(
                    ExitStatus::Stopped,
                    RunResult::Stopped,
                    format!("{failed}; no traffic moved: blue `{blue}` and DNS are untouched; {kept}{note}"),
                ))
                .await;
        }
        if let Some(r) = recovery_failed {
            let by_hand = by_hand(self.conn, traffic).await;
            return self
                .finish_with(outcome(
                    ExitStatus::NeedsHuman,
                    RunResult::NeedsHuman,
                    format!("{failed}, after traffic had moved to green; then {r}; requests may still reach green; {kept}; a person must take over{by_hand}"),
                ))
                .await;
        }
        let state = assess::cluster_state(self.conn).await;
        self.journal
            .record_run_fact(&assess::FINAL_STATE, &state)
            .await?;
        let o = match weights {
            Ok(w) if w.all_blue() && state.unsupported.is_empty() => outcome(
                ExitStatus::Restored,
                RunResult::Restored,
                format!(
                    "{failed}, after traffic had moved to green; traffic is back on blue `{blue}` ({w}), switched in one change, and blue is healthy and supported; {kept}"
                ),
            ),
            Ok(w) if w.all_blue() => outcome(
                ExitStatus::NeedsHuman,
                RunResult::NeedsHuman,
                format!(
                    "{failed}; traffic is back on blue `{blue}` ({w}), but blue is not in a supported configuration: {}; a person must take over",
                    state.unsupported.join("; ")
                ),
            ),
            Ok(w) => outcome(
                ExitStatus::NeedsHuman,
                RunResult::NeedsHuman,
                format!(
                    "{failed}, after traffic had moved to green; recovery ran, but Route 53 still sends requests to green ({w}); {kept}; a person must take over{}",
                    by_hand(self.conn, traffic).await
                ),
            ),
            Err(e) => outcome(
                ExitStatus::NeedsHuman,
                RunResult::NeedsHuman,
                format!(
                    "{failed}, after traffic had moved to green; recovery ran, but the weights cannot be read back from Route 53: {e}; a person must check them"
                ),
            ),
        };
        self.finish_with(o).await
    }
}

/// The one command a person runs to put every request on blue, when the run could not; empty
/// when Route 53 cannot be read to write it. Asked only on the way to exit 5.
async fn by_hand(
    conn: &crate::cloud::connect::Connection,
    traffic: Option<&crate::steps::blue_green::Traffic>,
) -> String {
    match traffic {
        Some(t) => match green::switch_back_command(conn, t).await {
            Ok(c) => format!("; to put every request on blue: {c}"),
            Err(_) => String::new(),
        },
        None => String::new(),
    }
}

impl Engine<'_> {
    /// What a blue/green run does before a step. Once green is ready (its wait succeeded),
    /// every later step holds green's lease too, so no other run acts on green meanwhile; a
    /// step that deletes blue first gives blue's lease up, as the namespace it lives in goes
    /// with the cluster. Recovery never fails for want of green's lease: moving traffic back
    /// needs Route 53 only.
    pub(super) async fn before_step(&self, step: &Step, phase: Phase) -> Result<(), String> {
        if self.workflow.strategy() != Strategy::BlueGreen {
            return Ok(());
        }
        let roles = step.kind.roles();
        if roles.contains(&Role::RetiresBlue) && step.kind.needs_approval() {
            self.locks.release_blue().await;
            return Ok(());
        }
        if roles.contains(&Role::ProvidesGreen) || roles.contains(&Role::WaitsForGreen) {
            return Ok(());
        }
        let ready = self
            .journal
            .read(|j| {
                j.steps.iter().any(|s| {
                    s.status == StepStatus::Succeeded
                        && crate::steps::roles(&s.kind).contains(&Role::WaitsForGreen)
                })
            })
            .await;
        let Some(green) = self.journal.run_fact(&GREEN).await.filter(|_| ready) else {
            return Ok(());
        };
        let run_id = self.journal.read(|j| j.run_id.clone()).await;
        let taken = async {
            let conn = self
                .green
                .get_or_try_init(|| sibling(self.conn, &green.name))
                .await
                .map_err(|e| format!("cannot connect to green `{}`: {e}", green.name))?;
            self.locks
                .take_green(conn.kube.clone(), &self.workflow.velero.namespace, &run_id)
                .await
                .map_err(|e| format!("green `{}`: {e}", green.name))
        };
        match taken.await {
            Ok(()) => Ok(()),
            Err(e) if phase == Phase::OnFailure => {
                self.say(
                    Level::Warning,
                    &format!("{e}; recovery goes on without green's lock"),
                );
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}
