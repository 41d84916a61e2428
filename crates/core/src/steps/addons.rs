//! `upgradeAddons`: each EKS add-on to the version EKS makes default for the hop's Kubernetes
//! version (or the pinned one), keeping custom configuration, and waiting for ACTIVE. vpc-cni
//! moves one minor version per update, as AWS requires.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_eks::types::ResolveConflicts as EksResolve;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::control_plane::PER_HOP;
use super::kind::{BuildCx, Kind, Placement, PlanCx, Role, TimeScale};
use super::{StepCtx, StepError, StepResult};
use crate::cloud::eks::{self, AddonVersion, EksError, UpdateOf};
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::DurationText;
use crate::journal::Fact;
use crate::types::HumanDuration;

/// The update of one add-on in one round (`update:NAME:ROUND`).
pub const UPDATE: Fact<String> = Fact::new("update");
/// The idempotency token of that update (`token:NAME:ROUND`).
pub const TOKEN: Fact<String> = Fact::new("token");
/// Add-on name → `NAME FROM → TO`, for every add-on EKS now runs at a new version. A rollback
/// of the control plane does not undo it, so the report lists it.
pub const CHANGED: Fact<BTreeMap<String, String>> = Fact::new("changed");
/// Add-on name → its version when the step started: what `rollbackAddons` returns to.
pub const BEFORE: Fact<BTreeMap<String, String>> = Fact::new("versionsBefore");
/// Add-ons a `rollbackSafe` step left for a later step, with why.
pub const DEFERRED: Fact<Vec<String>> = Fact::new("deferred");

/// How long to wait for each add-on unless the step says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// How EKS treats add-on configuration that differs from its defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ResolveConflicts {
    /// Keep custom configuration (default).
    Preserve,
    /// Replace it with EKS defaults.
    Overwrite,
    /// Fail on conflicts.
    None,
}

/// Options for the add-on upgrade.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawUpgradeAddons {
    /// Add-ons to upgrade. Default: every EKS add-on of the cluster.
    pub addons: Option<Vec<Spanned<String>>>,
    /// Pinned versions by add-on name, instead of the default for the hop's version.
    #[serde(default)]
    pub versions: BTreeMap<String, String>,
    /// `preserve` (default), `overwrite` or `none`.
    pub resolve_conflicts: Option<ResolveConflicts>,
    /// How long to wait for each add-on. Default: `20m`.
    pub timeout: Option<Spanned<DurationText>>,
    /// Move each add-on only to a version EKS lists for both the hop's Kubernetes version and
    /// the previous one, so a control-plane rollback needs no add-on downgrade. Add-ons without
    /// such a version (kube-proxy, tied to one minor) are left for a later `upgradeAddons` step
    /// of the hop, after the node groups. Default: `false`.
    pub rollback_safe: Option<bool>,
}

/// A validated `upgradeAddons` step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeAddons {
    pub addons: Option<Vec<String>>,
    pub versions: BTreeMap<String, String>,
    pub resolve_conflicts: ResolveConflicts,
    pub timeout: HumanDuration,
    pub rollback_safe: bool,
}

pub struct UpgradeAddonsKind;

impl Kind for UpgradeAddonsKind {
    type Raw = RawUpgradeAddons;
    type Model = UpgradeAddons;

    const DOC: &'static str = "Upgrades EKS add-ons to versions compatible with the hop's version.";
    const TITLE: &'static str = "Upgrade add-ons";
    const PLACEMENT: Placement = PER_HOP;
    const MUTATES: bool = true;
    const ROLES: &'static [Role] = &[Role::UpgradesAddons];
    const EXAMPLE: &'static str = "{ resolveConflicts: preserve }";

    fn build(
        raw: &Spanned<RawUpgradeAddons>,
        v: &mut Validator<'_>,
        _: &BuildCx<'_>,
    ) -> Option<UpgradeAddons> {
        let a = &raw.value;
        for (name, version) in &a.versions {
            if version.trim().is_empty() {
                v.problem(
                    raw.loc,
                    format!("the pinned version of `{name}` is empty"),
                    "in `versions`",
                    "write an EKS add-on version such as `v1.19.2-eksbuild.1`, or remove the pin",
                );
            }
        }
        Some(UpgradeAddons {
            addons: a
                .addons
                .as_ref()
                .map(|l| l.iter().map(|n| n.value.clone()).collect()),
            versions: a.versions.clone(),
            resolve_conflicts: a.resolve_conflicts.unwrap_or(ResolveConflicts::Preserve),
            timeout: v.positive("timeout", a.timeout.as_ref(), DEFAULT_TIMEOUT),
            rollback_safe: a.rollback_safe.unwrap_or(false),
        })
    }

