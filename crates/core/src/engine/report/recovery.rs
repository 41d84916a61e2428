//! The post-rollback assessment: why the hop failed (the step, the health problems by name, the
//! rollback-readiness insights), what recovery did in order with its update ids, what is still
//! as the failed hop left it and why, and what to address before trying again.

use std::collections::BTreeMap;

use crate::engine::assess::ClusterState;
use crate::journal::{FailureRecord, Journal, StepRecord, StepStatus};
use crate::steps::{
    KindName, addons, health, nodegroups, readiness, rollback, rollback_addons, rollback_nodegroups,
};
use crate::types::{Phase, Version};

fn is(s: &StepRecord, kind: KindName) -> bool {
    s.kind == kind.key()
}

/// The health problems the failed step found, by name.
pub fn health_problems(j: &Journal, failure: &FailureRecord) -> Vec<String> {
    j.step(&failure.step)
        .and_then(|s| s.get(&health::PROBLEMS))
        .unwrap_or_default()
}

/// The rollback-readiness insights read before the control-plane rollback, one line each.
pub fn readiness(j: &Journal) -> Vec<String> {
    j.steps
        .iter()
        .filter(|s| is(s, KindName::RollbackControlPlane))
        .filter_map(|s| s.get(&readiness::READINESS))
        .flatten()
        .map(|i| readiness::describe(&i))
        .collect()
}

/// What each recovery step did, in the order it ran.
pub fn actions(j: &Journal) -> Vec<String> {
    j.steps
        .iter()
        .filter(|s| s.key.phase == Phase::OnFailure)
        .map(|s| {
            let status = match s.status {
                StepStatus::Succeeded => "done",
                StepStatus::Failed => "failed",
                StepStatus::Skipped => "not run",
                StepStatus::Running => "interrupted",
            };
            let what = s
                .error
                .as_ref()
                .or(s.summary.as_ref())
                .cloned()
                .unwrap_or_default();
            format!("`{}` ({}): {status} — {what}", s.key.id, s.title)
        })
        .collect()
}

/// What is still as the failed hop left it. From the cluster as read at the end when there is
/// one (the truth), otherwise from what the steps recorded.
pub fn not_rolled_back(
    j: &Journal,
    failure: &FailureRecord,
    state: Option<&ClusterState>,
) -> Vec<String> {
    match (state, failure.version_before) {
        (Some(state), Some(before)) => from_state(j, failure, state, before),
        _ => from_facts(j, failure),
    }
}

/// Add-on name → version before the failed hop, from its `upgradeAddons` steps.
fn addons_before(j: &Journal, hop: Option<Version>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for s in j
        .steps
        .iter()
        .filter(|s| s.key.phase == Phase::Upgrade && s.key.hop == hop)
        .filter(|s| is(s, KindName::UpgradeAddons))
    {
        for (name, version) in s.get(&addons::BEFORE).unwrap_or_default() {
            out.entry(name).or_insert(version);
        }
    }
    out
}

fn from_state(
    j: &Journal,
    failure: &FailureRecord,
    state: &ClusterState,
    before: Version,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(cp) = state.control_plane.as_deref()
        && cp != before.to_string()
    {
        let why = j
            .steps
            .iter()
            .filter(|s| is(s, KindName::RollbackControlPlane))
            .find_map(|s| s.get(&rollback::ROLLBACK))
            .map(|r| r.reason)
            .unwrap_or_else(|| "the workflow has no `rollbackControlPlane` step".into());
        out.push(format!("control plane stays at {cp}, not {before}: {why}"));
    }
    for g in &state.nodegroups {
        if g.version.parse::<Version>().is_ok_and(|v| v > before) {
            out.push(format!(
                "node group `{}` stays at {}, newer than {before}",
                g.name, g.version
            ));
        }
    }
    let was = addons_before(j, failure.step.hop);
    for a in &state.addons {
        if let Some(v) = was.get(&a.name).filter(|v| **v != a.version) {
            let unsupported = state
                .unsupported
                .iter()
                .any(|u| u.contains(&format!("`{}`", a.name)));
            out.push(format!(
                "add-on `{}` stays at {} (it was {v}){}",
                a.name,
                a.version,
                if unsupported {
                    ""
                } else {
                    "; the control plane's version supports it, so it did not need to go back"
                }
            ));
        }
    }
    out
}

/// What the failed hop changed, as its steps recorded it, minus what recovery moved back.
fn from_facts(j: &Journal, failure: &FailureRecord) -> Vec<String> {
    let hop_of = |s: &StepRecord| s.key.hop.map(|h| h.to_string()).unwrap_or_default();
    let rolled_back: Vec<String> = j
        .steps
        .iter()
        .filter_map(|s| {
            s.get(&rollback_nodegroups::ROLLED_BACK)
                .or_else(|| s.get(&rollback_addons::ROLLED_BACK))
        })
        .flatten()
        .collect();
    let went_back = |name: &str| {
        rolled_back
            .iter()
            .any(|r| r.split_whitespace().next() == Some(name))
    };
    let mut out = Vec::new();
    for s in j.steps.iter().filter(|s| s.key.hop == failure.step.hop) {
        if is(s, KindName::UpgradeAddons) {
            let what = if s.status == StepStatus::Succeeded && s.get(&addons::CHANGED).is_none() {
                s.summary.clone().filter(|x| x.contains('→'))
            } else {
                let changed = s.get(&addons::CHANGED).unwrap_or_default();
                let list: Vec<&str> = changed
                    .iter()
                    .filter(|(name, _)| !went_back(name))
                    .map(|(_, line)| line.as_str())
                    .collect();
                (!list.is_empty()).then(|| list.join(", "))
            };
            if let Some(what) = what {
                out.push(format!("add-ons ({}): {what}", hop_of(s)));
            }
        } else if is(s, KindName::UpgradeNodegroups) {
            let what = if s.status == StepStatus::Succeeded {
                s.summary
                    .clone()
                    .filter(|x| x.starts_with("upgraded") && !went_back_all(x, &went_back))
            } else {
                let done: Vec<String> = s
                    .get(&nodegroups::UPGRADED)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|line| !line.split_whitespace().next().is_some_and(went_back))
                    .collect();
                (!done.is_empty()).then(|| format!("upgraded {}", done.join(", ")))
            };
            if let Some(what) = what {
                out.push(format!("node groups ({}): {what}", hop_of(s)));
            }
        }
    }
    out
}

/// Whether every group a summary `upgraded a → V, b → V` names went back.
fn went_back_all(summary: &str, went_back: &dyn Fn(&str) -> bool) -> bool {
    summary
        .trim_start_matches("upgraded ")
        .split(", ")
        .filter_map(|part| part.split_whitespace().next())
        .all(went_back)
}
