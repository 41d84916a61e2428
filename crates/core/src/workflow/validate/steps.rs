//! Building each step of the model from the file, with its options checked and defaulted.

use super::Validator;
use crate::workflow::model::{self, Phase, Step, StepKind, defaults};
use crate::workflow::raw::*;
use crate::workflow::spanned::{Loc, Spanned};

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

pub(super) fn build_step(
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
        let codes = p
            .ignore
            .iter()
            .chain(p.overrides.iter().map(|o| &o.value.check));
        for code in codes {
            known_check(v, code);
        }
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

/// A check code in `ignore` or `overrides` must exist: a typo would silently keep a finding
/// the operator meant to accept, or hide the one they meant to keep.
fn known_check(v: &mut Validator, code: &Spanned<String>) {
    let codes = crate::checks::CATALOG.iter().map(|(c, _)| *c);
    if codes.clone().any(|c| c == code.value) {
        return;
    }
    let help = match crate::workflow::lint::did_you_mean(&code.value, codes) {
        Some(s) => {
            format!("did you mean `{s}`? `eks-upgrade check --list-checks` lists every code")
        }
        None => format!(
            "use one of the check codes: {}",
            crate::checks::CATALOG
                .iter()
                .map(|(c, _)| *c)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    v.problem(
        code.loc,
        format!("unknown check code `{}`", code.value),
        "no such check",
        help,
    );
}
