//! Before a resumed run acts: the journal's facts checked against EKS and against themselves.
//!
//! A journal that reads well can still be wrong: edited by hand, restored from an old copy, or
//! a version 1 journal that has no checksum. What it claims decides what the run does next — a
//! hop counted as completed is never upgraded again, and a run in `recovery` restores the
//! backup and rolls the control plane back — so a wrong claim can end a half-finished upgrade
//! as "succeeded", or undo a good one. The rules here hold for every journal a run can write
//! (a crash at any write keeps them), so a disagreement means the journal or the cluster was
//! changed behind the run's back: the run stops with exit 5, changing nothing, for a person.
//!
//! - hops go one minor version at a time from the version the run started at, and the
//!   completed hops are the first of them, as many as the run's state implies;
//! - a hop counted as completed is shown by EKS: the control plane is at it or past it, its
//!   recorded update succeeded there, and all its upgrade steps succeeded;
//! - the control plane is where the state says it can be (before or at the current hop; during
//!   recovery, at the failed hop or the version before it), and no version update the run did
//!   not start is in progress;
//! - recovery (restore, rollback) runs only when the journal proves the failure: the failed
//!   step is recorded as `failed` with its error.

use std::collections::BTreeMap;

use super::run::{Engine, EngineError};
use crate::cloud::connect::describe_cluster;
use crate::cloud::eks::{self, UpdateOf, UpdateState};
use crate::events::Level;
use crate::exit::ExitStatus;
use crate::journal::{Journal, Outcome, RunResult, RunState, StepStatus};
use crate::steps::control_plane::UPDATE_ID;
use crate::types::{Phase, Version};

/// What EKS shows, as far as the journal's claims go.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The control plane's version.
    pub version: Version,
    /// The control-plane updates the journal recorded, by id: `None` when EKS does not know it.
    pub updates: BTreeMap<String, Option<UpdateState>>,
    /// Control-plane version updates in progress.
    pub in_progress: Vec<UpdateState>,
}

impl Engine<'_> {
    /// Checks a resumed run's journal against EKS. `Some(outcome)` when the run must not go
    /// on; a disagreement is journaled as the run's outcome (exit 5), leaving its state as it
    /// was, so that `runs` and the scheduled helper show it.
    pub async fn verify_resume(&self) -> Result<Option<Outcome>, EngineError> {
        let journal = self.journal.snapshot().await;
        if journal.state == RunState::Done {
            return Ok(None);
        }
        let problems = if self.workflow.strategy() == crate::workflow::Strategy::BlueGreen {
            self.observe_blue_green(&journal)
                .await
                .map(|seen| blue_green::disagreements(&journal, &seen))
        } else {
            self.observe(&journal)
                .await
                .map(|seen| disagreements(&journal, &seen))
        };
        let problems = match problems {
            Ok(p) => p,
            Err(e) => {
                return Ok(Some(Outcome {
                    result: RunResult::Stopped,
                    exit_code: ExitStatus::Stopped.code(),
                    message: format!(
                        "cannot check the journal against EKS before resuming: {e}; nothing was done, and `eks-upgrade resume {}` tries again",
                        journal.run_id
                    ),
                }));
            }
        };
        if problems.is_empty() {
            return Ok(None);
        }
        for p in &problems {
            self.say(Level::Error, p);
        }
        let outcome = Outcome {
            result: RunResult::NeedsHuman,
            exit_code: ExitStatus::NeedsHuman.code(),
            message: format!(
                "the journal does not match the cluster ({}); nothing was done: compare `eks-upgrade status {id}` with EKS, then resume once they agree, or acknowledge the run (`EKS_UPGRADE_ACKNOWLEDGED_RUN={id}`) and start a new one",
                problems.join("; "),
                id = journal.run_id
            ),
        };
        let stored = outcome.clone();
        self.journal.update(|j| j.outcome = Some(stored)).await?;
        Ok(Some(outcome))
    }

    async fn observe(&self, journal: &Journal) -> Result<Observed, String> {
        let cluster = &self.conn.cluster;
        let version = describe_cluster(&self.conn.eks, &cluster.name, &cluster.region)
            .await
            .map_err(|e| e.to_string())?
            .version;
        let mut updates = BTreeMap::new();
        for id in recorded_updates(journal) {
            let state =
                match eks::describe_update(&self.conn.eks, &cluster.name, &id, UpdateOf::Cluster)
                    .await
                {
                    Ok(s) => Some(s),
                    Err(e) if e.is("ResourceNotFoundException") => None,
                    Err(e) => return Err(e.to_string()),
                };
            updates.insert(id, state);
        }
        let in_progress =
            eks::in_progress_updates(&self.conn.eks, &cluster.name, UpdateOf::Cluster)
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|u| u.kind == "VersionUpdate")
                .collect();
        Ok(Observed {
            version,
            updates,
            in_progress,
        })
    }
}

