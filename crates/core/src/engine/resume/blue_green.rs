//! The resume rules of a blue/green run. Blue is never moved, so the in-place rules about hops
//! and control-plane versions do not hold; what a wrong journal would break here is different:
//! a second green (a journal that lost green), a weight change repeated or skipped (a journal
//! whose weights are not what Route 53 serves), and an exit-3 "blue untouched" after traffic
//! did move. So: one hop, blue where it started, green where the journal says, and the weights
//! Route 53 serves equal to the last recorded change — or to one the run may have sent but not
//! yet recorded, or all on blue (what a person's manual switch back leaves; every step then
//! starts again from blue).

use crate::journal::{Journal, RunState, StepStatus};
use crate::steps::green::{self, GREEN, TRAFFIC, Weights};
use crate::types::Version;

/// What AWS shows of a blue/green run.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Blue's control-plane version.
    pub blue: Version,
    /// Whether blue has a version update in progress.
    pub blue_updating: bool,
    /// Green's status (`ACTIVE`, …), `None` when EKS has no such cluster; only read when the
    /// journal names green.
    pub green: Option<String>,
    /// The weights Route 53 serves, when the workflow moves traffic.
    pub weights: Option<Weights>,
    /// Weights a step may have sent without recording its change yet (its recorded intent).
    pub pending: Vec<(i64, i64)>,
}

