//! From the file as written to the validated model: defaults, value parsing, and the rules that
//! span several fields (unique ids, references, where each step kind may appear). Every problem
//! is collected; nothing stops at the first.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::str::FromStr;

use super::diagnostic::{Locator, Problem};
use super::lint::did_you_mean;
use super::model::{self, Phase, Step, StepKind, Target, defaults};
use super::raw::*;
use super::spanned::{Loc, Spanned};
use crate::types::window::{parse_time, parse_weekday};
use crate::types::{HumanDuration, Version, Window};

pub const API_VERSION: &str = "eks-upgrade/v1";
pub const KIND: &str = "Workflow";

struct Validator<'a> {
    locator: Locator<'a>,
    problems: Vec<Problem>,
}

impl Validator<'_> {
    fn problem(
        &mut self,
        loc: Loc,
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<String>,
    ) {
        let span = self.locator.span(loc);
        self.problems
            .push(Problem::new(message).at(span).label(label).help(help));
    }

    fn duration(
        &mut self,
        field: &str,
        value: Option<&Spanned<DurationText>>,
        default: std::time::Duration,
    ) -> HumanDuration {
        let Some(text) = value else {
            return HumanDuration(default);
        };
        match HumanDuration::from_str(&text.value.0) {
            Ok(d) => d,
            Err(e) => {
                self.problem(
                    text.loc,
                    format!("`{field}`: {e}"),
                    "not a duration",
                    e.help(),
                );
                HumanDuration(default)
            }
        }
    }

    /// A duration that must be longer than zero (timeouts, intervals).
    fn positive(
        &mut self,
        field: &str,
        value: Option<&Spanned<DurationText>>,
        default: std::time::Duration,
    ) -> HumanDuration {
        let d = self.duration(field, value, default);
        if d.0.is_zero()
            && let Some(text) = value
        {
            self.problem(
                text.loc,
                format!("`{field}` must be longer than zero"),
                "zero",
                format!(
                    "use a positive duration, such as `{}`",
                    HumanDuration(default)
                ),
            );
        }
        d
    }

    fn dns_label(&mut self, what: &str, value: &Spanned<String>) -> bool {
        let s = value.value.as_str();
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if !ok {
            self.problem(
                value.loc,
                format!("{what} `{s}` is not a valid name"),
                "invalid name",
                "use lowercase letters, digits and `-`, starting and ending with a letter or digit, at most 63 characters",
            );
        }
        ok
    }
}

/// Validates a parsed file. `Err` holds every problem found.
pub fn validate(
    raw: &RawWorkflow,
    path: &Path,
    text: &str,
) -> Result<model::Workflow, Vec<Problem>> {
    let mut v = Validator {
        locator: Locator::new(text),
        problems: Vec::new(),
    };

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
                let (line, _) = v.locator.line_col(v.locator.span(*first).offset);
                v.problem(
                    step.value.id.loc,
                    format!("step id `{}` is used twice", step.value.id.value),
                    "duplicate id",
                    format!("the first use is on line {line}; give each step its own id"),
                );
            } else {
                seen_ids.insert(step.value.id.value.clone(), step.value.id.loc);
            }
            if let Some(s) = build_step(&mut v, phase, step, &velero) {
                out.push((step.value.id.loc, s));
            }
        }
        built.push((phase, out));
    }

    check_structure(&mut v, &built, spec);

    if !v.problems.is_empty() {
        v.problems.sort_by_key(|p| p.span.map_or(0, |s| s.offset));
        return Err(v.problems);
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
        prepare: sections.next().unwrap_or_default(),
        upgrade: sections.next().unwrap_or_default(),
        on_failure: sections.next().unwrap_or_default(),
        finish: sections.next().unwrap_or_default(),
    })
}