    /// The version each add-on would move to in this hop, starting from where the plan's
    /// earlier hops left it.
    async fn plan(step: &UpgradeAddons, cx: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        let Some(hop) = cx.hop else {
            return Ok(vec!["no add-on needs an update".into()]);
        };
        let mut rows = Vec::new();
        for (name, version) in cx.projection.addons.iter_mut() {
            let offered = eks::addon_versions(&cx.conn.eks, name, hop).await?;
            let previous = match hop.prev_minor().filter(|_| step.rollback_safe) {
                Some(prev) => Some(eks::addon_versions(&cx.conn.eks, name, prev).await?),
                None => None,
            };
            let pin = step.versions.get(name).map(String::as_str);
            match choose(name, version, &offered, previous.as_deref(), pin) {
                Choice::Move(n) => {
                    rows.push(format!("UpdateAddon {name} {version} → {n}"));
                    *version = n;
                }
                Choice::Stay => rows.push(format!("{name} stays at {version}")),
                Choice::Defer => rows.push(format!(
                    "{name} stays at {version} for now: no version runs on both {} and {hop}",
                    hop.prev_minor().map(|p| p.to_string()).unwrap_or_default()
                )),
            }
        }
        if rows.iter().any(|r| r.starts_with("UpdateAddon ")) {
            Ok(rows)
        } else {
            Ok(vec!["no add-on needs an update".into()])
        }
    }

    async fn run(step: &UpgradeAddons, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }

    fn scale_time(step: &mut UpgradeAddons, scale: &TimeScale) {
        scale.timeout(&mut step.timeout);
    }

    fn typical_minutes(_: &UpgradeAddons) -> u64 {
        10
    }
}

/// `v1.19.2-eksbuild.1` → (1, 19, 2, 1), for ordering add-on versions.
pub fn version_key(v: &str) -> (u64, u64, u64, u64) {
    let core = v.trim_start_matches('v');
    let (semver, build) = core.split_once("-eksbuild.").unwrap_or((core, "0"));
    let mut parts = semver.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        build.parse().unwrap_or(0),
    )
}

/// What to do with one add-on in a hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Move(String),
    /// Already where the hop wants it.
    Stay,
    /// A rollback-safe step found no version for both Kubernetes versions: a later step moves it.
    Defer,
}

/// The move for one add-on: the pin if there is one; otherwise, for a rollback-safe step
/// (`previous` given), only among the versions EKS lists for both the hop and the version
/// before it.
pub fn choose(
    name: &str,
    current: &str,
    offered: &[AddonVersion],
    previous: Option<&[AddonVersion]>,
    pinned: Option<&str>,
) -> Choice {
    if let Some(p) = pinned {
        return if p == current {
            Choice::Stay
        } else {
            Choice::Move(p.to_string())
        };
    }
    let both: Vec<AddonVersion>;
    let candidates = match previous {
        Some(previous) => {
            both = offered
                .iter()
                .filter(|v| previous.iter().any(|p| p.version == v.version))
                .cloned()
                .collect();
            if both.is_empty() {
                return Choice::Defer;
            }
            &both[..]
        }
        None => offered,
    };
    match target_version(name, current, candidates, None) {
        Some(v) if v != current => Choice::Move(v),
        _ => Choice::Stay,
    }
}

/// The version an add-on should move to for `kubernetes`: the pin, else the default, else the
/// newest. vpc-cni never jumps more than one minor version at a time; never a downgrade.
pub fn target_version(
    name: &str,
    current: &str,
    offered: &[AddonVersion],
    pinned: Option<&str>,
) -> Option<String> {
    if let Some(p) = pinned {
        return Some(p.to_string());
    }
    let mut choice = offered
        .iter()
        .find(|v| v.default)
        .or_else(|| offered.iter().max_by_key(|v| version_key(&v.version)))?
        .version
        .clone();
    let cur = version_key(current);
    if name == "vpc-cni" && version_key(&choice).1 > cur.1 + 1 {
        // The newest offered version on the next minor line.
        choice = offered
            .iter()
            .filter(|v| {
                version_key(&v.version).0 == cur.0 && version_key(&v.version).1 == cur.1 + 1
            })
            .max_by_key(|v| version_key(&v.version))
            .map(|v| v.version.clone())
            .unwrap_or(choice);
    }
    (version_key(&choice) > cur).then_some(choice)
}

fn resolve(r: ResolveConflicts) -> EksResolve {
    match r {
        ResolveConflicts::Preserve => EksResolve::Preserve,
        ResolveConflicts::Overwrite => EksResolve::Overwrite,
        ResolveConflicts::None => EksResolve::None,
    }
}

