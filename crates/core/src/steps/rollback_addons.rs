//! `rollbackAddons`: the add-on half of reversing a failed hop. EKS never downgrades add-ons,
//! and refuses to roll the control plane back while an installed add-on version is not
//! supported on the version it would return to. So every add-on the failed hop moved whose new
//! version the previous Kubernetes version does not support goes back — to its version before
//! the hop, as journaled by `upgradeAddons`, or to the newest one the previous version supports
//! — with its configuration kept. Add-ons whose new version also runs on the previous
//! Kubernetes version stay: moving them again would be churn without need.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::addons::{self, AddonUpdate, DEFAULT_TIMEOUT, ResolveConflicts, version_key};
use super::kind::{BuildCx, Kind, Placement, PlanCx, Role, TimeScale};
use super::restore::RECOVERY;
use super::{KindName, StepCtx, StepError, StepResult};
use crate::cloud::eks::{self, EksError};
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::DurationText;
use crate::journal::Fact;
use crate::types::{HumanDuration, Phase};

/// `NAME FROM → TO` for each add-on moved back, in order.
pub const ROLLED_BACK: Fact<Vec<String>> = Fact::new("rolledBack");

/// Options for rolling add-ons back.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRollbackAddons {
    /// Add-ons to consider. Default: every add-on the failed hop moved.
    pub addons: Option<Vec<Spanned<String>>>,
    /// `preserve` (default), `overwrite` or `none`.
    pub resolve_conflicts: Option<ResolveConflicts>,
    /// How long to wait for each add-on. Default: `20m`.
    pub timeout: Option<Spanned<DurationText>>,
}

/// A validated `rollbackAddons` step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackAddons {
    pub addons: Option<Vec<String>>,
    pub resolve_conflicts: ResolveConflicts,
    pub timeout: HumanDuration,
}

pub struct RollbackAddonsKind;

impl Kind for RollbackAddonsKind {
    type Raw = RawRollbackAddons;
    type Model = RollbackAddons;

    const DOC: &'static str = "Moves the add-ons the failed hop upgraded back to versions the previous Kubernetes version\nsupports: EKS rolls back the control plane only once every add-on is supported there. Put it\nbefore `rollbackControlPlane`.";
    const TITLE: &'static str = "Roll back add-ons";
    const PLACEMENT: Placement = RECOVERY;
    const MUTATES: bool = true;
    const ROLES: &'static [Role] = &[Role::RollsBackAddons];
    const EXAMPLE: &'static str = "{ resolveConflicts: preserve }";

    fn build(
        raw: &Spanned<RawRollbackAddons>,
        v: &mut Validator<'_>,
        _: &BuildCx<'_>,
    ) -> Option<RollbackAddons> {
        let a = &raw.value;
        Some(RollbackAddons {
            addons: a
                .addons
                .as_ref()
                .map(|l| l.iter().map(|n| n.value.clone()).collect()),
            resolve_conflicts: a.resolve_conflicts.unwrap_or(ResolveConflicts::Preserve),
            timeout: v.positive("timeout", a.timeout.as_ref(), DEFAULT_TIMEOUT),
        })
    }

    async fn plan(_: &RollbackAddons, _: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        Ok(vec![
            "if an upgrade step fails: UpdateAddon back, for each add-on the hop moved to a version the previous Kubernetes version does not support".into(),
        ])
    }

    async fn run(step: &RollbackAddons, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }

    fn scale_time(step: &mut RollbackAddons, scale: &TimeScale) {
        scale.timeout(&mut step.timeout);
    }
}

/// Add-on name → version before the failed hop, from the `upgradeAddons` steps of that hop (the
/// first one to record an add-on saw it before any change).
async fn versions_before_the_hop(ctx: &StepCtx<'_>) -> BTreeMap<String, String> {
    let hop = ctx.hop;
    ctx.journal
        .read(|j| {
            let mut out = BTreeMap::new();
            for s in j.steps.iter().filter(|s| {
                s.key.phase == Phase::Upgrade
                    && s.key.hop == hop
                    && s.kind == KindName::UpgradeAddons.key()
            }) {
                for (name, version) in s.get(&addons::BEFORE).unwrap_or_default() {
                    out.entry(name).or_insert(version);
                }
            }
            out
        })
        .await
}

async fn run(step: &RollbackAddons, ctx: &StepCtx<'_>) -> StepResult {
    let Some(target) = ctx.version_before else {
        return Err(StepError::Failed(
            "no version to roll back to is known for this run".into(),
        ));
    };
    let cluster = ctx.cluster().to_string();
    let before: BTreeMap<String, String> = versions_before_the_hop(ctx)
        .await
        .into_iter()
        .filter(|(name, _)| {
            step.addons
                .as_ref()
                .is_none_or(|names| names.contains(name))
        })
        .collect();
    let how = AddonUpdate {
        resolve_conflicts: step.resolve_conflicts,
        timeout: step.timeout,
    };
    let mut moved = ctx.fact(&ROLLED_BACK).await.unwrap_or_default();
    let mut kept = Vec::new();
    for (name, was) in &before {
        let now = eks::addon(&ctx.conn.eks, &cluster, name).await?;
        if &now.version == was {
            continue;
        }
        let supported = eks::addon_versions(&ctx.conn.eks, name, target).await?;
        if supported.iter().any(|v| v.version == now.version) {
            kept.push(format!("{name} {} (runs on {target})", now.version));
            continue;
        }
        let back = supported
            .iter()
            .find(|v| &v.version == was)
            .or_else(|| supported.iter().find(|v| v.default))
            .or_else(|| supported.iter().max_by_key(|v| version_key(&v.version)))
            .map(|v| v.version.clone())
            .ok_or_else(|| {
                StepError::Failed(format!(
                    "add-on `{name}` is at {}, and EKS lists no version of it for {target}",
                    now.version
                ))
            })?;
        ctx.progress(&format!("{name} {} → {back}", now.version), None, None);
        let id = addons::update_one(
            ctx,
            &how,
            name,
            (&now.version, &back),
            now.configuration_values.as_deref(),
            0,
        )
        .await?;
        let line = format!("{name} {} → {back} (update {id})", now.version);
        if !moved.contains(&line) {
            moved.push(line);
            ctx.record(&ROLLED_BACK, &moved).await?;
        }
    }
    let mut summary = if moved.is_empty() {
        format!("no add-on needed to go back for {target}")
    } else {
        format!("rolled back {}", moved.join(", "))
    };
    if !kept.is_empty() {
        summary.push_str(&format!("; kept: {}", kept.join(", ")));
    }
    Ok(summary)
}
