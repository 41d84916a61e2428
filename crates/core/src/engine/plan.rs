//! Resolving a run against the cluster: the current version, the versions EKS offers, the hops,
//! and for every step what it would change. `plan` prints this; `run` prints it before acting.

use std::fmt::Write;

use serde::Serialize;

use super::hops::{self, HopError};
use crate::cloud::connect::{ClusterInfo, Connection};
use crate::cloud::eks::{self, AddonInfo, EksError, NodegroupInfo, OfferedVersion};
use crate::steps::{PlanCx, Projection};
use crate::types::{Phase, Version};
use crate::workflow::{Strategy, Target, Workflow};

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
    /// The green cluster a blue/green run makes or adopts, at the target version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub green: Option<String>,
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
    // Blue/green builds green at the target directly; in place, every minor is a hop.
    let hops = match workflow.strategy() {
        Strategy::BlueGreen => hops::jump(from, target, &versions)?,
        Strategy::InPlace => hops::resolve(from, target, &versions)?,
    };
    let nodegroups = eks::nodegroups(&conn.eks, &conn.cluster.name).await?;
    let addons = eks::addons(&conn.eks, &conn.cluster.name).await?;

    // Each step plans against the cluster as the steps before it would leave it.
    let mut projection = Projection {
        nodegroups: nodegroups.clone(),
        addons: addons
            .iter()
            .map(|a| (a.name.clone(), a.version.clone()))
            .collect(),
        node_pools: None,
        inventory: None,
    };
    let mut steps = Vec::new();
    let mut sections: Vec<(Phase, Option<Version>, Version)> = vec![(Phase::Prepare, None, from)];
    let mut before = from;
    for hop in &hops {
        sections.push((Phase::Upgrade, Some(*hop), before));
        before = *hop;
    }
    sections.push((Phase::OnFailure, None, from));
    sections.push((Phase::Finish, None, before));
    for (phase, hop, before) in sections {
        for step in workflow.phase(phase) {
            let mut cx = PlanCx {
                conn,
                velero: &workflow.velero,
                phase,
                hop,
                before,
                projection: &mut projection,
            };
            let changes = step.kind.plan(&mut cx).await?;
            steps.push(PlannedStep {
                phase,
                hop,
                id: step.id.clone(),
                kind: step.kind.key().into(),
                title: step.title(),
                mutates: step.kind.mutates_cluster(),
                changes,
            });
        }
    }
    let green = (workflow.strategy() == Strategy::BlueGreen).then(|| {
        crate::steps::blue_green::green_name(
            workflow
                .blue_green
                .as_ref()
                .and_then(|b| b.green_name.as_deref()),
            &conn.cluster.name,
            hops.last().copied().unwrap_or(from),
        )
    });
    Ok(Plan {
        green,
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
    match (&plan.green, plan.hops.last()) {
        (Some(green), Some(target)) => {
            let _ = writeln!(
                out,
                "Plan: workflow `{}`, blue/green: from blue `{}` ({}, {}) to green `{green}` ({target}); blue is not changed in place",
                plan.workflow, c.name, c.region, plan.from
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "Plan: workflow `{}` on cluster `{}` ({}): {} ({hops})",
                plan.workflow,
                c.name,
                c.region,
                path.join(" → ")
            );
        }
    }
    let mut section = String::new();
    for (i, s) in plan.steps.iter().enumerate() {
        let header = match (s.phase, s.hop) {
            (Phase::Upgrade, Some(h)) if plan.green.is_some() => format!("green at {h}"),
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