/// Everything AWS or the journal itself contradicts; empty when the run may go on.
pub fn disagreements(j: &Journal, seen: &Seen) -> Vec<String> {
    let mut out = Vec::new();
    let Some(start) = j.start_version else {
        out.push("the journal does not say which version blue started at".into());
        return out;
    };
    match j.hops.as_slice() {
        [target] if *target > start => {}
        hops => out.push(format!(
            "a blue/green run has one hop, from `{start}` to the target, but the journal has `{}`",
            hops.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
    let done = match &j.state {
        RunState::Started | RunState::Prepare | RunState::Recovery => Some(0),
        RunState::Upgrade { hop: 1 } => Some(0),
        RunState::Upgrade { hop: 2 } | RunState::Finish => Some(1),
        RunState::Upgrade { hop } => {
            out.push(format!(
                "the state is hop {hop}, but a blue/green run has one hop"
            ));
            None
        }
        RunState::Done => return out,
    };
    if done.is_some_and(|d| d != j.completed_hops.len()) {
        out.push(format!(
            "the run is at `{:?}`, but {} hops are counted as completed",
            j.state,
            j.completed_hops.len()
        ));
    }
    if seen.blue != start {
        out.push(format!(
            "EKS runs blue `{}` at `{}`, but a blue/green run never moves blue and it started at `{start}`",
            j.cluster, seen.blue
        ));
    }
    if seen.blue_updating {
        out.push(format!(
            "EKS is updating blue `{}`'s version, which a blue/green run never does",
            j.cluster
        ));
    }
    for s in &j.steps {
        if s.status == StepStatus::Failed && s.error.is_none() {
            out.push(format!(
                "step `{}` is recorded as failed without its error",
                s.key
            ));
        }
    }
    if j.state == RunState::Recovery {
        let proven = j.failure.as_ref().is_some_and(|f| {
            j.step(&f.step)
                .is_some_and(|s| s.status == StepStatus::Failed && s.error.is_some())
        });
        if !proven {
            out.push("the run is in recovery, but no step is recorded as failed with its error: nothing proves a failure, and recovery would move traffic".into());
        }
    }
    if let Some(g) = j.get(&GREEN)
        && seen.green.is_none()
    {
        out.push(format!(
            "the journal names green `{}`, but EKS has no such cluster",
            g.name
        ));
    }
    let points = j.get(&TRAFFIC).unwrap_or_default();
    if let Some(now) = seen.weights {
        let recorded = points.last().map(|p| (p.blue, p.green));
        let serves = (now.blue.unwrap_or(0), now.green.unwrap_or(0));
        let agrees = match recorded {
            // Before any recorded change, green has no weight (its set may not exist yet).
            None => serves.1 == 0,
            Some(r) => r == serves,
        } || now.all_blue()
            || seen.pending.contains(&serves);
        if !agrees {
            out.push(format!(
                "Route 53 serves {now}, but the journal's last weight change is {}; the run will not guess which is right",
                recorded
                    .map(|(b, g)| format!("blue {b}/green {g}"))
                    .unwrap_or_else(|| "none (all on blue)".into())
            ));
        }
    }
    if green::moved(&points) && j.get(&GREEN).is_none() {
        out.push("the journal records traffic moved to green, but no green cluster".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn journal(state: serde_json::Value, facts: serde_json::Value) -> Journal {
        serde_json::from_value(json!({
            "journalVersion": 2, "runId": "r", "createdAt": "t", "updatedAt": "t",
            "workflowName": "w", "workflowPath": "w.yaml", "workflowText": "",
            "cluster": "demo", "region": "us-east-1", "startVersion": "1.33",
            "hops": ["1.35"], "completedHops": [], "state": state, "facts": facts,
        }))
        .expect("a journal")
    }

    fn point(blue: i64, green: i64) -> serde_json::Value {
        json!({ "at": "t", "step": "shift", "blue": blue, "green": green,
                "changeId": "C1", "status": "INSYNC", "why": "stage" })
    }

    fn seen(blue: Option<i64>, green: Option<i64>) -> Seen {
        Seen {
            blue: Version::new(1, 33),
            blue_updating: false,
            green: Some("ACTIVE".into()),
            weights: Some(Weights { blue, green }),
            pending: vec![],
        }
    }

    const GREEN_FACT: &str = r#"{"name":"demo-1-35","arn":"arn","version":"1.35","created":true}"#;

    fn facts(points: &[serde_json::Value]) -> serde_json::Value {
        json!({ "green": serde_json::from_str::<serde_json::Value>(GREEN_FACT).unwrap(), "traffic": points })
    }

    #[test]
    fn a_run_between_two_weight_changes_agrees_with_what_route53_serves() {
        let j = journal(
            json!({"state": "upgrade", "hop": 1}),
            facts(&[point(90, 10)]),
        );
        assert!(disagreements(&j, &seen(Some(90), Some(10))).is_empty());
        // The next stage sent but not recorded: allowed only as the step's recorded intent.
        let mut s = seen(Some(50), Some(50));
        assert!(!disagreements(&j, &s).is_empty());
        s.pending = vec![(50, 50)];
        assert!(
            disagreements(&j, &s).is_empty(),
            "{:?}",
            disagreements(&j, &s)
        );
        // A person switched back by hand: every step starts again from blue.
        assert!(disagreements(&j, &seen(Some(100), Some(0))).is_empty());
    }

    #[test]
    fn weights_nobody_recorded_are_refused() {
        let j = journal(
            json!({"state": "upgrade", "hop": 1}),
            facts(&[point(90, 10)]),
        );
        let problems = disagreements(&j, &seen(Some(30), Some(70)));
        assert!(
            problems.iter().any(|p| p.contains("blue 30/green 70")),
            "{problems:?}"
        );
        // No change recorded, yet green has weight.
        let j = journal(json!({"state": "upgrade", "hop": 1}), facts(&[]));
        assert!(!disagreements(&j, &seen(Some(90), Some(10))).is_empty());
    }

    #[test]
    fn a_lost_green_or_a_moved_blue_is_refused() {
        let j = journal(json!({"state": "upgrade", "hop": 1}), facts(&[]));
        let mut s = seen(Some(100), None);
        s.green = None;
        assert!(
            disagreements(&j, &s)
                .iter()
                .any(|p| p.contains("no such cluster"))
        );
        let mut s = seen(Some(100), None);
        s.blue = Version::new(1, 34);
        assert!(
            disagreements(&j, &s)
                .iter()
                .any(|p| p.contains("never moves blue"))
        );
    }
}
