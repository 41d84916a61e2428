//! What a step kind is. Each kind lives in one file of this folder and says everything about
//! itself there: its options as written (whose doc comments become the schema's descriptions
//! and the `help:` lines), its validated model, where it may appear, the rules that span its
//! options, what it would change (plan lines) and how it runs. The list in `steps/mod.rs`
//! derives the rest — the step mapping of the file format, the schema, validation, plans and
//! dispatch — so a new kind is one file and one line there, and a kind that forgets a part does
//! not compile.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{StepCtx, StepResult};
use crate::cloud::connect::Connection;
use crate::cloud::eks::{EksError, NodegroupInfo};
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::StepRef;
use crate::types::{HumanDuration, Phase, Version};
use crate::velero;

/// One kind of step.
pub trait Kind {
    /// The options as written in the file.
    type Raw: JsonSchema + DeserializeOwned + Serialize + Clone + std::fmt::Debug;
    /// The options validated, every default filled in: what runs.
    type Model: Serialize + Clone + std::fmt::Debug + Send + Sync;

    /// What a step of this kind does, in one sentence: the schema's description of its key.
    const DOC: &'static str;
    /// The step's title in progress output and reports when it has no `name`.
    const TITLE: &'static str;
    /// The sections the kind may appear in, and why not elsewhere.
    const PLACEMENT: Placement;
    /// Whether it changes the cluster: plans mark it, and recovery accounts for it.
    const MUTATES: bool;
    /// What it does, for the rules about the workflow as a whole (order within a hop, what
    /// each hop moves, references between steps).
    const ROLES: &'static [Role] = &[];
    /// The smallest useful options, as YAML: the test of the kind list builds a workflow with
    /// one step of every kind from these.
    const EXAMPLE: &'static str;

    /// Checks the options and fills in defaults; problems go to `v` with their locations.
    /// `None` when the step cannot be built.
    fn build(
        raw: &Spanned<Self::Raw>,
        v: &mut Validator<'_>,
        cx: &BuildCx<'_>,
    ) -> Option<Self::Model>;

    /// The backup step this one refers to, with its location (`backup: backup`).
    fn backup_ref(_raw: &Self::Raw) -> Option<&Spanned<StepRef>> {
        None
    }

    /// The id of the backup step the validated step refers to.
    fn backup(_step: &Self::Model) -> Option<&str> {
        None
    }

    /// Whether the validated step acts on green rather than blue (`healthCheck` with `on:
    /// green`): the blue/green structure rules place it like a green step.
    fn on_green(_step: &Self::Model) -> bool {
        false
    }

    /// Whether the validated step may only run after an `approval` step in its section
    /// (`retireBlue` with `retire: delete`).
    fn needs_approval(_step: &Self::Model) -> bool {
        false
    }

    /// What the step would change, one line each, for `plan` and the plan `run` shows.
    fn plan(
        step: &Self::Model,
        cx: &mut PlanCx<'_>,
    ) -> impl Future<Output = Result<Vec<String>, EksError>> + Send;

    /// Runs the step.
    fn run(step: &Self::Model, ctx: &StepCtx<'_>) -> impl Future<Output = StepResult> + Send;

    /// Divides the step's waits for a sandbox whose clock runs faster (see
    /// `Workflow::with_time_scale`). Retention and network timeouts are real time and stay.
    fn scale_time(_step: &mut Self::Model, _scale: &TimeScale) {}

    /// How long the step usually takes on EKS, in minutes: a hop starts only when the
    /// maintenance window has room for its steps.
    fn typical_minutes(_step: &Self::Model) -> u64 {
        0
    }
}

/// The sections a kind may appear in.
#[derive(Debug, Clone, Copy)]
pub struct Placement {
    pub sections: &'static [Phase],
    /// Why not elsewhere, for the `help:` line of a misplaced step.
    pub why: &'static str,
}

/// What a step does, as far as the workflow's structure rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Moves the control plane one minor version: exactly one per hop, first.
    MovesControlPlane,
    /// Moves EKS add-ons up to the control plane's version: after the control plane.
    UpgradesAddons,
    /// Moves nodes up to the control plane's version: after the control plane.
    UpgradesNodes,
    /// Waits for nodes something else moves (Karpenter, Auto Mode) to reach the control plane's
    /// version: after the control plane.
    ConvergesNodes,
    /// Creates a Velero backup that later steps name.
    CreatesBackup,
    /// Verifies the backup it names.
    VerifiesBackup,
    /// Restores the backup it names, which must be verified in `prepare`.
    RestoresBackup,
    /// Moves nodes back to the version before the failed hop: before the control plane.
    RollsBackNodes,
    /// Moves add-ons back to versions the previous Kubernetes version supports: before the
    /// control plane.
    RollsBackAddons,
    /// Moves the control plane back one minor version: after nodes and add-ons.
    RollsBackControlPlane,
    /// Creates or adopts the green cluster of a blue/green run: exactly one, first in
    /// `upgrade`. Its presence is what makes a workflow blue/green.
    ProvidesGreen,
    /// Waits until green is ready to take work: before any other step that uses green.
    WaitsForGreen,
    /// Gives green read access to blue's backups.
    AttachesBackups,
    /// Restores blue's verified backup into green.
    RestoresIntoGreen,
    /// Runs the workflow's compatibility test on green.
    TestsGreen,
    /// Moves DNS weight from blue to green: needs `spec.traffic`, and a switch back in
    /// `onFailure`.
    ShiftsTraffic,
    /// Watches the traffic's error rates while it runs.
    WatchesTraffic,
    /// Puts all traffic back on blue in one change: first in `onFailure`.
    SwitchesBack,
    /// Keeps or deletes blue after a successful run: only in `finish`.
    RetiresBlue,
}

