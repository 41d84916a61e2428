//! Rules about the workflow as a whole: the control-plane step of each hop, the order within a
//! hop, and references between steps.

use std::collections::HashSet;

use crate::format::Validator;
use crate::format::lint::did_you_mean;
use crate::format::spanned::Loc;
use crate::steps::{Role, Step};
use crate::types::Phase;
use crate::workflow::raw::RawSpec;

/// Rules about the workflow as a whole: the control-plane step, the order within a hop, and
/// references between steps.
pub(super) fn check_structure(
    v: &mut Validator,
    built: &[(Phase, Vec<(Loc, Step)>)],
    spec: &RawSpec,
    spec_loc: Loc,
) {
    let section = |phase: Phase| {
        built
            .iter()
            .find(|(p, _)| *p == phase)
            .map_or(&[][..], |(_, s)| s.as_slice())
    };
    let upgrade = section(Phase::Upgrade);
    let blue_green = super::blue_green::is_blue_green(built);

    let has = |step: &Step, role: Role| step.kind.roles().contains(&role);
    let movers: Vec<&(Loc, Step)> = upgrade
        .iter()
        .filter(|(_, s)| has(s, Role::MovesControlPlane))
        .collect();
    // A blue/green workflow builds green at the target instead; its own rules follow.
    if !blue_green
        && !spec.upgrade.is_empty()
        && movers.is_empty()
        && upgrade.len() == spec.upgrade.len()
    {
        let loc = spec.upgrade.first().map(|s| s.loc).unwrap_or_default();
        v.problem(loc, "`upgrade` never upgrades the control plane", "no `upgradeControlPlane` or `eksctl` step", "add an `upgradeControlPlane` step (or an `eksctl` step) first in `upgrade`: each hop moves the control plane one minor version");
    }
    if let [_, second, ..] = movers.as_slice() {
        v.problem(
            second.0,
            "`upgrade` moves the control plane twice per hop",
            "second control-plane step",
            "keep one `upgradeControlPlane` or `eksctl` step",
        );
    }
    if let Some(first_mover) = upgrade
        .iter()
        .position(|(_, s)| has(s, Role::MovesControlPlane))
    {
        for (loc, step) in &upgrade[..first_mover] {
            if has(step, Role::UpgradesAddons)
                || has(step, Role::UpgradesNodes)
                || has(step, Role::ConvergesNodes)
            {
                v.problem(*loc, format!("`{}` runs before the control plane is upgraded", step.id), "too early", "EKS upgrades node groups and add-ons only up to the control plane's version; move this step after the control-plane step");
            }
        }
    }
    super::blue_green::check_blue_green(v, built, spec);
    check_only(v, built, spec, spec_loc);
    if spec.upgrade.is_empty()
        && let Some(first) = spec.on_failure.first()
    {
        v.problem(first.loc, "`onFailure` steps can never run", "no `upgrade` steps", "`onFailure` runs when an `upgrade` step fails; add `upgrade` steps or remove `onFailure`");
    }
    recovery_order(v, upgrade, section(Phase::OnFailure));

    // References. Execution order is prepare, upgrade, onFailure, finish; a reference must
    // name a step that has run by then.
    let order: Vec<(Phase, &(Loc, Step))> = built
        .iter()
        .flat_map(|(p, s)| s.iter().map(move |x| (*p, x)))
        .collect();
    let backups_before = |i: usize| -> HashSet<&str> {
        order[..i]
            .iter()
            .filter(|(_, (_, s))| has(s, Role::CreatesBackup))
            .map(|(_, (_, s))| s.id.as_str())
            .collect()
    };
    let verified_in_prepare: HashSet<&str> = section(Phase::Prepare)
        .iter()
        .filter(|(_, s)| has(s, Role::VerifiesBackup))
        .filter_map(|(_, s)| s.kind.backup())
        .collect();
    let all_ids: Vec<&str> = order.iter().map(|(_, (_, s))| s.id.as_str()).collect();

    for (i, (phase, (_, step))) in order.iter().enumerate() {
        let (Some(reference), Some(loc)) =
            (step.kind.backup(), reference_loc(spec, *phase, &step.id))
        else {
            continue;
        };
        let available = backups_before(i);
        if !available.contains(reference) {
            let help = if all_ids.contains(&reference) {
                format!(
                    "`{reference}` is not a `veleroBackup` step that runs before `{}`",
                    step.id
                )
            } else if let Some(s) = did_you_mean(reference, available.iter().copied()) {
                format!("did you mean `{s}`?")
            } else if available.is_empty() {
                "add a `veleroBackup` step earlier in `prepare` and name its id here".to_string()
            } else {
                let mut names: Vec<String> = available.iter().map(|a| format!("`{a}`")).collect();
                names.sort();
                format!(
                    "name one of the earlier `veleroBackup` steps: {}",
                    names.join(", ")
                )
            };
            v.problem(
                loc,
                format!(
                    "`{}` refers to `{reference}`, which is not an earlier `veleroBackup` step",
                    step.id
                ),
                "unknown backup",
                help,
            );
            continue;
        }
        if has(step, Role::RestoresBackup) && !verified_in_prepare.contains(reference) {
            v.problem(loc, format!("`{}` restores backup `{reference}`, which no `verifyBackup` step in `prepare` verifies", step.id), "unverified backup", format!("restores only ever use verified backups: add `verifyBackup: {{ backup: {reference} }}` to `prepare` after the backup"));
        }
    }
}

