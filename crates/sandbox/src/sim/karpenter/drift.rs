//! The self-installed Karpenter controller, as far as an upgrade meets it: every round it
//! resolves each EC2NodeClass's AMIs for the control plane's version, marks the NodeClaims
//! whose AMI is no longer among them `Drifted`, advances the replacements in flight
//! (`command.rs`: taint, launch, drain, delete) and starts new ones pool by pool, never more at
//! once than the pool's disruption budgets for `Drifted` allow: a tainted node counts against
//! the budget until it is gone. A node annotated `karpenter.sh/do-not-disrupt`, or (unless its
//! NodeClaim carries a `terminationGracePeriod`) one whose pods are annotated so or may not be
//! evicted under their PodDisruptionBudget, is not started on, as Karpenter skips it. A class
//! whose terms resolve no AMI drifts nothing. A controller scaled to zero does nothing at all.

use std::sync::Arc;

use chrono::Utc;
use serde_json::{Value, json};

use super::command::{self, Command, Phase};
use super::{AWS_GROUP, amis, budgets_of, claim_object, class_status, released};
use crate::kube::selector::Selector;
use crate::kube::store::{ResourceType, Store, StoreError, Subresource};
use crate::scenario::LaunchFailure;
use crate::sim::{automode, nodes, placement, workloads};
use crate::world::World;
use eks_upgrade_core::cloud::karpenter_budget::{allowed, parse_duration};
use eks_upgrade_core::types::Version;

/// Runs the controller for as long as the sandbox runs. A replacement takes two rounds from
/// start to drain, so a round is half the time a managed node group takes per node.
pub fn start(world: Arc<World>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let round = world.scenario.spec.timings.nodegroup_update_per_node.0 / 2;
        let mut controller = Controller::default();
        loop {
            tokio::time::sleep(world.real(round)).await;
            // A failed write is retried on the next round, as the controller's reconcile is.
            let _ = controller.tick(&world);
        }
    })
}

/// The controller's memory between rounds, as Karpenter's orchestration queue keeps it.
#[derive(Debug, Default)]
pub struct Controller {
    commands: Vec<Command>,
    /// Failed launches so far, per row of `faults.launchFailures`.
    failed: Vec<u32>,
}

