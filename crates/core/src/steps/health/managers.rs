//! Nodes counted per manager (node group, Karpenter or Auto Mode NodePool, self-managed group,
//! Fargate), and Karpenter NodeClaims stuck before launch.
//!
//! Node names change on every replacement: a managed node group's rolling update, Karpenter's
//! drift and Auto Mode's all swap old nodes for new ones. Compared by name with the baseline,
//! every replacement looks like a lost node. Compared per manager, a replacement in flight (the
//! old node cordoned or tainted, the new one joining) holds the count, and capacity that does
//! not come back is named by the manager that lost it.

use std::collections::BTreeMap;

use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde::{Deserialize, Serialize};

use super::snapshot::Problem;
use crate::cloud::karpenter::{self, Condition};
use crate::cloud::list;
use crate::cloud::nodes::{Manager, NODEPOOL_LABEL, NodeInfo};

/// The problem kind of a manager with fewer Ready nodes than in the baseline.
pub const CAPACITY: &str = "capacity";

/// How many nodes one manager has, by its label for a person (`node group `general``).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagerCount {
    pub manager: String,
    pub nodes: usize,
    /// Ready and staying: not cordoned, not tainted for disruption.
    pub ready: usize,
    /// Ready, but on their way out (cordoned, or tainted `karpenter.sh/disrupted`) or still
    /// joining (tainted `karpenter.sh/unregistered`). Such a node that is not Ready is counted
    /// in `nodes` only: it is neither a problem by its name nor capacity.
    pub replacing: usize,
    /// Whether its Ready nodes are held to the baseline's: node groups, self-managed and hybrid
    /// nodes keep their size through an upgrade; Karpenter and Auto Mode NodePools shrink by
    /// design (consolidation, empty drifted nodes deleted without replacement) and Fargate's
    /// nodes come and go with their pods.
    #[serde(default)]
    pub fixed_size: bool,
}

/// The counts as nodes are read, a page at a time.
#[derive(Debug, Default)]
pub struct Tally(BTreeMap<String, ManagerCount>);

impl Tally {
    pub fn add(&mut self, node: &NodeInfo) {
        let label = node.manager.to_string();
        let count = self.0.entry(label.clone()).or_insert_with(|| ManagerCount {
            manager: label,
            fixed_size: matches!(
                node.manager,
                Manager::Nodegroup(_) | Manager::SelfManaged(_) | Manager::Hybrid
            ),
            ..ManagerCount::default()
        });
        count.nodes += 1;
        match (node.ready, node.replacing) {
            (true, true) => count.replacing += 1,
            (true, false) => count.ready += 1,
            (false, _) => {}
        }
    }

    /// The counts, sorted by label.
    pub fn counts(self) -> Vec<ManagerCount> {
        self.0.into_values().collect()
    }
}

/// Managers of a fixed size with fewer Ready nodes now than in the baseline, beyond what
/// replacements in flight account for. A Ready node being replaced counts as capacity on its
/// way: a stuck replacement shows as soon as the old node is gone and the new one has not come.
/// NodePools and Fargate are left out (`fixed_size`): they shrink by design, and a failed Karpenter
/// launch is named by its NodeClaim instead. A manager new since the baseline has nothing to
/// fall short of.
pub fn capacity(baseline: &[ManagerCount], now: &[ManagerCount]) -> Vec<Problem> {
    baseline
        .iter()
        .filter(|was| was.fixed_size)
        .filter_map(|was| {
            // A manager whose nodes are all gone is not listed at all: nothing Ready.
            let (ready, replacing) = now
                .iter()
                .find(|c| c.manager == was.manager)
                .map_or((0, 0), |c| (c.ready, c.replacing));
            let short = was.ready.saturating_sub(ready + replacing);
            (short > 0).then(|| Problem {
                kind: CAPACITY.into(),
                namespace: None,
                name: was.manager.clone(),
                detail: format!(
                    "{short} fewer Ready {} than before the upgrade ({ready} Ready, {replacing} replacing; {} before)",
                    if short == 1 { "node" } else { "nodes" },
                    was.ready
                ),
                severity: u32::try_from(short).unwrap_or(u32::MAX),
            })
        })
        .collect()
}

/// `14 nodes Ready (node group `general` 3, Karpenter NodePool `default` 10, Fargate 1)`, for
/// the health check's one-line summary.
pub fn summary(counts: &[ManagerCount]) -> String {
    let ready: usize = counts.iter().map(|c| c.ready).sum();
    let total = format!(
        "{ready} {} Ready",
        if ready == 1 { "node" } else { "nodes" }
    );
    if counts.is_empty() {
        return total;
    }
    let each: Vec<String> = counts
        .iter()
        .map(|c| {
            if c.replacing > 0 {
                format!("{} {} + {} replacing", c.manager, c.ready, c.replacing)
            } else {
                format!("{} {}", c.manager, c.ready)
            }
        })
        .collect();
    format!("{total} ({})", each.join(", "))
}