/// The steps that may make up a workflow without `upgrade` steps: a check-only workflow
/// (`workflows/check-only.yaml`) reads and reports, so every step in it must change nothing.
/// Anything else without `upgrade` steps is a workflow cut short, such as a file truncated
/// after its backup, and would back up or restore without ever upgrading.
fn check_only(
    v: &mut Validator,
    built: &[(Phase, Vec<(Loc, Step)>)],
    spec: &RawSpec,
    spec_loc: Loc,
) {
    if !spec.upgrade.is_empty() {
        return;
    }
    let steps: Vec<&(Loc, Step)> = built.iter().flat_map(|(_, s)| s.iter()).collect();
    let written = spec.prepare.len() + spec.on_failure.len() + spec.finish.len();
    if written == 0 {
        v.problem(
            spec_loc,
            "the workflow has no steps",
            "no `upgrade` steps",
            "add `upgrade` steps (an `upgradeControlPlane` step first), or a `preflight` step in `prepare` for a check-only workflow",
        );
        return;
    }
    if let Some((loc, step)) = steps.iter().find(|(_, s)| s.kind.mutates_cluster()) {
        v.problem(
            *loc,
            format!(
                "the workflow has no `upgrade` steps, but `{}` changes the cluster",
                step.id
            ),
            "changes the cluster",
            "add the `upgrade` steps (an `upgradeControlPlane` step first); without them a workflow is check-only and holds only steps that change nothing: `preflight`, `verifyBackup`, `healthCheck`, `approval`, `notify`",
        );
    }
}

/// The location of the `backup:` reference of the step with `id` in `phase`.
fn reference_loc(spec: &RawSpec, phase: Phase, id: &str) -> Option<Loc> {
    let steps = match phase {
        Phase::Prepare => &spec.prepare,
        Phase::Upgrade => &spec.upgrade,
        Phase::OnFailure => &spec.on_failure,
        Phase::Finish => &spec.finish,
    };
    let step = steps.iter().find(|s| s.value.id.value == id)?;
    step.value.backup_ref().map(|r| r.loc)
}

/// EKS rolls back only the control plane, and refuses while a kubelet or an add-on is newer than
/// the version it would return to: a recovery that rolls the control plane back must first move
/// back what the hop moves — node groups, then add-ons — in that order.
fn recovery_order(v: &mut Validator, upgrade: &[(Loc, Step)], on_failure: &[(Loc, Step)]) {
    let has = |step: &Step, role: Role| step.kind.roles().contains(&role);
    let Some(rollback) = on_failure
        .iter()
        .position(|(_, s)| has(s, Role::RollsBackControlPlane))
    else {
        return;
    };
    let (rollback_loc, rollback_step) = &on_failure[rollback];
    for (loc, step) in &on_failure[rollback + 1..] {
        if has(step, Role::RollsBackNodes) || has(step, Role::RollsBackAddons) {
            v.problem(
                *loc,
                format!(
                    "`{}` runs after the control plane is rolled back",
                    step.id
                ),
                "too late",
                format!(
                    "EKS refuses a control-plane rollback while nodes or add-ons are newer than the version it returns to; move this step before `{}`",
                    rollback_step.id
                ),
            );
        }
    }
    // A step that rolls back after the control plane is reported as too late above.
    let anywhere = on_failure;
    let needs = [
        (
            Role::UpgradesNodes,
            Role::RollsBackNodes,
            "rollbackNodegroups",
            "node groups",
        ),
        (
            Role::UpgradesAddons,
            Role::RollsBackAddons,
            "rollbackAddons",
            "add-ons",
        ),
    ];
    for (moves, back, kind, what) in needs {
        let hop_moves = upgrade.iter().any(|(_, s)| has(s, moves));
        let goes_back = anywhere.iter().any(|(_, s)| has(s, back));
        if hop_moves && !goes_back {
            v.problem(
                *rollback_loc,
                format!(
                    "`{}` rolls the control plane back, but nothing moves the {what} the hop upgraded back first",
                    rollback_step.id
                ),
                format!("no `{kind}` before it"),
                format!(
                    "add a `{kind}` step before `{}`: EKS refuses the rollback while {what} are newer than the version it returns to",
                    rollback_step.id
                ),
            );
        }
    }
}
