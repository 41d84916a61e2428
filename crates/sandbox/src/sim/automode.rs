//! EKS Auto Mode's compute, as its Karpenter-based controller runs it: NodePools
//! (`karpenter.sh/v1`) with disruption budgets, the `default` NodeClass, and nodes that drift to
//! the control plane's version (after an upgrade) or to the rollback target (before a rollback).
//!
//! A drifted node is replaced the way Karpenter replaces one: the new node is launched first,
//! then the old one is cordoned and drained. A NodePool budget of `"0"`, a
//! `karpenter.sh/do-not-disrupt: "true"` annotation on the node or on one of its pods, or a
//! PodDisruptionBudget that allows no eviction holds the node back; Karpenter waits rather
//! than fails.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::fargate::Placement;
use super::nodes::{self, COMPUTE_TYPE_LABEL, DO_NOT_DISRUPT, NODEPOOL_LABEL};
use super::{names, workloads};
use crate::kube::selector::Selector;
use crate::kube::store::{ResourceType, Store, StoreError};
use crate::scenario::Scenario;
use eks_upgrade_core::cloud::karpenter_budget;
use eks_upgrade_core::types::Version;

/// The resource types an Auto Mode cluster serves: NodePools and NodeClaims (Karpenter's) and
/// NodeClasses (EKS's).
pub fn resource_types() -> Vec<ResourceType> {
    vec![
        super::karpenter::nodepool_type(),
        super::karpenter::nodeclaim_type(),
        ResourceType::new("eks.amazonaws.com", "v1", "NodeClass", "nodeclasses", false)
            .with_status(),
    ]
}

fn nodepools(store: &Store) -> Option<std::sync::Arc<ResourceType>> {
    store.resource("karpenter.sh", "v1", "nodepools")
}

/// The NodePool object for a pool: the built-in pools' shape, with the scenario's budget.
fn nodepool_object(name: &str, budget: &str) -> Value {
    json!({
        "metadata": { "name": name, "labels": { "app.kubernetes.io/managed-by": "eks" } },
        "spec": {
            "template": {
                "spec": {
                    "nodeClassRef": { "group": "eks.amazonaws.com", "kind": "NodeClass", "name": "default" },
                    "requirements": [
                        { "key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"] },
                        { "key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"] },
                    ],
                    "expireAfter": "336h",
                },
            },
            "disruption": {
                "consolidationPolicy": "WhenEmptyOrUnderutilized",
                "consolidateAfter": "30s",
                "budgets": [ { "nodes": budget } ],
            },
        },
    })
}

/// Seeds the NodeClass, the NodePools and their nodes of an Auto Mode cluster.
pub fn seed(store: &Store, scenario: &Scenario, zone_offset: usize) -> Result<(), StoreError> {
    let spec = &scenario.spec;
    let Some(compute) = spec.cluster.compute_config.as_ref().filter(|c| c.enabled) else {
        return Ok(());
    };
    let missing = |what: &str| StoreError::Invalid(format!("no {what} resource"));
    let classes = store
        .resource("eks.amazonaws.com", "v1", "nodeclasses")
        .ok_or_else(|| missing("nodeclasses"))?;
    store.create(
        &classes,
        None,
        json!({
            "metadata": { "name": "default" },
            "spec": { "role": format!("{}-auto-node-role", spec.cluster.name), "ephemeralStorage": { "size": "80Gi" } },
        }),
    )?;
    let pools = nodepools(store).ok_or_else(|| missing("nodepools"))?;
    let mut names_seen: Vec<&str> = Vec::new();
    for pool in &spec.node_pools {
        store.create(&pools, None, nodepool_object(&pool.name, &pool.budget))?;
        names_seen.push(&pool.name);
    }
    for builtin in &compute.node_pools {
        if !names_seen.contains(&builtin.as_str()) {
            store.create(&pools, None, nodepool_object(builtin, "10%"))?;
        }
    }
    let node_rt = store
        .resource("", "v1", "nodes")
        .ok_or_else(|| missing("nodes"))?;
    let region = &spec.cluster.region;
    let zones = ["a", "b", "c"];
    let mut n = zone_offset;
    for pool in &spec.node_pools {
        let version = pool.version.unwrap_or(spec.cluster.version);
        for i in 0..pool.nodes {
            let name = names::instance_id(&format!("{}/{}/{i}", spec.cluster.name, pool.name));
            let zone = format!("{region}{}", zones[n % zones.len()]);
            n += 1;
            let origin = nodes::Origin::Auto {
                pool: &pool.name,
                instance_type: &pool.instance_type,
            };
            let mut node = nodes::node_object(&name, version, &origin, &zone);
            if pool.do_not_disrupt {
                node["metadata"]["annotations"] = json!({ DO_NOT_DISRUPT: "true" });
            }
            store.create(&node_rt, None, node)?;
        }
    }
    Ok(())
}

/// Auto Mode nodes not yet at `target`, oldest first.
pub fn drifted(store: &Store, target: Version) -> Vec<String> {
    let Some(rt) = store.resource("", "v1", "nodes") else {
        return Vec::new();
    };
    nodes::labelled_nodes(store, &format!("{COMPUTE_TYPE_LABEL}=auto"))
        .into_iter()
        .filter(|n| {
            store
                .get(&rt, None, n)
                .ok()
                .and_then(|node| nodes::node_version(&node))
                .is_some_and(|v| v != target)
        })
        .collect()
}

