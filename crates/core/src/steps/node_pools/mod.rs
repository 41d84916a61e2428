//! `convergeNodePools`: waits until the nodes of Karpenter's and EKS Auto Mode's NodePools run
//! the hop's version. Neither is moved by a call of the tool: Karpenter drifts its nodes to the
//! AMI its EC2NodeClass resolves for the new control plane, and Auto Mode replaces its own, each
//! at the pace the pool's disruption budgets allow. The step only looks (through the Kubernetes
//! API, which it trusts for nodes) and, when the nodes do not get there in time, says what holds
//! them: a stopped controller, a budget that allows nothing, annotations, an AMI that does not
//! follow the control plane.

mod blockers;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::control_plane::PER_HOP;
use super::kind::{BuildCx, Kind, PlanCx, Role, TimeScale};
use super::{StepCtx, StepError, StepResult};
use crate::cloud::eks::EksError;
use crate::cloud::karpenter::{self, AmiTerm, Karpenter, Read};
use crate::cloud::karpenter_budget::allowed;
use crate::cloud::nodes::{self, Manager, NodeInfo};
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::DurationText;
use crate::journal::Fact;
use crate::steps::health::LOOK_AT_LEAST;
use crate::types::{HumanDuration, Version};

/// One line per NodePool once they converged: `NodePool default (Karpenter): 3/3 at 1.34`.
pub const CONVERGED: Fact<Vec<String>> = Fact::new("converged");

/// Defaults of the step's options.
pub mod defaults {
    use std::time::Duration;

    pub const TIMEOUT: Duration = Duration::from_secs(90 * 60);
    pub const INTERVAL: Duration = Duration::from_secs(30);
}

/// Options for waiting on NodePools.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawConvergeNodePools {
    /// The NodePools to wait for, Karpenter's or Auto Mode's. Default: every NodePool whose
    /// nodes follow the control plane (pools on fixed AMIs are reported, not waited for).
    pub node_pools: Option<Vec<Spanned<String>>>,
    /// Give up after this long. Default: `90m`.
    pub timeout: Option<Spanned<DurationText>>,
    /// Time between looks. Default: `30s`.
    pub interval: Option<Spanned<DurationText>>,
}

/// A validated `convergeNodePools` step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConvergeNodePools {
    pub node_pools: Option<Vec<String>>,
    pub timeout: HumanDuration,
    pub interval: HumanDuration,
}

pub struct ConvergeNodePoolsKind;

impl Kind for ConvergeNodePoolsKind {
    type Raw = RawConvergeNodePools;
    type Model = ConvergeNodePools;

    const DOC: &'static str = "Waits until the nodes of Karpenter's and EKS Auto Mode's NodePools run the hop's version,\nand says what holds them back when they do not in time.";
    const TITLE: &'static str = "Wait for NodePools";
    const PLACEMENT: super::kind::Placement = PER_HOP;
    // The replacements follow from the control-plane step; this one only watches.
    const MUTATES: bool = false;
    const ROLES: &'static [Role] = &[Role::ConvergesNodes];
    const EXAMPLE: &'static str = "{ timeout: 90m }";

    fn build(
        raw: &Spanned<RawConvergeNodePools>,
        v: &mut Validator<'_>,
        _: &BuildCx<'_>,
    ) -> Option<ConvergeNodePools> {
        let r = &raw.value;
        let mut seen: Vec<&str> = Vec::new();
        for name in r.node_pools.iter().flatten() {
            if name.value.trim().is_empty() {
                v.problem(
                    name.loc,
                    "a NodePool name is empty",
                    "empty",
                    "name a NodePool, as `kubectl get nodepools` lists them",
                );
            } else if seen.contains(&name.value.as_str()) {
                v.problem(
                    name.loc,
                    format!("NodePool `{}` is listed twice", name.value),
                    "repeated",
                    "list each NodePool once",
                );
            }
            seen.push(&name.value);
        }
        let timeout = v.positive("timeout", r.timeout.as_ref(), defaults::TIMEOUT);
        let interval = v.positive("interval", r.interval.as_ref(), defaults::INTERVAL);
        if let Some(i) = r.interval.as_ref().filter(|_| interval.0 >= timeout.0) {
            v.problem(
                i.loc,
                format!("`interval` ({interval}) is not shorter than `timeout` ({timeout})"),
                "not shorter than the timeout",
                "look more often than the step's timeout, such as `interval: 30s`",
            );
        }
        Some(ConvergeNodePools {
            node_pools: r
                .node_pools
                .as_ref()
                .map(|n| n.iter().map(|s| s.value.clone()).collect()),
            timeout,
            interval,
        })
    }

