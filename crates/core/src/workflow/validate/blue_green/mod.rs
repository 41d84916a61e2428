//! The structure rules of a blue/green workflow: one step provides green, first in `upgrade`,
//! and nothing moves blue; every green step runs after green exists and after it was seen
//! ready; traffic moves once, only after a restore and a health check on green, and only when
//! `onFailure` starts by switching it back; blue is retired only in `finish`, a deletion only
//! after an approval.
//!
//! The rules read steps through [`Placed`] (phase, id, roles and two option-derived flags), so
//! they are tested with role lists before the green step kinds exist.

use crate::format::Validator;
use crate::format::spanned::Loc;
use crate::steps::{Role, Step};
use crate::types::Phase;
use crate::workflow::raw::RawSpec;

use super::traffic::settings_loc;

/// A step as these rules see it, in execution order.
#[derive(Debug, Clone, Copy)]
pub(super) struct Placed<'a> {
    pub phase: Phase,
    pub loc: Loc,
    pub id: &'a str,
    /// The YAML key of its kind.
    pub key: &'a str,
    pub roles: &'a [Role],
    /// It acts on green (`healthCheck` with `on: green`).
    pub on_green: bool,
    /// It may run only after an `approval` in its section (`retire: delete`).
    pub needs_approval: bool,
}

impl Placed<'_> {
    fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// A step that needs green's cluster: a green role besides providing it, or `on: green`.
    fn is_green(&self) -> bool {
        self.on_green
            || self
                .roles
                .iter()
                .any(|r| r.is_green() && *r != Role::ProvidesGreen)
    }

    /// A step that talks to green's API, which must have been seen ready first. Switching
    /// back and retiring blue act on DNS and blue only.
    fn uses_green(&self) -> bool {
        self.is_green()
            && !self.has(Role::WaitsForGreen)
            && !self.has(Role::SwitchesBack)
            && !self.has(Role::RetiresBlue)
    }

    fn checks_green_health(&self) -> bool {
        self.on_green && self.key == "healthCheck"
    }
}

/// Whether the built steps make a blue/green workflow: one of them provides green.
pub(super) fn is_blue_green(built: &[(Phase, Vec<(Loc, Step)>)]) -> bool {
    built
        .iter()
        .flat_map(|(_, s)| s.iter())
        .any(|(_, s)| s.kind.roles().contains(&Role::ProvidesGreen))
}

/// Checks the blue/green rules over the built steps and the document's settings.
pub(super) fn check_blue_green(
    v: &mut Validator,
    built: &[(Phase, Vec<(Loc, Step)>)],
    spec: &RawSpec,
) {
    let steps: Vec<Placed> = built
        .iter()
        .flat_map(|(phase, steps)| {
            steps.iter().map(move |(loc, s)| Placed {
                phase: *phase,
                loc: *loc,
                id: &s.id,
                key: s.kind.key(),
                roles: s.kind.roles(),
                on_green: s.kind.on_green(),
                needs_approval: s.kind.needs_approval(),
            })
        })
        .collect();
    rules(v, &steps, spec.traffic.is_some(), settings_loc(spec));
}

/// Every rule, over steps in execution order. `traffic`: the file has `spec.traffic`;
/// `settings`: where `spec.green` or `spec.traffic` is, when the file has one.
pub(super) fn rules(v: &mut Validator, steps: &[Placed], traffic: bool, settings: Option<Loc>) {
    let provider = steps.iter().position(|s| s.has(Role::ProvidesGreen));
    match provider {
        Some(at) => {
            provides_green(v, steps, at);
            green_order(v, steps, at);
        }
        None => {
            for s in steps.iter().filter(|s| s.is_green()) {
                v.problem(
                    s.loc,
                    format!("`{}` needs a green cluster, but no step creates or adopts one", s.id),
                    "no green cluster",
                    "a blue/green workflow starts `upgrade` with a `createGreen` (or `adoptGreen`) step",
                );
            }
            if let Some(loc) = settings {
                v.problem(
                    loc,
                    "`spec.green` and `spec.traffic` are for a blue/green workflow, but no step creates or adopts green",
                    "not blue/green",
                    "start `upgrade` with a `createGreen` (or `adoptGreen`) step, or remove these settings",
                );
            }
        }
    }
    shifts_traffic(v, steps, traffic);
    switches_back(v, steps);
    retires_blue(v, steps);
}

/// Rule 1: exactly one step provides green, first in `upgrade`, and nothing moves blue.
fn provides_green(v: &mut Validator, steps: &[Placed], at: usize) {
    let first = &steps[at];
    for extra in steps[at + 1..]
        .iter()
        .filter(|s| s.has(Role::ProvidesGreen))
    {
        v.problem(
            extra.loc,
            format!("`{}` provides a second green cluster", extra.id),
            "second green",
            format!(
                "keep one `createGreen` or `adoptGreen` step: `{}` already provides green",
                first.id
            ),
        );
    }
    let first_of_upgrade = steps.iter().position(|s| s.phase == Phase::Upgrade);
    if first.phase != Phase::Upgrade || first_of_upgrade != Some(at) {
        v.problem(
            first.loc,
            format!("`{}` must be the first step of `upgrade`", first.id),
            "not first",
            "green is built once, before any step that uses it: move this step to the top of `upgrade`",
        );
    }
    for s in steps
        .iter()
        .filter(|s| s.roles.iter().any(|r| Role::IN_PLACE.contains(r)))
    {
        v.problem(
            s.loc,
            format!("`{}` changes blue in place, which a blue/green workflow never does", s.id),
            "moves blue",
            "a blue/green workflow builds green and moves traffic; it does not move blue: remove this step",
        );
    }
}