impl Engine<'_> {
    async fn observe_blue_green(&self, journal: &Journal) -> Result<blue_green::Seen, String> {
        let cluster = &self.conn.cluster;
        let blue = describe_cluster(&self.conn.eks, &cluster.name, &cluster.region)
            .await
            .map_err(|e| e.to_string())?
            .version;
        let blue_updating =
            !eks::in_progress_updates(&self.conn.eks, &cluster.name, UpdateOf::Cluster)
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|u| u.kind == "VersionUpdate")
                .collect::<Vec<_>>()
                .is_empty();
        let green = match journal.get(&crate::steps::green::GREEN) {
            Some(g) => crate::cloud::eks_create::describe(&self.conn.eks, &g.name)
                .await
                .map_err(|e| e.to_string())?
                .map(|c| {
                    c.status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default()
                }),
            None => Some(String::new()),
        };
        let weights = match self
            .workflow
            .blue_green
            .as_ref()
            .and_then(|b| b.traffic.as_ref())
        {
            Some(t) => Some(
                crate::steps::green::dns_weights(self.conn, t)
                    .await
                    .map_err(|e| crate::errors::chain(&e))?,
            ),
            None => None,
        };
        Ok(blue_green::Seen {
            blue,
            blue_updating,
            green,
            weights,
            pending: pending_weights(journal),
        })
    }
}

/// Weights a traffic step recorded it was about to send, and may have sent without recording
/// the change: a stage's intent without its change id.
fn pending_weights(journal: &Journal) -> Vec<(i64, i64)> {
    use crate::steps::traffic::{STAGE_CHANGE, STAGE_INTENT};
    let prefix = format!("{}:", STAGE_INTENT.name());
    let mut out = Vec::new();
    for s in &journal.steps {
        for name in s.facts.keys() {
            let Some(member) = name.strip_prefix(&prefix) else {
                continue;
            };
            if s.get(&STAGE_CHANGE.of(member)).is_some() {
                continue;
            }
            if let Some(intent) = s.get(&STAGE_INTENT.of(member)) {
                out.push((intent.to.blue.unwrap_or(0), intent.to.green.unwrap_or(0)));
            }
        }
    }
    out
}

/// The control-plane updates the upgrade steps recorded.
fn recorded_updates(journal: &Journal) -> Vec<String> {
    journal
        .steps
        .iter()
        .filter(|s| s.key.phase == Phase::Upgrade)
        .filter_map(|s| s.get(&UPDATE_ID))
        .collect()
}

fn list(versions: &[Version]) -> String {
    if versions.is_empty() {
        return "none".into();
    }
    versions
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The run state as the journal spells it.
fn state_name(state: &RunState) -> String {
    match state {
        RunState::Started => "started".into(),
        RunState::Prepare => "prepare".into(),
        RunState::Upgrade { hop } => format!("upgrade, hop {hop}"),
        RunState::Recovery => "recovery".into(),
        RunState::Finish => "finish".into(),
        RunState::Done => "done".into(),
    }
}

/// A step status as the journal spells it.
fn status_name(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Running => "running",
        StepStatus::Succeeded => "succeeded",
        StepStatus::Failed => "failed",
        StepStatus::Skipped => "skipped",
    }
}