pub(super) fn resource(
    store: &Store,
    group: &str,
    plural: &str,
) -> Result<Arc<ResourceType>, StoreError> {
    store
        .resource(group, "v1", plural)
        .ok_or_else(|| StoreError::Invalid(format!("no {plural} resource")))
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Whether the controller's Deployment asks for any replica.
fn running(store: &Store, world: &World) -> bool {
    let Some(k) = &world.scenario.spec.karpenter else {
        return false;
    };
    store
        .resource("apps", "v1", "deployments")
        .and_then(|rt| store.get(&rt, Some(&k.namespace), "karpenter").ok())
        .and_then(|d| d.pointer("/spec/replicas").and_then(Value::as_u64))
        .is_some_and(|r| r > 0)
}

impl Controller {
    /// One reconcile of every class and pool. Returns the `old → new` node names whose
    /// replacement finished in this round.
    pub fn tick(&mut self, world: &World) -> Result<Vec<(String, String)>, StoreError> {
        let store = &world.store;
        if !running(store, world) {
            return Ok(Vec::new());
        }
        let version = world.control_plane_version();
        let released = released(&world.scenario, version);
        let classes = resource(store, AWS_GROUP, "ec2nodeclasses")?;
        let all = Selector::default();
        for class in store.list(&classes, None, &all).0 {
            let terms = class
                .pointer("/spec/amiSelectorTerms")
                .cloned()
                .unwrap_or(json!([]));
            let status = class_status(&terms, version, released);
            if class.get("status") != Some(&status) {
                store.update(
                    &classes,
                    None,
                    text(&class, "/metadata/name"),
                    None,
                    Subresource::Status,
                    |o| {
                        o["status"] = status;
                        Ok(())
                    },
                )?;
            }
        }
        // Commands in flight go first: the budget they free, new commands may use.
        let replaced = self.advance(world)?;
        let pools = resource(store, "karpenter.sh", "nodepools")?;
        let mut started = false;
        for pool in store.list(&pools, None, &all).0 {
            // Auto Mode's pools are EKS's to move (eks/automode.rs).
            if text(&pool, "/spec/template/spec/nodeClassRef/group") != AWS_GROUP {
                continue;
            }
            started |= self.pool_round(world, &pool, version, released)?;
        }
        if started || !replaced.is_empty() {
            // Raced by the simulator's own reconcile of the same change: either one will do.
            let _ = workloads::reconcile_all(store, &placement(world));
        }
        Ok(replaced)
    }

    /// Moves every command one step on; drops those that ended. A command whose step failed
    /// stays for the next round (its writes are idempotent), and so do the ones after it.
    fn advance(&mut self, world: &World) -> Result<Vec<(String, String)>, StoreError> {
        let store = &world.store;
        let mut replaced = Vec::new();
        let mut kept = Vec::new();
        let mut failed = None;
        for mut c in std::mem::take(&mut self.commands) {
            let step = match c.phase {
                Phase::Launching => {
                    let fault = self.fault_for(world, &c.pool);
                    command::launch(store, &mut c, fault).map(|()| false)
                }
                Phase::Failed => command::abandon(store, &c).map(|()| true),
                Phase::Draining(since) => command::drain(world, &c, since),
            };
            match step {
                Ok(true) => {
                    if matches!(c.phase, Phase::Draining(_)) {
                        let new = text(&c.node, "/metadata/name").to_string();
                        replaced.push((c.old_node.clone(), new));
                    }
                }
                Ok(false) => kept.push(c),
                Err(e) => {
                    kept.push(c);
                    failed.get_or_insert(e);
                }
            }
        }
        self.commands = kept;
        match failed {
            Some(e) => Err(e),
            None => Ok(replaced),
        }
    }

    /// What a lost command leaves (a write that failed part-way in `command::start`): a node
    /// tainted for disruption, or a claim that never launched, that no command owns. Karpenter
    /// clears both when it starts again; so does each round here.
    fn orphans(&self, store: &Store, pool: &str) -> Result<(), StoreError> {
        let selector = Selector::parse(Some(&format!("{}={pool}", nodes::NODEPOOL_LABEL)), None)
            .unwrap_or_default();
        let node_rt = resource(store, "", "nodes")?;
        for n in store.list(&node_rt, None, &selector).0 {
            let name = text(&n, "/metadata/name");
            if tainted(&n) && !self.commands.iter().any(|c| c.old_node == name) {
                command::release(store, name)?;
            }
        }
        let claims = resource(store, "karpenter.sh", "nodeclaims")?;
        for c in store.list(&claims, None, &selector).0 {
            let name = text(&c, "/metadata/name");
            if text(&c, "/status/imageID").is_empty()
                && !self.commands.iter().any(|x| x.new_claim == name)
            {
                match store.delete(&claims, None, name) {
                    Ok(_) | Err(StoreError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// The launch fault that applies to the next launch in `pool`, counted as used.
    fn fault_for<'w>(&mut self, world: &'w World, pool: &str) -> Option<&'w LaunchFailure> {
        let faults = &world.scenario.spec.faults.launch_failures;
        self.failed.resize(faults.len(), 0);
        let (i, f) = faults
            .iter()
            .enumerate()
            .find(|(i, f)| f.node_pool == pool && f.count.is_none_or(|n| self.failed[*i] < n))?;
        self.failed[i] += 1;
        Some(f)
    }

    /// Marks the drifted claims of one pool and starts as many replacements as its budgets
    /// allow. Returns whether it started any.
    fn pool_round(
        &mut self,
        world: &World,
        pool: &Value,
        version: Version,
        released: Option<chrono::NaiveDate>,
    ) -> Result<bool, StoreError> {
        let store = &world.store;
        let name = text(pool, "/metadata/name");
        self.orphans(store, name)?;
        let class_name = text(pool, "/spec/template/spec/nodeClassRef/name");
        let (classes, claims, node_rt) = (
            resource(store, AWS_GROUP, "ec2nodeclasses")?,
            resource(store, "karpenter.sh", "nodeclaims")?,
            resource(store, "", "nodes")?,
        );
        let Ok(class) = store.get(&classes, None, class_name) else {
            return Ok(false);
        };
        let resolved: Vec<String> = class
            .pointer("/status/amis")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|x| text(x, "/id").to_string()).collect())
            .unwrap_or_default();
        // Karpenter errors out rather than drifting when a class resolves no AMI.
        if resolved.is_empty() {
            return Ok(false);
        }
        let terms = class
            .pointer("/spec/amiSelectorTerms")
            .cloned()
            .unwrap_or(json!([]));
        let follows = terms
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t.get("alias").is_some()));
        let selector = Selector::parse(Some(&format!("{}={name}", nodes::NODEPOOL_LABEL)), None)
            .unwrap_or_default();
        // The budget counts the pool's nodes; those tainted for a replacement or not Ready are
        // already being disrupted.
        let pool_nodes = store.list(&node_rt, None, &selector).0;
        let disrupting = pool_nodes
            .iter()
            .filter(|n| tainted(n) || !nodes_ready(n))
            .count();
        let budgets = budgets_of(pool);
        let mut allowance = allowed(
            &budgets,
            "Drifted",
            pool_nodes.len(),
            disrupting,
            Utc::now(),
        )
        .nodes;
        let mut started = false;
        for claim in store.list(&claims, None, &selector).0 {
            let claim_name = text(&claim, "/metadata/name").to_string();
            // A claim still launching has no image yet and is not a candidate.
            let image_id = text(&claim, "/status/imageID");
            if image_id.is_empty() {
                continue;
            }
            let drifted = !resolved.iter().any(|a| a == image_id);
            set_drifted(store, &claims, &claim_name, drifted)?;
            let old = text(&claim, "/status/nodeName").to_string();
            if !drifted || allowance == 0 || self.commands.iter().any(|c| c.old_claim == claim_name)
            {
                continue;
            }
            let Ok(node) = store.get(&node_rt, None, &old) else {
                continue;
            };
            // Past a grace period set on the claim at launch, Karpenter drains whatever the
            // pods say; only the node's own annotation still holds it.
            let grace = claim
                .pointer("/spec/terminationGracePeriod")
                .and_then(Value::as_str)
                .and_then(|g| parse_duration(g).ok())
                .and_then(|g| g.to_std().ok());
            if automode::held(store, &node, &old, grace.is_none()).is_some() {
                continue;
            }
            // An alias's AMI is for the control plane's version; a fixed AMI keeps its kubelet.
            let kubelet = if follows {
                version
            } else {
                nodes::node_version(&node).unwrap_or(version)
            };
            let image = amis(&terms, version, released)
                .into_iter()
                .next()
                .map(|(id, _)| id)
                .unwrap_or_default();
            let fresh = nodes::successor(&node, &world.scenario.spec.cluster.region, kubelet);
            let mut new_claim = claim_object(&fresh, pool, &image);
            command::launching(&mut new_claim);
            let c = Command {
                pool: name.to_string(),
                old_claim: claim_name,
                old_node: old,
                new_claim: text(&new_claim, "/metadata/name").to_string(),
                node: fresh,
                image,
                phase: Phase::Launching,
                grace,
            };
            self.commands.push(command::start(store, c, new_claim)?);
            allowance -= 1;
            started = true;
        }
        Ok(started)
    }
}

/// Tainted by Karpenter for a replacement.
fn tainted(node: &Value) -> bool {
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .is_some_and(|ts| ts.iter().any(|t| t["key"] == nodes::DISRUPTED_TAINT))
}

fn nodes_ready(node: &Value) -> bool {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Sets or clears the claim's `Drifted` condition (reason `AMIDrift`), as Karpenter does.
fn set_drifted(
    store: &Store,
    claims: &Arc<ResourceType>,
    name: &str,
    drifted: bool,
) -> Result<(), StoreError> {
    let current = store.get(claims, None, name)?;
    let has = current
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Drifted"));
    if has == drifted {
        return Ok(());
    }
    store.update(claims, None, name, None, Subresource::Status, |o| {
        let conditions = o["status"]["conditions"].as_array_mut();
        match conditions {
            Some(cs) if drifted => cs.push(json!({
                "type": "Drifted", "status": "True", "reason": "AMIDrift",
                "message": "the node's AMI is not among those its EC2NodeClass resolves",
                "lastTransitionTime": Utc::now().to_rfc3339(),
            })),
            Some(cs) => cs.retain(|c| c["type"] != "Drifted"),
            None => {}
        }
        Ok(())
    })?;
    Ok(())
}