/// Karpenter (and Auto Mode) NodeClaims whose launch failed, one `NodeClaim launch POOL` problem
/// per NodePool (a retry gets a new claim name, the pool keeps its own): the instance a
/// replacement waits for, named with the cloud provider's reason.
///
/// The read must add no way for a look to fail: a cluster without Karpenter does not serve the
/// type (404), a tool without the permission may not list it (403), and any other error leaves
/// the stuck launch to the capacity count, which sees it too, only without the reason.
pub async fn stuck_launches(kube: &kube::Client) -> Vec<Problem> {
    let claims = ApiResource {
        group: karpenter::GROUP.into(),
        version: "v1".into(),
        api_version: format!("{}/v1", karpenter::GROUP),
        kind: "NodeClaim".into(),
        plural: "nodeclaims".into(),
    };
    let api: Api<DynamicObject> = Api::all_with(kube.clone(), &claims);
    let mut out = Vec::new();
    let read = list::each(&api, ListParams::default(), |claim| {
        out.extend(stuck_launch(&claim));
    })
    .await;
    match read {
        Ok(_) => out,
        Err(e) => {
            tracing::debug!(error = %e, "NodeClaims not read for the health check");
            Vec::new()
        }
    }
}

/// Karpenter's placeholder reason on a condition it has not looked at yet: a launch in flight.
const NOT_YET: &str = "AwaitingReconciliation";