    async fn plan(step: &ConvergeNodePools, cx: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        let hop = cx.hop.unwrap_or(cx.before);
        let head = format!(
            "waits up to {} for NodePool nodes to run {hop} (Karpenter drift, Auto Mode replacement); changes nothing",
            step.timeout
        );
        // A read that fails is one line of the plan, not a failed plan; nor does a plan wait on
        // an API server that keeps answering 503 (kube's client retries those with backoff).
        let found = match &cx.projection.node_pools {
            Some(found) => found.clone(),
            // The nodes as the node-group step's plan read them, when it did.
            None => match look_within(
                &cx.conn.kube,
                LOOK_AT_LEAST,
                cx.projection.inventory.clone().and_then(Result::ok),
            )
            .await
            {
                Ok(found) => {
                    let found = std::sync::Arc::new(found);
                    cx.projection.node_pools = Some(found.clone());
                    found
                }
                Err(e) => return Ok(vec![head, format!("cannot tell which NodePools now: {e}")]),
            },
        };
        let waited = match scope(step, &found) {
            Ok(s) => s,
            Err(e) => return Ok(vec![head, e.to_string()]),
        };
        let mut lines = vec![head];
        for p in &waited {
            let budgets = found
                .karpenter
                .pools
                .iter()
                .find(|x| x.name == p.name)
                .map(|x| x.budgets.as_slice())
                .unwrap_or_default();
            let pace = allowed(budgets, "Drifted", p.nodes.len(), 0, chrono::Utc::now()).nodes;
            lines.push(format!(
                "{}: {} node{}, its budget allows {pace} at a time now",
                p.label(),
                p.nodes.len(),
                if p.nodes.len() == 1 { "" } else { "s" }
            ));
        }
        if let Some(left) = left_alone(&found, hop) {
            lines.push(left);
        }
        if lines.len() == 1 {
            lines.push("no Karpenter or Auto Mode NodePool has nodes: nothing to wait for".into());
        }
        Ok(lines)
    }

    async fn run(step: &ConvergeNodePools, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }

    fn scale_time(step: &mut ConvergeNodePools, scale: &TimeScale) {
        scale.timeout(&mut step.timeout);
        scale.apply(&mut step.interval, 100);
    }

    fn typical_minutes(_: &ConvergeNodePools) -> u64 {
        30
    }
}

/// One NodePool as one look found it.
#[derive(Debug, Clone)]
pub struct PoolLook {
    pub name: String,
    pub auto_mode: bool,
    pub nodes: Vec<NodeInfo>,
    /// Why its nodes do not follow the control plane, when they do not.
    pub fixed: Option<String>,
}

impl PoolLook {
    fn at(&self, hop: Version) -> usize {
        self.nodes.iter().filter(|n| n.version == Some(hop)).count()
    }

    fn replacing(&self) -> usize {
        self.nodes.iter().filter(|n| n.replacing).count()
    }

    /// Every node runs the hop's version. A node someone cordoned at that version does not
    /// hold the step: only the version counts.
    fn done(&self, hop: Version) -> bool {
        self.at(hop) == self.nodes.len()
    }

    fn label(&self) -> String {
        format!(
            "NodePool `{}` ({})",
            self.name,
            if self.auto_mode {
                "Auto Mode"
            } else {
                "Karpenter"
            }
        )
    }

    fn line(&self, hop: Version) -> String {
        format!(
            "{}: {}/{} at {hop}{}",
            self.label(),
            self.at(hop),
            self.nodes.len(),
            match self.replacing() {
                0 => String::new(),
                n => format!(", {n} replacing"),
            }
        )
    }
}

/// What one look at the cluster found.
#[derive(Debug)]
pub struct Look {
    pub pools: Vec<PoolLook>,
    pub karpenter: Karpenter,
}

/// Why a look found nothing to go on.
#[derive(Debug)]
enum LookError {
    /// The tool may not list Karpenter's objects, though its nodes exist: looking again cannot
    /// help.
    Forbidden(String),
    /// A read failed; the next look may succeed.
    Failed(String),
}