async fn run(step: &UpgradeAddons, ctx: &StepCtx<'_>) -> StepResult {
    let hop = ctx.hop()?;
    let cluster = ctx.cluster().to_string();
    let installed = eks::addons(&ctx.conn.eks, &cluster).await?;
    let selected: Vec<_> = match &step.addons {
        Some(names) => {
            for n in names {
                if !installed.iter().any(|a| &a.name == n) {
                    return Err(StepError::Failed(format!(
                        "add-on `{n}` is not installed on `{cluster}` as an EKS add-on"
                    )));
                }
            }
            installed
                .iter()
                .filter(|a| names.contains(&a.name))
                .collect()
        }
        None => installed.iter().collect(),
    };
    // The versions before any change, once: what a rollback of this hop returns to.
    if ctx.fact(&BEFORE).await.is_none() {
        let before: BTreeMap<String, String> = selected
            .iter()
            .map(|a| (a.name.clone(), a.version.clone()))
            .collect();
        ctx.record(&BEFORE, &before).await?;
    }
    let previous_version = hop.prev_minor().filter(|_| step.rollback_safe);
    let how = AddonUpdate {
        resolve_conflicts: step.resolve_conflicts,
        timeout: step.timeout,
    };
    let mut changed = Vec::new();
    let mut unchanged = Vec::new();
    let mut deferred = Vec::new();
    for addon in selected {
        let from = addon.version.clone();
        let mut current = addon.version.clone();
        let previous = match previous_version {
            Some(prev) => Some(eks::addon_versions(&ctx.conn.eks, &addon.name, prev).await?),
            None => None,
        };
        // vpc-cni may need several updates to cross minor versions one at a time.
        for round in 0..4 {
            let offered = eks::addon_versions(&ctx.conn.eks, &addon.name, hop).await?;
            let pin = step.versions.get(&addon.name).map(String::as_str);
            let target = match choose(&addon.name, &current, &offered, previous.as_deref(), pin) {
                Choice::Move(target) => target,
                Choice::Stay => break,
                Choice::Defer => {
                    deferred.push(addon.name.clone());
                    break;
                }
            };
            update_one(
                ctx,
                &how,
                &addon.name,
                (&from, &target),
                addon.configuration_values.as_deref(),
                round,
            )
            .await?;
            current = target;
        }
        if current == from {
            if !deferred.contains(&addon.name) {
                unchanged.push(addon.name.clone());
            }
        } else {
            changed.push(format!("{} {from} → {current}", addon.name));
        }
    }
    if !deferred.is_empty() {
        ctx.record(&DEFERRED, &deferred).await?;
    }
    let mut summary = if changed.is_empty() {
        "no add-on needed an update".to_string()
    } else {
        changed.join(", ")
    };
    if !unchanged.is_empty() && !changed.is_empty() {
        summary.push_str(&format!("; unchanged: {}", unchanged.join(", ")));
    }
    if let Some(prev) = previous_version
        && !deferred.is_empty()
    {
        summary.push_str(&format!(
            "; left for a later step (no version runs on both {prev} and {hop}): {}",
            deferred.join(", ")
        ));
    }
    Ok(summary)
}

/// How an add-on update is made: forward or back.
pub(crate) struct AddonUpdate {
    pub resolve_conflicts: ResolveConflicts,
    pub timeout: HumanDuration,
}

