//! From the file as written to the validated model: defaults, value parsing, and the rules that
//! span several fields (unique ids, references, where each step kind may appear). Every problem
//! is collected; nothing stops at the first.

mod blue_green;
mod step;
mod structure;
mod traffic;

use step::build_step;
use structure::check_structure;

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use super::model::{self, Target};
use super::raw::*;
use crate::format::lint::did_you_mean;
use crate::format::spanned::{Loc, Spanned};
use crate::format::text::{TargetText, TimeText};
use crate::format::{Problem, Validator};
use crate::steps::{BuildCx, Step};
use crate::types::names;
use crate::types::window::{parse_time, parse_weekday};
use crate::types::{Phase, Version, Window};
use crate::velero;

/// Defaults of the document's settings.
pub mod defaults {
    pub const VELERO_NAMESPACE: &str = "velero";
    pub const STORAGE_LOCATION: &str = "default";
}

pub const API_VERSION: &str = "eks-upgrade/v1";
pub const KIND: &str = "Workflow";

/// Validates a parsed file. `Err` holds every problem found.
pub fn validate(
    raw: &RawWorkflow,
    path: &Path,
    text: &str,
) -> Result<model::Workflow, Vec<Problem>> {
    let mut v = Validator::new(text);

    if raw.api_version.value != API_VERSION {
        v.problem(
            raw.api_version.loc,
            format!("unsupported `apiVersion` `{}`", raw.api_version.value),
            "unsupported",
            format!("this version of eks-upgrade reads `apiVersion: {API_VERSION}`"),
        );
    }
    if raw.kind.value != KIND {
        v.problem(
            raw.kind.loc,
            format!("`kind` is `{}`, not `{KIND}`", raw.kind.value),
            "expected `Workflow`",
            format!("write `kind: {KIND}`"),
        );
    }
    v.dns_label("workflow name", &raw.metadata.value.name);

    let spec = &raw.spec.value;
    let cluster = spec
        .cluster
        .as_ref()
        .map(|c| cluster(&mut v, &c.value))
        .unwrap_or_default();
    let target = spec.target.as_ref().and_then(|t| target(&mut v, t));
    let window = spec.window.as_ref().and_then(|w| window(&mut v, &w.value));
    let velero = velero(&mut v, spec.velero.as_ref().map(|s| &s.value));
    let blue_green = traffic::settings(&mut v, spec);
    let dir = path.parent().unwrap_or_else(|| Path::new("."));

    let phases = [
        (Phase::Prepare, &spec.prepare),
        (Phase::Upgrade, &spec.upgrade),
        (Phase::OnFailure, &spec.on_failure),
        (Phase::Finish, &spec.finish),
    ];
    let mut seen_ids: BTreeMap<String, Loc> = BTreeMap::new();
    let mut built: Vec<(Phase, Vec<(Loc, Step)>)> = Vec::new();
    for (phase, steps) in phases {
        let mut out = Vec::new();
        for step in steps {
            if let Some(first) = seen_ids.get(&step.value.id.value) {
                let line = v.line_of(*first);
                v.problem(
                    step.value.id.loc,
                    format!("step id `{}` is used twice", step.value.id.value),
                    "duplicate id",
                    format!("the first use is on line {line}; give each step its own id"),
                );
            } else {
                seen_ids.insert(step.value.id.value.clone(), step.value.id.loc);
            }
            if let Some(s) = build_step(
                &mut v,
                phase,
                step,
                &BuildCx {
                    velero: &velero,
                    blue_green: blue_green.as_ref(),
                    dir,
                },
            ) {
                out.push((step.value.id.loc, s));
            }
        }
        built.push((phase, out));
    }

    check_structure(&mut v, &built, spec, raw.spec.loc);

    if v.has_problems() {
        return Err(v.into_problems());
    }
    let mut sections = built
        .into_iter()
        .map(|(_, steps)| steps.into_iter().map(|(_, s)| s).collect::<Vec<_>>());
    Ok(model::Workflow {
        path: path.to_path_buf(),
        name: raw.metadata.value.name.value.clone(),
        description: raw.metadata.value.description.clone(),
        cluster,
        target,
        window,
        velero,
        blue_green,
        prepare: sections.next().unwrap_or_default(),
        upgrade: sections.next().unwrap_or_default(),
        on_failure: sections.next().unwrap_or_default(),
        finish: sections.next().unwrap_or_default(),
    })
}

