//! The validated workflow: what the engine runs. Every default is filled in, every reference
//! is resolved, and nothing here can be malformed.

use std::path::PathBuf;

use serde::Serialize;

use crate::checks::Coverage;
pub use crate::steps::blue_green::BlueGreen;
use crate::steps::{Role, Step, TimeScale};
use crate::types::{Phase, Version, Window};
use crate::velero;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Workflow {
    /// The file it was loaded from.
    pub path: PathBuf,
    pub name: String,
    pub description: Option<String>,
    pub cluster: ClusterRef,
    pub target: Option<Target>,
    pub window: Option<Window>,
    pub velero: velero::Settings,
    /// `spec.green` and `spec.traffic`, when the file has either. Left out for in-place
    /// workflows, so what they write is as before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreen>,
    pub prepare: Vec<Step>,
    pub upgrade: Vec<Step>,
    pub on_failure: Vec<Step>,
    pub finish: Vec<Step>,
}

/// How a run moves the cluster to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Strategy {
    /// The cluster itself is upgraded, one minor version per hop.
    InPlace,
    /// A new cluster (green) is built at the target, blue's backup restored into it, and
    /// traffic moved to it; blue is never changed.
    BlueGreen,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterRef {
    pub name: Option<String>,
    pub region: Option<String>,
}

/// Where the run should end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Target {
    /// One minor version above the current one.
    Next,
    /// The newest version EKS offers.
    Latest,
    Version(Version),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Next => f.write_str("next"),
            Target::Latest => f.write_str("latest"),
            Target::Version(v) => v.fmt(f),
        }
    }
}

impl Workflow {
    pub fn phase(&self, phase: Phase) -> &[Step] {
        match phase {
            Phase::Prepare => &self.prepare,
            Phase::Upgrade => &self.upgrade,
            Phase::OnFailure => &self.on_failure,
            Phase::Finish => &self.finish,
        }
    }

    pub fn steps(&self) -> impl Iterator<Item = (Phase, &Step)> {
        [
            Phase::Prepare,
            Phase::Upgrade,
            Phase::OnFailure,
            Phase::Finish,
        ]
        .into_iter()
        .flat_map(move |p| self.phase(p).iter().map(move |s| (p, s)))
    }

    /// Blue/green when a step provides green (`createGreen`, `adoptGreen`), else in place.
    pub fn strategy(&self) -> Strategy {
        if self
            .steps()
            .any(|(_, s)| s.kind.roles().contains(&Role::ProvidesGreen))
        {
            Strategy::BlueGreen
        } else {
            Strategy::InPlace
        }
    }

    pub fn step_count(&self) -> usize {
        self.prepare.len() + self.upgrade.len() + self.on_failure.len() + self.finish.len()
    }
}

impl Workflow {
    /// The workflow with its waits (step timeouts, settle times, poll intervals) divided by
    /// `factor`, for rehearsals against the sandbox, whose clock runs `factor` times faster.
    /// Retention (`ttl`) and network timeouts of probes and webhooks are real time and stay.
    pub fn with_time_scale(&self, factor: f64) -> Workflow {
        let Some(scale) = TimeScale::new(factor) else {
            return self.clone();
        };
        let mut w = self.clone();
        for step in w
            .prepare
            .iter_mut()
            .chain(w.upgrade.iter_mut())
            .chain(w.on_failure.iter_mut())
            .chain(w.finish.iter_mut())
        {
            step.kind.scale_time(&scale);
        }
        w
    }

    /// What each hop moves besides the control plane. A workflow without upgrade steps
    /// (`check-only.yaml`) asks about an upgrade done the usual way, which moves add-ons and
    /// node groups with every hop.
    ///
    /// A blue/green run moves none of blue's add-ons or nodes (green is built at the target),
    /// and never blue's control plane, so nothing on blue has to keep up with a new one.
    pub fn coverage(&self) -> Coverage {
        if self.strategy() == Strategy::BlueGreen {
            return Coverage {
                addons: false,
                nodegroups: false,
                node_pools: false,
                new_cluster: true,
            };
        }
        let has = |role: Role| {
            self.upgrade.is_empty() || self.upgrade.iter().any(|s| s.kind.roles().contains(&role))
        };
        Coverage {
            addons: has(Role::UpgradesAddons),
            nodegroups: has(Role::UpgradesNodes),
            node_pools: has(Role::ConvergesNodes),
            new_cluster: false,
        }
    }
}