fn cluster(v: &mut Validator, raw: &RawCluster) -> model::ClusterRef {
    if let Some(name) = &raw.name {
        let s = name.value.as_str();
        let ok = !s.is_empty()
            && s.len() <= 100
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            v.problem(name.loc, format!("`{s}` is not a valid EKS cluster name"), "invalid name", "EKS cluster names are 1 to 100 letters, digits, `-` and `_`, starting with a letter or digit");
        }
    }
    if let Some(region) = &raw.region {
        let s = region.value.as_str();
        let parts: Vec<&str> = s.split('-').collect();
        let ok = parts.len() >= 3
            && parts[..parts.len() - 1]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
            && parts
                .last()
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !ok {
            v.problem(
                region.loc,
                format!("`{s}` is not an AWS region"),
                "invalid region",
                "write a region code such as `eu-west-1` or `us-east-1`",
            );
        }
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

fn velero(v: &mut Validator, raw: Option<&RawVelero>) -> model::VeleroSettings {
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
    model::VeleroSettings {
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

/// The kinds set on a step, by YAML key, with their locations.
fn kinds_of(step: &RawStep) -> Vec<(&'static str, Loc)> {
    let locs = [
        step.preflight.as_ref().map(|s| s.loc),
        step.velero_backup.as_ref().map(|s| s.loc),
        step.verify_backup.as_ref().map(|s| s.loc),
        step.approval.as_ref().map(|s| s.loc),
        step.upgrade_control_plane.as_ref().map(|s| s.loc),
        step.upgrade_addons.as_ref().map(|s| s.loc),
        step.upgrade_nodegroups.as_ref().map(|s| s.loc),
        step.eksctl.as_ref().map(|s| s.loc),
        step.health_check.as_ref().map(|s| s.loc),
        step.velero_restore.as_ref().map(|s| s.loc),
        step.rollback_control_plane.as_ref().map(|s| s.loc),
        step.notify.as_ref().map(|s| s.loc),
    ];
    STEP_KINDS
        .iter()
        .zip(locs)
        .filter_map(|(k, l)| l.map(|l| (*k, l)))
        .collect()
}

/// Which sections each kind may appear in, and why not elsewhere.
fn allowed_in(kind: &str) -> (&'static [Phase], &'static str) {
    match kind {
        "preflight" => (
            &[Phase::Prepare],
            "pre-flight checks run before anything changes",
        ),
        "veleroBackup" | "verifyBackup" => (
            &[Phase::Prepare, Phase::Finish],
            "backups are taken before the upgrade (or after it succeeded)",
        ),
        "approval" => (
            &[Phase::Prepare, Phase::Upgrade, Phase::Finish],
            "recovery in `onFailure` must never wait for a person",
        ),
        "upgradeControlPlane" | "upgradeAddons" | "upgradeNodegroups" | "eksctl" => (
            &[Phase::Upgrade],
            "upgrade steps run once per hop, in `upgrade`",
        ),
        "veleroRestore" | "rollbackControlPlane" => (
            &[Phase::OnFailure],
            "recovery runs only when an upgrade step failed",
        ),
        "notify" => (
            &[Phase::Prepare],
            "a webhook is subscribed once, at the start of the run",
        ),
        _ => (
            &[
                Phase::Prepare,
                Phase::Upgrade,
                Phase::OnFailure,
                Phase::Finish,
            ],
            "",
        ),
    }
}

fn build_step(
    v: &mut Validator,
    phase: Phase,
    step: &Spanned<RawStep>,
    velero: &model::VeleroSettings,
) -> Option<Step> {
    let raw = &step.value;
    let id_ok = v.dns_label("step id", &raw.id);
    let kinds = kinds_of(raw);
    let (kind_key, kind_loc) = match kinds.as_slice() {
        [] => {
            v.problem(
                raw.id.loc,
                format!("step `{}` has no kind", raw.id.value),
                "what should this step do?",
                format!(
                    "add one of {}",
                    STEP_KINDS.map(|k| format!("`{k}`")).join(", ")
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
    let (phases, why) = allowed_in(kind_key);
    if !phases.contains(&phase) {
        let places: Vec<String> = phases.iter().map(|p| format!("`{}`", p.key())).collect();
        let places = match places.split_last() {
            Some((last, init)) if !init.is_empty() => format!("{} or {last}", init.join(", ")),
            _ => places.concat(),
        };
        v.problem(
            kind_loc,
            format!("`{kind_key}` cannot be used in `{}`", phase.key()),
            "not allowed here",
            format!("move it to {places}: {why}"),
        );
    }

    let kind = if let Some(s) = &raw.preflight {
        let p = &s.value;
        StepKind::Preflight(model::Preflight {
            fail_on: p.fail_on.unwrap_or(FailOn::Error),
            ignore: p.ignore.iter().map(|c| c.value.clone()).collect(),
            overrides: p
                .overrides
                .iter()
                .map(|o| model::CheckOverride {
                    check: o.value.check.value.clone(),
                    namespace: o.value.namespace.clone(),
                    name: o.value.name.clone(),
                    severity: o.value.severity,
                    reason: o.value.reason.clone(),
                })
                .collect(),
        })
    } else if let Some(s) = &raw.velero_backup {
        let b = &s.value;
        StepKind::VeleroBackup(model::VeleroBackup {
            included_namespaces: b.included_namespaces.clone(),
            excluded_namespaces: b.excluded_namespaces.clone(),
            included_resources: b.included_resources.clone(),
            excluded_resources: b.excluded_resources.clone(),
            label_selector: b.label_selector.clone(),
            snapshot_volumes: b.snapshot_volumes,
            ttl: v.positive("ttl", b.ttl.as_ref(), defaults::BACKUP_TTL),
            storage_location: b
                .storage_location
                .as_ref()
                .map_or_else(|| velero.storage_location.clone(), |l| l.value.clone()),
            timeout: v.positive("timeout", b.timeout.as_ref(), defaults::BACKUP_TIMEOUT),
        })
    } else if let Some(s) = &raw.verify_backup {
        let b = &s.value;
        StepKind::VerifyBackup(model::VerifyBackup {
            backup: b.backup.value.0.clone(),
            depth: b.depth.unwrap_or(VerifyDepth::Full),
            timeout: v.positive("timeout", b.timeout.as_ref(), defaults::VERIFY_TIMEOUT),
        })
    } else if let Some(s) = &raw.approval {
        StepKind::Approval(model::Approval {
            message: s
                .value
                .message
                .clone()
                .unwrap_or_else(|| defaults::APPROVAL_MESSAGE.to_string()),
            auto: s.value.auto.unwrap_or(false),
        })
    } else if let Some(s) = &raw.upgrade_control_plane {
        StepKind::UpgradeControlPlane(model::UpgradeControlPlane {
            timeout: v.positive(
                "timeout",
                s.value.timeout.as_ref(),
                defaults::CONTROL_PLANE_TIMEOUT,
            ),
            force: s.value.force.unwrap_or(false),
        })
    } else if let Some(s) = &raw.upgrade_addons {
        let a = &s.value;
        for (name, version) in &a.versions {
            if version.trim().is_empty() {
                v.problem(
                    s.loc,
                    format!("the pinned version of `{name}` is empty"),
                    "in `versions`",
                    "write an EKS add-on version such as `v1.19.2-eksbuild.1`, or remove the pin",
                );
            }
        }
        StepKind::UpgradeAddons(model::UpgradeAddons {
            addons: a
                .addons
                .as_ref()
                .map(|l| l.iter().map(|n| n.value.clone()).collect()),
            versions: a.versions.clone(),
            resolve_conflicts: a.resolve_conflicts.unwrap_or(ResolveConflicts::Preserve),
            timeout: v.positive("timeout", a.timeout.as_ref(), defaults::ADDON_TIMEOUT),
        })
    } else if let Some(s) = &raw.upgrade_nodegroups {
        let n = &s.value;
        if let Some(mp) = n.max_parallel.as_ref().filter(|m| m.value == 0) {
            v.problem(
                mp.loc,
                "`maxParallel` must be at least 1",
                "zero",
                "use `maxParallel: 1` to upgrade one node group at a time",
            );
        }
        StepKind::UpgradeNodegroups(model::UpgradeNodegroups {
            nodegroups: n
                .nodegroups
                .as_ref()
                .map(|l| l.iter().map(|g| g.value.clone()).collect()),
            max_parallel: n.max_parallel.as_ref().map_or(1, |m| m.value.max(1)),
            force: n.force.unwrap_or(false),
            timeout: v.positive("timeout", n.timeout.as_ref(), defaults::NODEGROUP_TIMEOUT),
        })
    } else if let Some(s) = &raw.eksctl {
        let e = &s.value;
        for (field, value) in [("configFile", &e.config_file), ("binary", &e.binary)] {
            if let Some(x) = value.as_ref().filter(|x| x.value.trim().is_empty()) {
                v.problem(
                    x.loc,
                    format!("`{field}` is empty"),
                    "empty",
                    "give a path, or leave the field out for the default",
                );
            }
        }
        StepKind::Eksctl(model::Eksctl {
            config_file: e.config_file.as_ref().map_or_else(
                || defaults::EKSCTL_CONFIG.into(),
                |f| f.value.clone().into(),
            ),
            binary: e
                .binary
                .as_ref()
                .map_or_else(|| "eksctl".to_string(), |b| b.value.clone()),
            upgrade_nodegroups: e.upgrade_nodegroups.unwrap_or(false),
            update_addons: e.update_addons.unwrap_or(false),
            timeout: v.positive("timeout", e.timeout.as_ref(), defaults::EKSCTL_TIMEOUT),
        })
    } else if let Some(s) = &raw.health_check {
        let h = &s.value;
        let mut probes = Vec::new();
        for p in &h.probes {
            let url = &p.value.url;
            if !(url.value.starts_with("http://") || url.value.starts_with("https://")) {
                v.problem(
                    url.loc,
                    format!("probe URL `{}` is not an http(s) URL", url.value),
                    "not http(s)",
                    "write a full URL such as `https://app.example.com/healthz`",
                );
            }
            if let Some(code) = p
                .value
                .expect_status
                .as_ref()
                .filter(|c| !(100..=599).contains(&c.value))
            {
                v.problem(
                    code.loc,
                    format!("`{}` is not an HTTP status code", code.value),
                    "not 100–599",
                    "use a status code such as `200`",
                );
            }
            probes.push(model::Probe {
                url: url.value.clone(),
                expect_status: p.value.expect_status.as_ref().map(|c| c.value),
                timeout: v.positive("timeout", p.value.timeout.as_ref(), defaults::PROBE_TIMEOUT),
            });
        }
        StepKind::HealthCheck(model::HealthCheck {
            settle: v.duration("settle", h.settle.as_ref(), std::time::Duration::ZERO),
            timeout: v.positive("timeout", h.timeout.as_ref(), defaults::HEALTH_TIMEOUT),
            interval: v.positive("interval", h.interval.as_ref(), defaults::HEALTH_INTERVAL),
            namespaces: h.namespaces.clone(),
            probes,
        })
    } else if let Some(s) = &raw.velero_restore {
        let r = &s.value;
        StepKind::VeleroRestore(model::VeleroRestore {
            backup: r.backup.value.0.clone(),
            existing_resource_policy: r
                .existing_resource_policy
                .unwrap_or(ExistingResourcePolicy::Update),
            included_namespaces: r.included_namespaces.clone(),
            excluded_namespaces: r.excluded_namespaces.clone(),
            timeout: v.positive("timeout", r.timeout.as_ref(), defaults::RESTORE_TIMEOUT),
        })
    } else if let Some(s) = &raw.rollback_control_plane {
        let r = &s.value;
        let minutes = r
            .rollback_config
            .as_ref()
            .and_then(|c| c.value.timeout_minutes.as_ref());
        if let Some(m) = minutes.filter(|m| !(120..=10080).contains(&m.value)) {
            v.problem(m.loc, format!("`timeoutMinutes` is {}, outside what EKS accepts", m.value), "not 120–10080", "EKS accepts 120 (2 hours) to 10080 (7 days); leave it out for EKS's default of 720");
        }
        StepKind::RollbackControlPlane(model::RollbackControlPlane {
            timeout: v.positive("timeout", r.timeout.as_ref(), defaults::ROLLBACK_TIMEOUT),
            force: r.force.unwrap_or(false),
            rollback_timeout_minutes: minutes.map(|m| m.value),
        })
    } else if let Some(s) = &raw.notify {
        let n = &s.value;
        let url = match (&n.url, &n.url_env) {
            (Some(u), None) => {
                if !(u.value.starts_with("https://") || u.value.starts_with("http://")) {
                    v.problem(u.loc, "the webhook `url` is not an http(s) URL", "not http(s)", "write the full webhook URL, or use `urlEnv` to read it from the environment");
                }
                model::WebhookUrl::Literal(u.value.clone())
            }
            (None, Some(e)) => {
                if e.value.is_empty()
                    || !e
                        .value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    v.problem(
                        e.loc,
                        format!("`{}` is not an environment variable name", e.value),
                        "invalid name",
                        "use letters, digits and `_`, such as `SLACK_WEBHOOK_URL`",
                    );
                }
                model::WebhookUrl::Env(e.value.clone())
            }
            (Some(_), Some(e)) => {
                v.problem(
                    e.loc,
                    "`notify` has both `url` and `urlEnv`",
                    "second source",
                    "keep one; `urlEnv` keeps the secret out of the file",
                );
                return None;
            }
            (None, None) => {
                v.problem(
                    s.loc,
                    "`notify` needs a webhook",
                    "no `url` or `urlEnv`",
                    "add `urlEnv: SLACK_WEBHOOK_URL` (or `url:`)",
                );
                return None;
            }
        };
        let mut on = n.on.clone().unwrap_or_else(|| {
            vec![
                NotifyEvent::Start,
                NotifyEvent::Success,
                NotifyEvent::Failure,
            ]
        });
        on.sort();
        on.dedup();
        if on.is_empty() {
            v.problem(s.loc, "`notify` has an empty `on` list", "never sends", "list at least one of `start`, `success`, `failure`, or leave `on` out for all three");
        }
        StepKind::Notify(model::Notify {
            url,
            on,
            timeout: v.positive("timeout", n.timeout.as_ref(), defaults::NOTIFY_TIMEOUT),
            retries: n.retries.unwrap_or(defaults::NOTIFY_RETRIES),
        })
    } else {
        return None;
    };
    id_ok.then(|| Step {
        id: raw.id.value.clone(),
        name: raw.name.clone(),
        kind,
    })
}

/// Rules about the workflow as a whole: the control-plane step, the order within a hop, and
/// references between steps.
fn check_structure(v: &mut Validator, built: &[(Phase, Vec<(Loc, Step)>)], spec: &RawSpec) {
    let section = |phase: Phase| {
        built
            .iter()
            .find(|(p, _)| *p == phase)
            .map_or(&[][..], |(_, s)| s.as_slice())
    };
    let upgrade = section(Phase::Upgrade);

    let movers: Vec<&(Loc, Step)> = upgrade
        .iter()
        .filter(|(_, s)| {
            matches!(
                s.kind,
                StepKind::UpgradeControlPlane(_) | StepKind::Eksctl(_)
            )
        })
        .collect();
    if !spec.upgrade.is_empty() && movers.is_empty() && upgrade.len() == spec.upgrade.len() {
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
    if let Some(first_mover) = upgrade.iter().position(|(_, s)| {
        matches!(
            s.kind,
            StepKind::UpgradeControlPlane(_) | StepKind::Eksctl(_)
        )
    }) {
        for (loc, step) in &upgrade[..first_mover] {
            if matches!(
                step.kind,
                StepKind::UpgradeAddons(_) | StepKind::UpgradeNodegroups(_)
            ) {
                v.problem(*loc, format!("`{}` runs before the control plane is upgraded", step.id), "too early", "EKS upgrades node groups and add-ons only up to the control plane's version; move this step after the control-plane step");
            }
        }
    }
    if spec.upgrade.is_empty()
        && let Some(first) = spec.on_failure.first()
    {
        v.problem(first.loc, "`onFailure` steps can never run", "no `upgrade` steps", "`onFailure` runs when an `upgrade` step fails; add `upgrade` steps or remove `onFailure`");
    }

    // References. Execution order is prepare, upgrade, onFailure, finish; a reference must
    // name a step that has run by then.
    let order: Vec<(Phase, &(Loc, Step))> = built
        .iter()
        .flat_map(|(p, s)| s.iter().map(move |x| (*p, x)))
        .collect();
    let backups_before = |i: usize| -> HashSet<&str> {
        order[..i]
            .iter()
            .filter(|(_, (_, s))| matches!(s.kind, StepKind::VeleroBackup(_)))
            .map(|(_, (_, s))| s.id.as_str())
            .collect()
    };
    let verified_in_prepare: HashSet<&str> = section(Phase::Prepare)
        .iter()
        .filter_map(|(_, s)| match &s.kind {
            StepKind::VerifyBackup(vb) => Some(vb.backup.as_str()),
            _ => None,
        })
        .collect();
    let all_ids: Vec<&str> = order.iter().map(|(_, (_, s))| s.id.as_str()).collect();

    for (i, (phase, (_, step))) in order.iter().enumerate() {
        let (reference, loc) = match (&step.kind, reference_loc(spec, *phase, &step.id)) {
            (StepKind::VerifyBackup(vb), Some(loc)) => (vb.backup.as_str(), loc),
            (StepKind::VeleroRestore(r), Some(loc)) => (r.backup.as_str(), loc),
            _ => continue,
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
        if matches!(step.kind, StepKind::VeleroRestore(_))
            && !verified_in_prepare.contains(reference)
        {
            v.problem(loc, format!("`{}` restores backup `{reference}`, which no `verifyBackup` step in `prepare` verifies", step.id), "unverified backup", format!("restores only ever use verified backups: add `verifyBackup: {{ backup: {reference} }}` to `prepare` after the backup"));
        }
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
    step.value
        .verify_backup
        .as_ref()
        .map(|b| b.value.backup.loc)
        .or_else(|| {
            step.value
                .velero_restore
                .as_ref()
                .map(|r| r.value.backup.loc)
        })
}
