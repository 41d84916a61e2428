//! Resolving a run against the cluster: the current version, the versions EKS offers, the hops,
//! and for every step what it would change. `plan` prints this; `run` prints it before acting.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::hops::{self, HopError};
use crate::cloud::connect::{ClusterInfo, Connection};
use crate::cloud::eks::{self, AddonInfo, EksError, NodegroupInfo, OfferedVersion};
use crate::steps::addons::target_version;
use crate::types::Version;
use crate::workflow::model::{ExistingResourcePolicy, VerifyDepth, WebhookUrl};
use crate::workflow::{Phase, StepKind, Target, Workflow};

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Eks(#[from] EksError),
    #[error(transparent)]
    Hops(#[from] HopError),
    #[error("no target version: set `spec.target` in the workflow or pass `--target`")]
    NoTarget,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedStep {
    pub phase: Phase,
    pub hop: Option<Version>,
    pub id: String,
    pub kind: String,
    pub title: String,
    /// What the step would change, one line each; empty for steps that only read.
    pub changes: Vec<String>,
    pub mutates: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub workflow: String,
    pub cluster: ClusterInfo,
    pub target: Target,
    pub from: Version,
    pub hops: Vec<Version>,
    pub offered: Vec<OfferedVersion>,
    pub nodegroups: Vec<NodegroupInfo>,
    pub addons: Vec<AddonInfo>,
    pub steps: Vec<PlannedStep>,
}

/// Reads what the plan needs from EKS and computes every step's changes.
pub async fn resolve(
    conn: &Connection,
    workflow: &Workflow,
    target: Option<Target>,
) -> Result<Plan, PlanError> {
    let target = target.or(workflow.target).ok_or(PlanError::NoTarget)?;
    let offered = eks::offered_versions(&conn.eks).await?;
    let versions: Vec<Version> = offered.iter().map(|o| o.version).collect();
    let from = conn.cluster.version;
    let hops = hops::resolve(from, target, &versions)?;
    let nodegroups = eks::nodegroups(&conn.eks, &conn.cluster.name).await?;
    let addons = eks::addons(&conn.eks, &conn.cluster.name).await?;

    // Add-on versions after each hop, each hop starting from the previous one's result.
    let mut addon_plan: BTreeMap<Version, Vec<(String, String, Option<String>)>> = BTreeMap::new();
    let pins: BTreeMap<String, String> = workflow
        .upgrade
        .iter()
        .find_map(|s| match &s.kind {
            StepKind::UpgradeAddons(a) => Some(a.versions.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let mut current: BTreeMap<String, String> = addons
        .iter()
        .map(|a| (a.name.clone(), a.version.clone()))
        .collect();
    if workflow
        .upgrade
        .iter()
        .any(|s| matches!(s.kind, StepKind::UpgradeAddons(_)))
    {
        for hop in &hops {
            let mut rows = Vec::new();
            for (name, version) in current.iter_mut() {
                let offered = eks::addon_versions(&conn.eks, name, *hop).await?;
                let next =
                    target_version(name, version, &offered, pins.get(name).map(String::as_str));
                rows.push((name.clone(), version.clone(), next.clone()));
                if let Some(n) = next {
                    *version = n;
                }
            }
            addon_plan.insert(*hop, rows);
        }
    }

    let mut steps = Vec::new();
    let mut before = from;
    let mut push =
        |phase: Phase, hop: Option<Version>, step: &crate::workflow::Step, changes: Vec<String>| {
            steps.push(PlannedStep {
                phase,
                hop,
                id: step.id.clone(),
                kind: step.kind.key().into(),
                title: step.title(),
                mutates: step.kind.mutates_cluster(),
                changes,
            });
        };
    for s in &workflow.prepare {
        push(
            Phase::Prepare,
            None,
            s,
            describe(&s.kind, workflow, from, None, &nodegroups, None),
        );
    }
    for hop in &hops {
        for s in &workflow.upgrade {
            push(
                Phase::Upgrade,
                Some(*hop),
                s,
                describe(
                    &s.kind,
                    workflow,
                    before,
                    Some(*hop),
                    &nodegroups,
                    addon_plan.get(hop),
                ),
            );
        }
        before = *hop;
    }
    for s in &workflow.on_failure {
        push(
            Phase::OnFailure,
            None,
            s,
            describe(&s.kind, workflow, from, None, &nodegroups, None),
        );
    }
    for s in &workflow.finish {
        push(
            Phase::Finish,
            None,
            s,
            describe(&s.kind, workflow, before, None, &nodegroups, None),
        );
    }
    Ok(Plan {
        workflow: workflow.name.clone(),
        cluster: conn.cluster.clone(),
        target,
        from,
        hops,
        offered,
        nodegroups,
        addons,
        steps,
    })
}

fn describe(
    kind: &StepKind,
    w: &Workflow,
    from: Version,
    hop: Option<Version>,
    nodegroups: &[NodegroupInfo],
    addons: Option<&Vec<(String, String, Option<String>)>>,
) -> Vec<String> {
    let ns = &w.velero.namespace;
    match kind {
        StepKind::Preflight(p) => vec![format!(
            "reads EKS and the cluster; stops the run on findings at `{}` or above",
            if p.fail_on == crate::workflow::model::FailOn::Error { "error" } else { "warning" }
        )],
        StepKind::VeleroBackup(b) => {
            let mut scope = Vec::new();
            match &b.included_namespaces {
                Some(n) => scope.push(format!("namespaces {}", n.join(", "))),
                None => scope.push("all namespaces".into()),
            }
            if !b.excluded_namespaces.is_empty() {
                scope.push(format!("except {}", b.excluded_namespaces.join(", ")));
            }
            vec![format!("creates a Velero Backup in `{ns}` to location `{}` ({}; ttl {})", b.storage_location, scope.join(" "), b.ttl)]
        }
        StepKind::VerifyBackup(v) => vec![format!(
            "reads the files of the backup of `{}` in S3 ({}); changes nothing",
            v.backup,
            if v.depth == VerifyDepth::Full { "every item of the tarball" } else { "metadata and sibling files" }
        )],
        StepKind::Approval(a) if a.auto => vec!["approved by the workflow".into()],
        StepKind::Approval(a) => vec![format!("asks: “{}” (or `--yes`)", a.message)],
        StepKind::UpgradeControlPlane(c) => vec![format!("UpdateClusterVersion {from} → {}{}", hop.map(|h| h.to_string()).unwrap_or_default(), if c.force { " (force)" } else { "" })],
        StepKind::UpgradeAddons(_) => match addons {
            Some(rows) if rows.iter().any(|(_, _, n)| n.is_some()) => rows
                .iter()
                .map(|(name, v, next)| match next {
                    Some(n) => format!("UpdateAddon {name} {v} → {n}"),
                    None => format!("{name} stays at {v}"),
                })
                .collect(),
            _ => vec!["no add-on needs an update".into()],
        },
        StepKind::UpgradeNodegroups(n) => {
            let hop = hop.map(|h| h.to_string()).unwrap_or_default();
            let groups: Vec<String> = nodegroups
                .iter()
                .filter(|g| n.nodegroups.as_ref().is_none_or(|names| names.contains(&g.name)))
                .map(|g| format!("UpdateNodegroupVersion {} ({} nodes) → {hop}", g.name, g.desired_size))
                .collect();
            if groups.is_empty() { vec!["no managed node groups".into()] } else { groups }
        }
        StepKind::Eksctl(e) => vec![
            format!("sets `metadata.version` in `{}` to {}", e.config_file.display(), hop.map(|h| h.to_string()).unwrap_or_default()),
            format!("runs `{} upgrade cluster --config-file {} --approve`", e.binary, e.config_file.display()),
        ],
        StepKind::HealthCheck(_) => vec!["reads the cluster's health; changes nothing".into()],
        StepKind::VeleroRestore(r) => vec![format!(
            "if an upgrade step fails: restores the verified backup of `{}` (existing objects: {})",
            r.backup,
            if r.existing_resource_policy == ExistingResourcePolicy::Update { "update" } else { "keep" }
        )],
        StepKind::RollbackControlPlane(_) => vec!["if an upgrade step fails: rolls the control plane back one minor version, where EKS allows it".into()],
        StepKind::Notify(n) => vec![format!(
            "posts to the webhook {} on {}",
            match &n.url {
                WebhookUrl::Env(var) => format!("in `${var}`"),
                WebhookUrl::Literal(_) => "(URL in the workflow)".to_string(),
            },
            n.on.iter().map(|e| format!("{e:?}").to_lowercase()).collect::<Vec<_>>().join(", ")
        )],
    }
}

/// The plan for people.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let c = &plan.cluster;
    let path: Vec<String> = std::iter::once(plan.from)
        .chain(plan.hops.iter().copied())
        .map(|v| v.to_string())
        .collect();
    let hops = match plan.hops.len() {
        0 => "already at the target; nothing to upgrade".to_string(),
        1 => "1 hop".to_string(),
        n => format!("{n} hops"),
    };
    let _ = writeln!(
        out,
        "Plan: workflow `{}` on cluster `{}` ({}): {} ({hops})",
        plan.workflow,
        c.name,
        c.region,
        path.join(" → ")
    );
    let mut section = String::new();
    for (i, s) in plan.steps.iter().enumerate() {
        let header = match (s.phase, s.hop) {
            (Phase::Upgrade, Some(h)) => format!("hop to {h}"),
            (Phase::OnFailure, _) => "on failure".to_string(),
            (p, _) => p.key().to_string(),
        };
        if header != section {
            let _ = writeln!(out, "\n{header}");
            section = header;
        }
        let mark = if s.mutates { "*" } else { " " };
        let _ = writeln!(out, "  {:>2}.{mark}{:<22} {}", i + 1, s.id, s.title);
        for change in &s.changes {
            let _ = writeln!(out, "        {change}");
        }
    }
    let _ = writeln!(out, "\n* changes the cluster");
    out
}