/// Everything in the journal that EKS, or the journal itself, contradicts. Empty when the run
/// may go on.
pub fn disagreements(j: &Journal, seen: &Observed) -> Vec<String> {
    let mut out = Vec::new();
    let hops = &j.hops;
    let index_of = |v: Version| hops.iter().position(|h| *h == v);

    // The hops, as a plan makes them.
    let mut expected = j.start_version.map(Version::next_minor);
    for &hop in hops {
        if expected.is_some_and(|e| e != hop) {
            out.push(format!(
                "the hops `{}` do not go one minor version at a time from `{}`, where the run started",
                list(hops),
                j.start_version.map(|v| v.to_string()).unwrap_or_default()
            ));
            break;
        }
        expected = Some(hop.next_minor());
    }
    let completed = &j.completed_hops;
    if hops.get(..completed.len()) != Some(completed.as_slice()) {
        out.push(format!(
            "the completed hops `{}` are not the first of the hops `{}`",
            list(completed),
            list(hops)
        ));
    }

    // Where the state says the run is: how many hops are behind it, and the versions the
    // control plane may be at.
    let before = |i: usize| {
        if i == 0 {
            j.start_version
        } else {
            hops.get(i - 1).copied()
        }
    };
    let (done, allowed, current): (Option<usize>, Vec<Option<Version>>, Option<usize>) = match &j
        .state
    {
        RunState::Started | RunState::Prepare => (Some(0), vec![j.start_version], None),
        RunState::Upgrade { hop } if (1..=hops.len() + 1).contains(hop) => {
            let i = hop - 1;
            let allowed = if i < hops.len() {
                vec![before(i), hops.get(i).copied()]
            } else {
                vec![hops.last().copied()]
            };
            (Some(i), allowed, Some(i))
        }
        RunState::Upgrade { hop } => {
            out.push(format!(
                "the state is hop {hop}, but the journal has {} hops",
                hops.len()
            ));
            (None, Vec::new(), None)
        }
        RunState::Recovery => match &j.failure {
            Some(f) => match f.step.hop.and_then(index_of) {
                Some(i) if f.step.phase == Phase::Upgrade => {
                    if f.version_before != before(i) {
                        out.push(format!(
                                "the failure of hop `{}` names `{}` as the version before it, but the hops say `{}`",
                                hops[i],
                                f.version_before.map(|v| v.to_string()).unwrap_or_default(),
                                before(i).map(|v| v.to_string()).unwrap_or_default()
                            ));
                    }
                    let proven = j
                        .step(&f.step)
                        .is_some_and(|s| s.status == StepStatus::Failed && s.error.is_some());
                    if !proven {
                        out.push(format!(
                                "the run is in recovery, but step `{}` is not recorded as failed with its error: nothing proves that hop `{}` failed, and recovery would restore the backup and roll back the control plane",
                                f.step, hops[i]
                            ));
                    }
                    (Some(i), vec![before(i), Some(hops[i])], Some(i))
                }
                _ => {
                    out.push(format!(
                            "the run is in recovery from step `{}`, which is not an upgrade step of one of the hops `{}`",
                            f.step,
                            list(hops)
                        ));
                    (None, Vec::new(), None)
                }
            },
            None => {
                out.push("the run is in recovery, but no failure is recorded".into());
                (None, Vec::new(), None)
            }
        },
        RunState::Finish => (Some(hops.len()), vec![hops.last().copied()], None),
        RunState::Done => return out,
    };
    if let Some(done) = done
        && completed.len() != done
    {
        out.push(format!(
            "the state `{}` comes after {done} completed {}, but the completed hops are `{}`",
            state_name(&j.state),
            if done == 1 { "hop" } else { "hops" },
            list(completed)
        ));
    }

    // Step records: of the journal's hops, no further than the state, failures with errors.
    for s in &j.steps {
        if s.status == StepStatus::Failed && s.error.is_none() {
            out.push(format!(
                "step `{}` is recorded as failed without its error",
                s.key
            ));
        }
        if s.key.phase != Phase::Upgrade {
            continue;
        }
        match s.key.hop.and_then(index_of) {
            None => out.push(format!(
                "step `{}` belongs to hop `{}`, which is not among the hops `{}`",
                s.key,
                s.key.hop.map(|v| v.to_string()).unwrap_or_default(),
                list(hops)
            )),
            Some(i) if current.is_none_or(|c| i > c) && done.is_some_and(|d| i >= d) => {
                out.push(format!(
                    "step `{}` of hop `{}` is recorded, but the run is at `{}`",
                    s.key,
                    hops[i],
                    state_name(&j.state)
                ))
            }
            _ => {}
        }
    }

    // What EKS shows of each completed hop.
    for &hop in completed {
        if seen.version < hop {
            out.push(format!(
                "hop `{hop}` is counted as completed, but EKS runs the control plane at `{}`",
                seen.version
            ));
        }
        for s in j
            .steps
            .iter()
            .filter(|s| s.key.phase == Phase::Upgrade && s.key.hop == Some(hop))
        {
            if s.status != StepStatus::Succeeded {
                out.push(format!(
                    "hop `{hop}` is counted as completed, but its step `{}` is `{}`",
                    s.key.id,
                    status_name(s.status)
                ));
            }
            if let Some(id) = s.get(&UPDATE_ID) {
                match seen.updates.get(&id) {
                    Some(Some(u)) if u.succeeded() && u.version == Some(hop.to_string()) => {}
                    Some(Some(u)) => out.push(format!(
                        "hop `{hop}` is counted as completed, but EKS shows its update `{id}` as `{}` to `{}`",
                        u.status,
                        u.version.as_deref().unwrap_or("?")
                    )),
                    _ => out.push(format!(
                        "hop `{hop}` is counted as completed, but EKS does not know its update `{id}`"
                    )),
                }
            }
        }
    }
    // The update of the current hop, if one is recorded, must exist.
    for s in j.steps.iter().filter(|s| {
        s.key.phase == Phase::Upgrade && s.key.hop.is_some_and(|h| !completed.contains(&h))
    }) {
        if let Some(id) = s.get(&UPDATE_ID)
            && matches!(seen.updates.get(&id), Some(None))
        {
            out.push(format!(
                "step `{}` recorded the update `{id}`, which EKS does not know",
                s.key
            ));
        }
    }

    // Where the control plane is, and what EKS is doing to it.
    if !allowed.is_empty() && allowed.iter().all(|v| v.is_some()) {
        let allowed: Vec<Version> = allowed.into_iter().flatten().collect();
        if !allowed.contains(&seen.version) {
            out.push(format!(
                "EKS runs the control plane at `{}`, but at `{}` the run expects it at `{}`",
                seen.version,
                state_name(&j.state),
                allowed
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join("` or `")
            ));
        }
        for u in &seen.in_progress {
            let to = u.version.as_deref().and_then(|v| v.parse::<Version>().ok());
            if !to.is_some_and(|v| allowed.contains(&v)) {
                out.push(format!(
                    "EKS is moving the control plane to `{}` (update `{}`), which this run at `{}` did not start",
                    u.version.as_deref().unwrap_or("?"),
                    u.id,
                    state_name(&j.state)
                ));
            }
        }
    }
    out
}

mod blue_green;

#[cfg(test)]
mod tests;
