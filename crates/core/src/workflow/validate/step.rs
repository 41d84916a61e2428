//! One step of a section: a valid id, exactly one kind, a kind allowed in this section; then the
//! kind checks and defaults its own options.

use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::steps::{self, BuildCx, RawStep, STEP_KINDS, Step};
use crate::types::Phase;

pub(super) fn build_step(
    v: &mut Validator,
    phase: Phase,
    step: &Spanned<RawStep>,
    cx: &BuildCx<'_>,
) -> Option<Step> {
    let raw = &step.value;
    let id_ok = v.dns_label("step id", &raw.id);
    let kinds = raw.kinds();
    let (kind_key, kind_loc) = match kinds.as_slice() {
        [] => {
            v.problem(
                raw.id.loc,
                format!("step `{}` has no kind", raw.id.value),
                "what should this step do?",
                format!(
                    "add one of {}",
                    STEP_KINDS
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            return None;
        }
        [one] => *one,
        [_, second, ..] => {
            let names: Vec<String> = kinds.iter().map(|(k, _)| format!("`{k}`")).collect();
            v.problem(
                second.1,
                format!(
                    "step `{}` has {} kinds: {}",
                    raw.id.value,
                    kinds.len(),
                    names.join(", ")
                ),
                "second kind",
                "a step does one thing; split it into one step per kind",
            );
            return None;
        }
    };
    // Every listed kind has a placement (a unit test of the list proves it); a key without
    // one would be a defect, reported rather than allowed everywhere.
    let Some(placement) = steps::placement(kind_key) else {
        v.problem(
            kind_loc,
            format!("`{kind_key}` has no known placement"),
            "unknown kind",
            "report this defect",
        );
        return None;
    };
    if !placement.sections.contains(&phase) {
        let places: Vec<String> = placement
            .sections
            .iter()
            .map(|p| format!("`{}`", p.key()))
            .collect();
        let places = match places.split_last() {
            Some((last, init)) if !init.is_empty() => format!("{} or {last}", init.join(", ")),
            _ => places.concat(),
        };
        v.problem(
            kind_loc,
            format!("`{kind_key}` cannot be used in `{}`", phase.key()),
            "not allowed here",
            format!("move it to {places}: {}", placement.why),
        );
    }
    let kind = raw.build(v, cx)?;
    id_ok.then(|| Step {
        id: raw.id.value.clone(),
        name: raw.name.clone(),
        kind,
    })
}