/// A NodeClaim whose `Launched` condition is not `True` for a reason Karpenter gave. One being
/// deleted is on its way out (Karpenter deletes a claim it has no capacity for) and not counted.
fn stuck_launch(claim: &DynamicObject) -> Option<Problem> {
    if claim.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let conditions: Vec<Condition> = claim
        .data
        .pointer("/status/conditions")
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .unwrap_or_default();
    let launched = conditions.iter().find(|c| c.kind == "Launched")?;
    if launched.status == "True" || launched.reason.is_empty() || launched.reason == NOT_YET {
        return None;
    }
    let name = claim.metadata.name.clone().unwrap_or_default();
    let pool = claim
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(NODEPOOL_LABEL))
        .map(|p| format!("NodePool `{p}`"))
        .unwrap_or_else(|| format!("NodeClaim `{name}`"));
    let message = if launched.message.is_empty() {
        String::new()
    } else {
        format!(": {}", launched.message)
    };
    Some(Problem {
        kind: "NodeClaim launch".into(),
        namespace: None,
        name: pool,
        detail: format!("`{name}` not launched ({}{message})", launched.reason),
        severity: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(manager: &str, ready: usize, replacing: usize) -> ManagerCount {
        ManagerCount {
            manager: manager.into(),
            nodes: ready + replacing,
            ready,
            replacing,
            fixed_size: manager.starts_with("node group") || manager.starts_with("self-managed"),
        }
    }

    const GROUP: &str = "node group `system`";
    const POOL: &str = "Karpenter NodePool `default`";

    #[test]
    fn a_replacement_in_flight_is_not_lost_capacity() {
        let baseline = [count(GROUP, 5, 0)];
        assert_eq!(capacity(&baseline, &[count(GROUP, 4, 1)]), Vec::new());
        // The replacement joined and the old node is still draining: more than before is fine.
        assert_eq!(capacity(&baseline, &[count(GROUP, 5, 1)]), Vec::new());
        // Back to the baseline's count.
        assert_eq!(capacity(&baseline, &[count(GROUP, 5, 0)]), Vec::new());
    }

    #[test]
    fn a_stuck_replacement_is_named_by_its_manager() {
        let found = capacity(&[count(GROUP, 5, 0)], &[count(GROUP, 3, 0)]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].id(), "capacity node group `system`");
        assert_eq!(found[0].severity, 2);
        assert_eq!(
            found[0].detail,
            "2 fewer Ready nodes than before the upgrade (3 Ready, 0 replacing; 5 before)"
        );
        let one = capacity(&[count(GROUP, 5, 0)], &[count(GROUP, 3, 1)]);
        assert_eq!(
            one[0].detail,
            "1 fewer Ready node than before the upgrade (3 Ready, 1 replacing; 5 before)"
        );
    }

    #[test]
    fn a_manager_whose_nodes_are_all_gone_lost_them_all() {
        let group = "node group `general`";
        let found = capacity(
            &[count(group, 3, 0), count(GROUP, 2, 0)],
            &[count(GROUP, 2, 0)],
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].name, group);
        assert_eq!(found[0].severity, 3);
    }

    #[test]
    fn fargate_and_new_managers_have_no_baseline_to_fall_short_of() {
        assert_eq!(
            capacity(&[count("Fargate", 4, 0)], &[count("Fargate", 1, 0)]),
            Vec::new()
        );
        assert_eq!(
            capacity(&[], &[count("Auto Mode NodePool `general-purpose`", 0, 2)]),
            Vec::new()
        );
        // Nodes that were not Ready before owe nothing.
        assert_eq!(capacity(&[count(GROUP, 0, 0)], &[]), Vec::new());
        // A NodePool shrinks by design: consolidation is not lost capacity.
        assert_eq!(
            capacity(&[count(POOL, 5, 0)], &[count(POOL, 2, 0)]),
            Vec::new()
        );
    }

    fn node(labels: serde_json::Value, ready: bool, spec: serde_json::Value) -> NodeInfo {
        let node = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "n", "labels": labels },
            "spec": spec,
            "status": { "conditions": [
                { "type": "Ready", "status": if ready { "True" } else { "False" } },
            ] },
        }))
        .expect("a valid Node");
        NodeInfo::from_node(node)
    }

    #[test]
    fn nodes_are_tallied_per_manager_sorted_by_label() {
        let group = serde_json::json!({ "eks.amazonaws.com/nodegroup": "general" });
        let pool = serde_json::json!({ "karpenter.sh/nodepool": "default" });
        let fargate = serde_json::json!({ "eks.amazonaws.com/compute-type": "fargate" });
        let none = serde_json::json!({});
        let mut tally = Tally::default();
        for n in [
            node(group.clone(), true, none.clone()),
            node(
                group.clone(),
                true,
                serde_json::json!({ "unschedulable": true }),
            ),
            node(group, false, none.clone()),
            node(
                pool.clone(),
                false,
                serde_json::json!({ "taints": [
                    { "key": "karpenter.sh/unregistered", "effect": "NoExecute" },
                ] }),
            ),
            node(pool, true, none.clone()),
            node(fargate, true, none),
        ] {
            tally.add(&n);
        }
        let counts = tally.counts();
        assert_eq!(
            counts,
            vec![
                count("Fargate", 1, 0),
                ManagerCount {
                    manager: POOL.into(),
                    nodes: 2,
                    ready: 1,
                    replacing: 0,
                    fixed_size: false,
                },
                ManagerCount {
                    manager: "node group `general`".into(),
                    nodes: 3,
                    ready: 1,
                    replacing: 1,
                    fixed_size: true,
                },
            ]
        );
        assert_eq!(
            summary(&counts),
            "3 nodes Ready (Fargate 1, Karpenter NodePool `default` 1, node group `general` 1 + 1 replacing)"
        );
        assert_eq!(summary(&[]), "0 nodes Ready");
        assert_eq!(
            summary(&[count(POOL, 1, 0)]),
            "1 node Ready (Karpenter NodePool `default` 1)"
        );
    }

    fn claim(launched: serde_json::Value, deleting: bool) -> DynamicObject {
        let mut meta = serde_json::json!({
            "name": "default-abcde",
            "labels": { "karpenter.sh/nodepool": "default" },
        });
        if deleting {
            meta["deletionTimestamp"] = "2025-06-01T00:00:00Z".into();
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodeClaim",
            "metadata": meta,
            "status": { "conditions": [ launched, { "type": "Ready", "status": "Unknown" } ] },
        }))
        .expect("a NodeClaim")
    }

    #[test]
    fn a_failed_launch_is_named_and_one_in_flight_is_not() {
        let failed = claim(
            serde_json::json!({
                "type": "Launched", "status": "False", "reason": "LaunchFailed",
                "message": "creating instance, no subnets found",
            }),
            false,
        );
        let p = stuck_launch(&failed).expect("a problem");
        assert_eq!(p.id(), "NodeClaim launch NodePool `default`");
        assert_eq!(
            p.detail,
            "`default-abcde` not launched (LaunchFailed: creating instance, no subnets found)"
        );
        let retrying = claim(
            serde_json::json!({ "type": "Launched", "status": "Unknown", "reason": "LaunchFailed" }),
            false,
        );
        assert!(stuck_launch(&retrying).is_some());

        for (launched, deleting) in [
            (
                serde_json::json!({ "type": "Launched", "status": "True" }),
                false,
            ),
            (
                serde_json::json!({ "type": "Launched", "status": "Unknown", "reason": "AwaitingReconciliation" }),
                false,
            ),
            (
                serde_json::json!({ "type": "Launched", "status": "Unknown" }),
                false,
            ),
            (
                serde_json::json!({ "type": "Launched", "status": "False", "reason": "LaunchFailed" }),
                true,
            ),
            (
                serde_json::json!({ "type": "Registered", "status": "False", "reason": "x" }),
                false,
            ),
        ] {
            assert_eq!(
                stuck_launch(&claim(launched.clone(), deleting)),
                None,
                "{launched}"
            );
        }
    }
}