fn cluster(v: &mut Validator, raw: &RawCluster) -> model::ClusterRef {
    if let Some(name) = &raw.name
        && let Err(p) = names::eks_cluster_name(&name.value)
    {
        v.problem(
            name.loc,
            format!("`{}` is not a valid EKS cluster name", name.value),
            "invalid name",
            p.rule,
        );
    }
    if let Some(region) = &raw.region
        && let Err(p) = names::aws_region(&region.value)
    {
        v.problem(
            region.loc,
            format!("`{}` is not an AWS region", region.value),
            "invalid region",
            p.rule,
        );
    }
    model::ClusterRef {
        name: raw.name.as_ref().map(|n| n.value.clone()),
        region: raw.region.as_ref().map(|r| r.value.clone()),
    }
}

fn target(v: &mut Validator, raw: &Spanned<TargetText>) -> Option<Target> {
    let text = raw.value.0.trim();
    match text {
        "next" => return Some(Target::Next),
        "latest" => return Some(Target::Latest),
        _ => {}
    }
    match Version::from_str(text) {
        Ok(version) => Some(Target::Version(version)),
        Err(e) => {
            let help = match e.suggestion() {
                Some(s) => format!("write `target: \"{s}\"`"),
                None => {
                    "write `next`, `latest`, or a quoted version such as `\"1.35\"`".to_string()
                }
            };
            v.problem(raw.loc, format!("`target`: {e}"), "not a target", help);
            None
        }
    }
}

fn window(v: &mut Validator, raw: &RawWindow) -> Option<Window> {
    let mut days = Vec::new();
    if raw.days.value.is_empty() {
        v.problem(
            raw.days.loc,
            "the window has no days",
            "empty",
            "list the days it opens on, such as `[Sat, Sun]`",
        );
    }
    for day in &raw.days.value {
        match parse_weekday(&day.value.0) {
            Some(d) if days.contains(&d) => v.problem(
                day.loc,
                format!("`{}` is listed twice", day.value.0),
                "duplicate",
                "list each day once",
            ),
            Some(d) => days.push(d),
            None => v.problem(
                day.loc,
                format!("`{}` is not a day of the week", day.value.0),
                "not a day",
                "use Mon, Tue, Wed, Thu, Fri, Sat or Sun",
            ),
        }
    }
    let mut time = |t: &Spanned<TimeText>, which: &str| {
        let parsed = parse_time(&t.value.0);
        if parsed.is_none() {
            v.problem(
                t.loc,
                format!("window `{which}` `{}` is not a time", t.value.0),
                "not HH:MM",
                "write a 24-hour time such as \"02:00\"",
            );
        }
        parsed
    };
    let start = time(&raw.start, "start");
    let end = time(&raw.end, "end");
    if let (Some(s), Some(e)) = (start, end)
        && s == e
    {
        v.problem(
            raw.end.loc,
            "the window starts and ends at the same time",
            "same as `start`",
            "an end before the start crosses midnight; an end equal to it is empty",
        );
    }
    let timezone = match &raw.timezone {
        None => Some(chrono_tz::UTC),
        Some(tz) => match tz.value.parse::<chrono_tz::Tz>() {
            Ok(z) => Some(z),
            Err(_) => {
                let names = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name());
                let help = match did_you_mean(&tz.value, names) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => {
                        "use an IANA time zone name such as `UTC` or `Europe/Berlin`".to_string()
                    }
                };
                v.problem(
                    tz.loc,
                    format!("`{}` is not a time zone", tz.value),
                    "unknown time zone",
                    help,
                );
                None
            }
        },
    };
    Some(Window {
        days,
        start: start?,
        end: end?,
        timezone: timezone?,
    })
}

fn velero(v: &mut Validator, raw: Option<&RawVelero>) -> velero::Settings {
    let namespace = raw.and_then(|r| r.namespace.as_ref());
    if let Some(ns) = namespace {
        v.dns_label("Velero namespace", ns);
    }
    let location = raw.and_then(|r| r.storage_location.as_ref());
    if let Some(l) = location.filter(|l| l.value.trim().is_empty()) {
        v.problem(
            l.loc,
            "`storageLocation` is empty",
            "empty",
            "name a BackupStorageLocation, such as `default`",
        );
    }
    velero::Settings {
        namespace: namespace.map_or_else(
            || defaults::VELERO_NAMESPACE.to_string(),
            |n| n.value.clone(),
        ),
        storage_location: location.map_or_else(
            || defaults::STORAGE_LOCATION.to_string(),
            |l| l.value.clone(),
        ),
    }
}