/// Rule 2: green steps run after the step providing green, and those using green's API after a
/// `waitGreen` saw it ready.
fn green_order(v: &mut Validator, steps: &[Placed], provider: usize) {
    let provider_id = steps[provider].id;
    for s in steps[..provider].iter().filter(|s| s.is_green()) {
        v.problem(
            s.loc,
            format!("`{}` runs before green exists", s.id),
            "too early",
            format!("move it after `{provider_id}`, which provides green"),
        );
    }
    let waiter = steps.iter().position(|s| s.has(Role::WaitsForGreen));
    for (i, s) in steps.iter().enumerate().skip(provider + 1) {
        if !s.uses_green() {
            continue;
        }
        match waiter {
            Some(w) if w < i => {}
            Some(w) => v.problem(
                s.loc,
                format!(
                    "`{}` uses green before `{}` has seen it ready",
                    s.id, steps[w].id
                ),
                "before the wait",
                format!("move it after `{}`", steps[w].id),
            ),
            None => v.problem(
                s.loc,
                format!(
                    "`{}` uses green, but no `waitGreen` step waits for it to be ready",
                    s.id
                ),
                "green may not be ready",
                format!("add a `waitGreen` step right after `{provider_id}`"),
            ),
        }
    }
}

/// Rule 3: at most one traffic shift, with `spec.traffic`, after a restore into green, a health
/// check on green after that restore, and every compatibility test.
fn shifts_traffic(v: &mut Validator, steps: &[Placed], traffic: bool) {
    let shifts: Vec<usize> = (0..steps.len())
        .filter(|&i| steps[i].has(Role::ShiftsTraffic))
        .collect();
    let Some(&first) = shifts.first() else {
        return;
    };
    for &i in &shifts[1..] {
        v.problem(
            steps[i].loc,
            format!("`{}` is a second traffic shift", steps[i].id),
            "second shift",
            format!(
                "keep one `shiftTraffic` step: list every weight in the `stages` of `{}`",
                steps[first].id
            ),
        );
    }
    let shift = &steps[first];
    if !traffic {
        v.problem(
            shift.loc,
            format!("`{}` shifts traffic, but the workflow has no `spec.traffic`", shift.id),
            "no record to move",
            "add `spec.traffic` with the `zone`, the `record`, and blue's and green's weighted sets",
        );
    }
    let restore = steps[..first]
        .iter()
        .position(|s| s.has(Role::RestoresIntoGreen));
    match restore {
        None => v.problem(
            shift.loc,
            format!(
                "`{}` shifts traffic before anything is restored into green",
                shift.id
            ),
            "green is empty",
            "add a `restoreToGreen` step before it: green starts without the workloads",
        ),
        Some(r) => {
            if !steps[r + 1..first].iter().any(|s| s.checks_green_health()) {
                v.problem(
                    shift.loc,
                    format!(
                        "`{}` shifts traffic before green's health is checked",
                        shift.id
                    ),
                    "unchecked green",
                    format!(
                        "add `healthCheck: {{ on: green }}` after `{}` and before this step",
                        steps[r].id
                    ),
                );
            }
        }
    }
    for test in steps[first + 1..]
        .iter()
        .filter(|s| s.has(Role::TestsGreen))
    {
        v.problem(
            test.loc,
            format!(
                "`{}` tests green after `{}` has moved traffic to it",
                test.id, shift.id
            ),
            "too late",
            format!(
                "move it before `{}`: the test decides whether traffic may move",
                shift.id
            ),
        );
    }
}

/// Rule 4: with a traffic shift, `onFailure` starts by switching back; switching back belongs
/// only to `onFailure`.
fn switches_back(v: &mut Validator, steps: &[Placed]) {
    for s in steps
        .iter()
        .filter(|s| s.has(Role::SwitchesBack) && s.phase != Phase::OnFailure)
    {
        v.problem(
            s.loc,
            format!("`{}` switches traffic back outside `onFailure`", s.id),
            "not in `onFailure`",
            "move it to the top of `onFailure`: traffic goes back to blue when a step fails",
        );
    }
    let Some(shift) = steps.iter().find(|s| s.has(Role::ShiftsTraffic)) else {
        return;
    };
    match steps.iter().find(|s| s.phase == Phase::OnFailure) {
        None => v.problem(
            shift.loc,
            format!("`{}` shifts traffic, but `onFailure` cannot switch it back", shift.id),
            "no way back",
            "add `onFailure:` starting with `- { id: switch-back, switchBack: {} }`",
        ),
        Some(first) if !first.has(Role::SwitchesBack) => v.problem(
            first.loc,
            "`onFailure` must start by switching traffic back to blue",
            "not `switchBack`",
            format!(
                "put a `switchBack` step before `{}`: when a step fails after traffic moved, blue takes it back first",
                first.id
            ),
        ),
        Some(_) => {}
    }
}

/// Rule 5: blue is retired only in `finish`; a step that needs an approval has one before it
/// there.
fn retires_blue(v: &mut Validator, steps: &[Placed]) {
    for (i, s) in steps.iter().enumerate() {
        if s.has(Role::RetiresBlue) && s.phase != Phase::Finish {
            v.problem(
                s.loc,
                format!("`{}` retires blue outside `finish`", s.id),
                "not in `finish`",
                "move it to `finish`: blue is retired only after every `upgrade` step succeeded",
            );
        }
        if s.needs_approval
            && !steps[..i]
                .iter()
                .any(|p| p.phase == s.phase && p.key == "approval")
        {
            v.problem(
                s.loc,
                format!(
                    "`{}` needs an `approval` step before it in `{}`",
                    s.id,
                    s.phase.key()
                ),
                "not approved",
                "deleting blue cannot be undone: add an `approval` step before it, or keep blue (`retire: keep`)",
            );
        }
    }
}

#[cfg(test)]
mod tests;