/// How many nodes of a pool the active budgets let Karpenter disrupt for drift at once, by
/// Karpenter's rules (`karpenter_budget`: the smallest active budget, percentages rounded up,
/// schedules on the wall clock, an invalid budget allowing none).
fn allowed(store: &Store, pool: &str, size: usize) -> usize {
    let budgets = nodepools(store)
        .and_then(|rt| store.get(&rt, None, pool).ok())
        .map(|p| super::karpenter::budgets_of(&p))
        .unwrap_or_default();
    karpenter_budget::allowed(&budgets, "Drifted", size, 0, chrono::Utc::now()).nodes
}

fn annotated(obj: &Value) -> bool {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(DO_NOT_DISRUPT))
        .and_then(Value::as_str)
        == Some("true")
}

/// Why a node cannot be disrupted now, if it cannot. With `pods_count` false (a NodePool with
/// a `terminationGracePeriod`), only the node's own annotation holds it: Karpenter then drains
/// the node past its pods' annotations and PodDisruptionBudgets once the period ends.
pub(crate) fn held(store: &Store, node: &Value, name: &str, pods_count: bool) -> Option<String> {
    if annotated(node) {
        return Some(format!("node {name} is annotated {DO_NOT_DISRUPT}"));
    }
    if !pods_count {
        return None;
    }
    let prt = store.resource("", "v1", "pods")?;
    let field = Selector::parse(None, Some(&format!("spec.nodeName={name}"))).unwrap_or_default();
    if let Some(pod) = store
        .list(&prt, None, &field)
        .0
        .iter()
        .find(|p| annotated(p))
    {
        let ns = pod
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        let pod = pod
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        return Some(format!(
            "pod {ns}/{pod} on node {name} is annotated {DO_NOT_DISRUPT}"
        ));
    }
    let blocked = workloads::eviction_blocked(store, name);
    (!blocked.is_empty()).then(|| {
        format!(
            "a PodDisruptionBudget allows no eviction of {} on node {name}",
            blocked.join(", ")
        )
    })
}

/// What one round of drift did.
#[derive(Debug, Default)]
pub struct Round {
    /// `old → new` node names.
    pub replaced: Vec<(String, String)>,
    /// Nodes still to move and why each waits.
    pub held: Vec<(String, String)>,
}

/// One round of drift towards `target`: in every NodePool, as many drifted nodes as its budget
/// allows are replaced by nodes at `target`.
pub fn drift_round(store: &Store, placement: &Placement, target: Version) -> Round {
    let mut round = Round::default();
    let Some(rt) = store.resource("", "v1", "nodes") else {
        return round;
    };
    let mut by_pool: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    for name in nodes::labelled_nodes(store, &format!("{COMPUTE_TYPE_LABEL}=auto")) {
        if let Ok(node) = store.get(&rt, None, &name) {
            let pool = node
                .pointer("/metadata/labels")
                .and_then(|l| l.get(NODEPOOL_LABEL))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            by_pool.entry(pool).or_default().push((name, node));
        }
    }
    for (pool, members) in by_pool {
        let mut budget = allowed(store, &pool, members.len());
        for (name, node) in members {
            if nodes::node_version(&node).is_none_or(|v| v == target) {
                continue;
            }
            if budget == 0 {
                round.held.push((
                    name,
                    format!("the disruption budget of NodePool {pool} allows no more disruption"),
                ));
                continue;
            }
            // Pods of nodes replaced earlier in the round have moved by now.
            let _ = workloads::reconcile_all(store, placement);
            if let Some(why) = held(store, &node, &name, true) {
                round.held.push((name, why));
                continue;
            }
            match nodes::replace(store, &placement.region, &name, target) {
                Ok(fresh) => {
                    budget -= 1;
                    round.replaced.push((name, fresh));
                }
                Err(e) => round
                    .held
                    .push((name, format!("the replacement failed: {e}"))),
            }
        }
    }
    if !round.replaced.is_empty() {
        let _ = workloads::reconcile_all(store, placement);
    }
    round
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(budgets: Value) -> Store {
        let store = Store::new();
        for rt in resource_types() {
            store.register(rt);
        }
        let rt = nodepools(&store).expect("type");
        let mut pool = nodepool_object("general-purpose", "10%");
        pool["spec"]["disruption"]["budgets"] = budgets;
        store.create(&rt, None, pool).expect("pool");
        store
    }

    #[test]
    fn budgets_allow_the_smallest_active_share_rounded_up() {
        // Schedules are the shared budget code's (cloud/karpenter_budget_cases.json); these
        // cases check the pool's budgets are read from its object.
        let allowed_with =
            |budgets: Value, size| allowed(&store_with(budgets), "general-purpose", size);
        assert_eq!(allowed_with(json!([{ "nodes": "10%" }]), 2), 1);
        assert_eq!(allowed_with(json!([{ "nodes": "50%" }]), 5), 3);
        assert_eq!(allowed_with(json!([{ "nodes": "0" }]), 5), 0);
        assert_eq!(
            allowed_with(json!([{ "nodes": "3" }, { "nodes": "20%" }]), 10),
            2
        );
        // A budget for other reasons does not hold drift back.
        assert_eq!(
            allowed_with(
                json!([{ "nodes": "0", "reasons": ["Empty"] }, { "nodes": "2" }]),
                10
            ),
            2
        );
        // No NodePool object: Karpenter's default of 10%.
        assert_eq!(allowed(&store_with(json!([])), "other", 20), 2);
    }
}