impl std::fmt::Display for LookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookError::Forbidden(why) => {
                write!(f, "the tool may not list Karpenter's NodePools: {why}")
            }
            LookError::Failed(why) => f.write_str(why),
        }
    }
}

/// [`look`], given up after `limit`: kube's client retries 429 and 503 with backoff, minutes in
/// all, and neither a plan nor a step's timeout may wait that long.
async fn look_within(
    kube: &kube::Client,
    limit: Duration,
    nodes: Option<std::sync::Arc<Vec<NodeInfo>>>,
) -> Result<Look, LookError> {
    tokio::time::timeout(limit, look(kube, nodes))
        .await
        .unwrap_or_else(|_| {
            Err(LookError::Failed(format!(
                "no answer within {}",
                HumanDuration(limit)
            )))
        })
}

/// Reads the nodes and Karpenter's objects, grouped by NodePool.
/// `nodes`, when given, is a reading of the nodes already made (a plan's); otherwise they are
/// listed beside Karpenter's objects.
async fn look(
    kube: &kube::Client,
    known: Option<std::sync::Arc<Vec<NodeInfo>>>,
) -> Result<Look, LookError> {
    let listed = async {
        match known {
            Some(n) => Ok(n.as_ref().clone()),
            None => nodes::inventory(kube.clone()).await,
        }
    };
    let (inventory, read) = tokio::join!(listed, karpenter::read(kube));
    let inventory = inventory.map_err(|e| {
        LookError::Failed(format!(
            "cannot list the nodes: {}",
            crate::errors::kube(&e)
        ))
    })?;
    let karpenter = match read {
        Ok(Read::Found(k)) => k,
        Ok(Read::NotInstalled) => Karpenter::default(),
        Ok(Read::Forbidden(why)) => {
            if inventory.iter().any(|n| n.manager.pool().is_some()) {
                return Err(LookError::Forbidden(why));
            }
            Karpenter::default()
        }
        Err(e) => {
            return Err(LookError::Failed(format!(
                "cannot read Karpenter's objects: {}",
                crate::errors::kube(&e)
            )));
        }
    };
    let mut by_pool: BTreeMap<(String, bool), Vec<NodeInfo>> = BTreeMap::new();
    for node in inventory {
        match &node.manager {
            Manager::Karpenter(p) => by_pool.entry((p.clone(), false)).or_default().push(node),
            Manager::AutoMode(p) => by_pool.entry((p.clone(), true)).or_default().push(node),
            _ => {}
        }
    }
    let pools = by_pool
        .into_iter()
        .map(|((name, auto_mode), nodes)| {
            let fixed = (!auto_mode).then(|| fixed_ami(&karpenter, &name)).flatten();
            PoolLook {
                name,
                auto_mode,
                nodes,
                fixed,
            }
        })
        .collect();
    Ok(Look { pools, karpenter })
}

/// Why a Karpenter pool's nodes never move to a new version, when its class selects fixed AMIs.
fn fixed_ami(karpenter: &Karpenter, pool: &str) -> Option<String> {
    let class_name = &karpenter.pools.iter().find(|p| p.name == pool)?.class.name;
    let class = karpenter.class(class_name)?;
    let term = class
        .terms
        .iter()
        .find(|t| matches!(t, AmiTerm::Id(_) | AmiTerm::Fixed(_)))?;
    Some(format!("EC2NodeClass `{class_name}` selects {term}"))
}