impl Role {
    /// The roles that only a blue/green workflow has, and that act on (or through) green.
    pub const GREEN: &'static [Role] = &[
        Role::ProvidesGreen,
        Role::WaitsForGreen,
        Role::AttachesBackups,
        Role::RestoresIntoGreen,
        Role::TestsGreen,
        Role::ShiftsTraffic,
        Role::WatchesTraffic,
        Role::SwitchesBack,
        Role::RetiresBlue,
    ];

    /// The roles that move blue in place, which a blue/green workflow must not have.
    pub const IN_PLACE: &'static [Role] = &[
        Role::MovesControlPlane,
        Role::UpgradesAddons,
        Role::UpgradesNodes,
        Role::ConvergesNodes,
        Role::RollsBackNodes,
        Role::RollsBackAddons,
        Role::RollsBackControlPlane,
    ];

    /// Whether the role belongs to a blue/green workflow.
    pub fn is_green(self) -> bool {
        Role::GREEN.contains(&self)
    }
}

/// What building a step may use besides its own options.
pub struct BuildCx<'a> {
    pub velero: &'a velero::Settings,
    /// `spec.green` and `spec.traffic`, when the file has either: a kind that needs them
    /// refuses their absence at its own location.
    pub blue_green: Option<&'a super::blue_green::BlueGreen>,
    /// The directory of the workflow file: files a step names (`testGreen`'s `file:`) are
    /// found from there, wherever the tool runs.
    pub dir: &'a std::path::Path,
}

/// What planning a step may use: the cluster as read when the plan was made, and the state the
/// plan's earlier steps would leave it in.
pub struct PlanCx<'a> {
    pub conn: &'a Connection,
    pub velero: &'a velero::Settings,
    pub phase: Phase,
    /// The hop an `upgrade` step runs in.
    pub hop: Option<Version>,
    /// The control-plane version when this step starts.
    pub before: Version,
    pub projection: &'a mut Projection,
}

/// The cluster as the plan's steps so far would leave it.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    pub nodegroups: Vec<NodegroupInfo>,
    /// Add-on name → version.
    pub addons: BTreeMap<String, String>,
    /// The NodePools and their nodes as read by the first `convergeNodePools` step planned:
    /// every hop's plans from the same reading, not one read of the cluster per hop.
    pub node_pools: Option<std::sync::Arc<super::node_pools::Look>>,
    /// Every node, as read by the first `upgradeNodegroups` step planned (or why it could not
    /// be read).
    pub inventory: Option<Result<std::sync::Arc<Vec<crate::cloud::nodes::NodeInfo>>, String>>,
}

/// Scales waits for a faster sandbox clock.
pub struct TimeScale {
    factor: f64,
}

impl TimeScale {
    /// `None` unless `factor` speeds time up (a finite number above 1).
    pub fn new(factor: f64) -> Option<Self> {
        (factor.is_finite() && factor > 1.0).then_some(TimeScale { factor })
    }

    /// Divides `d`, but never below `floor_ms` (or `d` itself when it is shorter): a wait of
    /// zero would turn polls into busy loops.
    pub fn apply(&self, d: &mut HumanDuration, floor_ms: u64) {
        let scaled = d.0.as_secs_f64() / self.factor;
        d.0 = Duration::from_secs_f64(scaled).max(Duration::from_millis(floor_ms).min(d.0));
    }

    /// The usual floor for a step's timeout.
    pub fn timeout(&self, d: &mut HumanDuration) {
        self.apply(d, 1000);
    }
}