/// Updates one add-on to `change.1`; `change.0` is its version before the step, for the record
/// of what changed. EKS must then show it ACTIVE at that version.
pub(crate) async fn update_one(
    ctx: &StepCtx<'_>,
    step: &AddonUpdate,
    name: &str,
    change: (&str, &str),
    config: Option<&str>,
    round: usize,
) -> Result<String, StepError> {
    let (from, version) = change;
    let cluster = ctx.cluster().to_string();
    let fact = UPDATE.of(&format!("{name}:{round}"));
    let token_fact = TOKEN.of(&format!("{name}:{round}"));
    let id = match ctx.fact(&fact).await {
        Some(id) => id,
        None => adopt_or_start(ctx, &fact, UpdateOf::Addon(name))
            .await?
            .unwrap_or_default(),
    };
    let id = match id.is_empty() {
        false => id,
        true => {
            let token: String = ctx.fact(&token_fact).await.unwrap_or_default();
            let token = if token.is_empty() {
                let t = uuid::Uuid::new_v4().to_string();
                ctx.record(&token_fact, &t).await?;
                t
            } else {
                token
            };
            let mut req = ctx
                .conn
                .eks
                .update_addon()
                .cluster_name(&cluster)
                .addon_name(name)
                .addon_version(version)
                .resolve_conflicts(resolve(step.resolve_conflicts))
                .client_request_token(token);
            // Sending the current configuration keeps it; leaving it out could reset it.
            if let Some(c) = config {
                req = req.configuration_values(c);
            }
            let out = req.send().await.map_err(|e| {
                StepError::Failed(format!(
                    "EKS refused to update `{name}` to {version}: {}",
                    crate::errors::sdk("EKS", "UpdateAddon", &e)
                ))
            })?;
            let id = out
                .update()
                .and_then(|u| u.id())
                .unwrap_or_default()
                .to_string();
            ctx.record(&fact, &id).await?;
            id
        }
    };
    let started = Instant::now();
    let wait = eks::wait_update(&ctx.conn.eks, &cluster, &id, UpdateOf::Addon(name), |u| {
        ctx.progress(
            &format!(
                "{name} → {version}: {} ({}s)",
                u.status,
                started.elapsed().as_secs()
            ),
            None,
            None,
        );
    });
    let state = tokio::time::timeout(step.timeout.0, wait)
        .await
        .map_err(|_| {
            StepError::InFlight(format!(
                "the update of `{name}` did not finish within {}; it continues on AWS, and `eks-upgrade resume` re-attaches to it",
                step.timeout
            ))
        })?
        ?;
    if state.succeeded() {
        // EKS runs the new version now, healthy or not, and a rollback of the control plane
        // does not undo it: the report lists it even when this step fails.
        let mut changed: BTreeMap<String, String> = ctx.fact(&CHANGED).await.unwrap_or_default();
        changed.insert(name.to_string(), format!("{name} {from} → {version}"));
        ctx.record(&CHANGED, &changed).await?;
    }
    let info = eks::addon(&ctx.conn.eks, &cluster, name).await?;
    if state.succeeded() && info.status == "ACTIVE" && info.version != version {
        return Err(StepError::Failed(format!(
            "add-on `{name}`: update {} reported success, but EKS shows it at {}, not {version}",
            state.id, info.version
        )));
    }
    if !state.succeeded() || info.status != "ACTIVE" {
        let issues = if info.health_issues.is_empty() {
            state.errors.join("; ")
        } else {
            info.health_issues.join("; ")
        };
        return Err(StepError::Failed(format!(
            "add-on `{name}` is {} after its update to {version}: {issues}",
            info.status
        )));
    }
    Ok(id)
}

/// An update of `of` already in progress (a crashed attempt's), recorded under `fact`; `None`
/// when a new update must be started.
pub(crate) async fn adopt_or_start(
    ctx: &StepCtx<'_>,
    fact: &Fact<String>,
    of: UpdateOf<'_>,
) -> Result<Option<String>, StepError> {
    let running = eks::in_progress_updates(&ctx.conn.eks, ctx.cluster(), of).await?;
    match running.into_iter().next() {
        Some(u) => {
            ctx.record(fact, &u.id).await?;
            Ok(Some(u.id))
        }
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn av(v: &str, default: bool) -> AddonVersion {
        AddonVersion {
            version: v.into(),
            default,
        }
    }

    #[test]
    fn chooses_default_never_downgrades_and_steps_vpc_cni() {
        let offered = [
            av("v1.12.4-eksbuild.1", true),
            av("v1.11.4-eksbuild.2", false),
        ];
        assert_eq!(
            target_version("coredns", "v1.11.4-eksbuild.2", &offered, None).as_deref(),
            Some("v1.12.4-eksbuild.1")
        );
        assert_eq!(
            target_version("coredns", "v1.12.4-eksbuild.1", &offered, None),
            None
        );
        assert_eq!(
            target_version("coredns", "v1.13.0-eksbuild.1", &offered, None),
            None
        );
        let cni = [
            av("v1.20.4-eksbuild.1", true),
            av("v1.19.6-eksbuild.1", false),
            av("v1.19.2-eksbuild.1", false),
        ];
        assert_eq!(
            target_version("vpc-cni", "v1.18.6-eksbuild.1", &cni, None).as_deref(),
            Some("v1.19.6-eksbuild.1")
        );
        assert_eq!(
            target_version("vpc-cni", "v1.19.6-eksbuild.1", &cni, None).as_deref(),
            Some("v1.20.4-eksbuild.1")
        );
        assert_eq!(
            target_version("x", "v1", &cni, Some("v9")).as_deref(),
            Some("v9")
        );
        assert!(version_key("v1.9.0-eksbuild.1") < version_key("v1.10.0-eksbuild.1"));
    }
}