async fn run(step: &ConvergeNodePools, ctx: &StepCtx<'_>) -> StepResult {
    let hop = ctx.hop()?;
    let deadline = Instant::now() + step.timeout.0;
    let mut last_lines: BTreeMap<String, String> = BTreeMap::new();
    let mut last_error: Option<String>;
    let mut stuck_before = false;
    let mut last_look = None;
    let mut launches = blockers::Launches::default();
    loop {
        // A look is bounded by what is left of the timeout (but gets at least a while): kube's
        // client retries 429 and 503 with backoff, minutes in all.
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(LOOK_AT_LEAST);
        match look_within(&ctx.conn.kube, left, None).await {
            Ok(found) => {
                last_error = None;
                let scope = scope(step, &found)?;
                if scope.is_empty() {
                    return Ok(left_alone(&found, hop)
                        .unwrap_or_else(|| "no Karpenter or Auto Mode nodes to wait for".into()));
                }
                launches.note(&found, &scope);
                let total: usize = scope.iter().map(|p| p.nodes.len()).sum();
                let at: usize = scope.iter().map(|p| p.at(hop)).sum();
                let replacing: usize = scope.iter().map(|p| p.replacing()).sum();
                ctx.progress(
                    &format!("{at}/{total} nodes at {hop}, {replacing} replacing"),
                    Some(at as u64),
                    Some(total as u64),
                );
                for p in &scope {
                    let line = p.line(hop);
                    if last_lines.get(&p.name) != Some(&line) {
                        ctx.log(&line);
                        last_lines.insert(p.name.clone(), line);
                    }
                }
                if scope.iter().all(|p| p.done(hop)) {
                    let lines: Vec<String> = scope.iter().map(|p| p.line(hop)).collect();
                    ctx.record(&CONVERGED, &lines).await?;
                    let mut summary = lines.join("; ");
                    if let Some(left) = left_alone(&found, hop) {
                        summary.push_str(&format!("; {left}"));
                    }
                    return Ok(summary);
                }
                // A class that resolves no AMI launches nothing: waiting cannot help. Two looks
                // in a row must say so, so that a status being rewritten does not end the step.
                let lagging: Vec<&PoolLook> =
                    scope.iter().copied().filter(|p| !p.done(hop)).collect();
                let stuck = blockers::without_ami(&found, &lagging);
                if !stuck.is_empty() && stuck_before {
                    return Err(StepError::Failed(blockers::message(
                        &stuck, &scope, hop, None,
                    )));
                }
                stuck_before = !stuck.is_empty();
                last_look = Some(found);
            }
            Err(e @ LookError::Forbidden(_)) => {
                return Err(StepError::Failed(format!(
                    "{e}\nhint: grant `list` on `nodepools` and `nodeclaims` (`karpenter.sh`) and `ec2nodeclasses` (`karpenter.k8s.aws`), as `examples/kubernetes/clusterrole.yaml` does"
                )));
            }
            // Any other failed read is a failed look, retried until the timeout.
            Err(LookError::Failed(e)) => last_error = Some(e),
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        tokio::time::sleep(
            step.interval
                .0
                .min(deadline - now)
                .max(Duration::from_millis(50)),
        )
        .await;
    }
    if let Some(e) = last_error {
        return Err(StepError::Failed(format!(
            "NodePools not confirmed at {hop} within {}: the last look failed: {e}",
            step.timeout
        )));
    }
    let Some(found) = last_look else {
        return Err(StepError::Failed(format!(
            "NodePools not confirmed at {hop} within {}",
            step.timeout
        )));
    };
    let scope = scope(step, &found)?;
    let held = blockers::diagnose(ctx, &found, &scope, hop, &launches).await;
    Err(StepError::Failed(blockers::message(
        &held,
        &scope,
        hop,
        Some(step.timeout),
    )))
}

/// The pools the step waits for: those named, or every one whose nodes follow the control
/// plane. A named pool that has no nodes and no object is an error listing those that exist.
fn scope<'a>(step: &ConvergeNodePools, found: &'a Look) -> Result<Vec<&'a PoolLook>, StepError> {
    let Some(names) = &step.node_pools else {
        return Ok(found.pools.iter().filter(|p| p.fixed.is_none()).collect());
    };
    let mut out = Vec::new();
    for name in names {
        match found.pools.iter().find(|p| &p.name == name) {
            Some(p) => out.push(p),
            None if found.karpenter.pools.iter().any(|p| &p.name == name) => {}
            None => {
                let mut known: Vec<&str> = found
                    .karpenter
                    .pools
                    .iter()
                    .map(|p| p.name.as_str())
                    .chain(found.pools.iter().map(|p| p.name.as_str()))
                    .collect();
                known.sort();
                known.dedup();
                return Err(StepError::Failed(format!(
                    "NodePool `{name}` does not exist; the cluster has {}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                )));
            }
        }
    }
    Ok(out)
}

/// The pools on fixed AMIs, which stay where they are: said, not waited for.
fn left_alone(found: &Look, hop: Version) -> Option<String> {
    let lines: Vec<String> = found
        .pools
        .iter()
        .filter_map(|p| {
            let why = p.fixed.as_ref()?;
            Some(format!(
                "{} stays at {}/{} at {hop} ({why})",
                p.label(),
                p.at(hop),
                p.nodes.len()
            ))
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("; "))
}
