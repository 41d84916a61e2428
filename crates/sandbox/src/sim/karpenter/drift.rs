//! The self-installed Karpenter controller, as far as an upgrade meets it: every round it
//! resolves each EC2NodeClass's AMIs for the control plane's version, marks the NodeClaims
//! whose AMI is no longer among them `Drifted`, and replaces drifted nodes pool by pool, no
//! more per round than the pool's disruption budgets for `Drifted` allow. A node annotated
//! `karpenter.sh/do-not-disrupt`, or (unless the pool sets `terminationGracePeriod`) one whose
//! pods are annotated so or may not be evicted under their PodDisruptionBudget, is skipped, as
//! Karpenter skips it. A class whose terms resolve no AMI drifts nothing. A controller scaled to
//! zero does nothing at all.
//!
//! A replacement is launched before the old node goes (`nodes::replace`: the new node is
//! created, then the old one cordoned and removed) and its pods restart on the new node.

use std::sync::Arc;

use chrono::Utc;
use serde_json::{Value, json};

use super::{AWS_GROUP, amis, budgets_of, claim_object, class_status, released};
use crate::kube::selector::Selector;
use crate::kube::store::{ResourceType, Store, StoreError, Subresource};
use crate::sim::{automode, nodes, placement, workloads};
use crate::world::World;
use eks_upgrade_core::cloud::karpenter_budget::allowed;
use eks_upgrade_core::types::Version;

/// Runs the controller for as long as the sandbox runs. A round takes the time a managed node
/// group takes to replace one node: launch, join, drain.
pub fn start(world: Arc<World>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let round = world.scenario.spec.timings.nodegroup_update_per_node;
        loop {
            tokio::time::sleep(world.real(round.0)).await;
            // A failed write is retried on the next round, as the controller's reconcile is.
            let _ = tick(&world);
        }
    })
}

fn resource(store: &Store, group: &str, plural: &str) -> Result<Arc<ResourceType>, StoreError> {
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

/// One reconcile of every class and pool. Returns the `old → new` node names replaced.
pub fn tick(world: &World) -> Result<Vec<(String, String)>, StoreError> {
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
    let pools = resource(store, "karpenter.sh", "nodepools")?;
    let mut replaced = Vec::new();
    for pool in store.list(&pools, None, &all).0 {
        // Auto Mode's pools are EKS's to move (eks/automode.rs).
        if text(&pool, "/spec/template/spec/nodeClassRef/group") != AWS_GROUP {
            continue;
        }
        replaced.extend(pool_round(world, &pool, version, released)?);
    }
    if !replaced.is_empty() {
        let _ = workloads::reconcile_all(store, &placement(world));
    }
    Ok(replaced)
}

/// Marks drifted claims of one pool and replaces as many as its budgets allow.
fn pool_round(
    world: &World,
    pool: &Value,
    version: Version,
    released: Option<chrono::NaiveDate>,
) -> Result<Vec<(String, String)>, StoreError> {
    let store = &world.store;
    let name = text(pool, "/metadata/name");
    let class_name = text(pool, "/spec/template/spec/nodeClassRef/name");
    let (classes, claims, node_rt) = (
        resource(store, AWS_GROUP, "ec2nodeclasses")?,
        resource(store, "karpenter.sh", "nodeclaims")?,
        resource(store, "", "nodes")?,
    );
    let Ok(class) = store.get(&classes, None, class_name) else {
        return Ok(Vec::new());
    };
    let resolved: Vec<String> = class
        .pointer("/status/amis")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|x| text(x, "/id").to_string()).collect())
        .unwrap_or_default();
    // Karpenter errors out rather than drifting when a class resolves no AMI.
    if resolved.is_empty() {
        return Ok(Vec::new());
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
    let members = store.list(&claims, None, &selector).0;
    let budgets = budgets_of(pool);
    let not_ready = members
        .iter()
        .filter(|c| {
            let node = text(c, "/status/nodeName");
            store
                .get(&node_rt, None, node)
                .map(|n| !nodes_ready(&n))
                .unwrap_or(true)
        })
        .count();
    let mut allowance = allowed(&budgets, "Drifted", members.len(), not_ready, Utc::now()).nodes;
    let mut replaced = Vec::new();
    for claim in members {
        let claim_name = text(&claim, "/metadata/name").to_string();
        let drifted = !resolved
            .iter()
            .any(|a| a == text(&claim, "/status/imageID"));
        set_drifted(store, &claims, &claim_name, drifted)?;
        if !drifted || allowance == 0 {
            continue;
        }
        let old = text(&claim, "/status/nodeName").to_string();
        let Ok(node) = store.get(&node_rt, None, &old) else {
            continue;
        };
        // Pods of nodes replaced earlier in the round have moved by now.
        let _ = workloads::reconcile_all(store, &placement(world));
        // Past a grace period set on the claim at launch, Karpenter drains whatever the pods
        // say; only the node's own annotation still holds it.
        let grace = claim
            .pointer("/spec/terminationGracePeriod")
            .is_some_and(|v| !v.is_null());
        if automode::held(store, &node, &old, !grace).is_some() {
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
        let fresh = nodes::replace(store, &world.scenario.spec.cluster.region, &old, kubelet)?;
        let new_node = store.get(&node_rt, None, &fresh)?;
        store.create(&claims, None, claim_object(&new_node, pool, &image))?;
        store.delete(&claims, None, &claim_name)?;
        allowance -= 1;
        replaced.push((old, fresh));
    }
    Ok(replaced)
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
