//! The plan's word on the nodes `upgradeNodegroups` does not move: self-managed groups and bare
//! instances, Fargate, hybrid nodes. Karpenter's and Auto Mode's are `convergeNodePools`'s to
//! say. A person reading the plan learns before the run who moves each node, and which nodes
//! will fall out of the kubelet skew policy because nobody does.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::checks::skew::first_violation;
use crate::cloud::nodes::{self, Manager, NodeInfo};
use crate::steps::health::LOOK_AT_LEAST;
use crate::types::Version;

/// Reads the nodes once, bounded: kube's client retries 503s for minutes, a plan may not wait
/// that long. A failed read is one line, not a failed plan.
pub async fn inventory(kube: &kube::Client) -> Result<Arc<Vec<NodeInfo>>, String> {
    match tokio::time::timeout(LOOK_AT_LEAST, nodes::inventory(kube.clone())).await {
        Ok(Ok(found)) => Ok(Arc::new(found)),
        Ok(Err(e)) => Err(crate::errors::kube(&e)),
        Err(_) => Err(format!(
            "no answer within {}",
            crate::types::HumanDuration(LOOK_AT_LEAST)
        )),
    }
}

/// One line per manager this step leaves alone, for the hop to `hop`.
pub fn lines(inventory: &[NodeInfo], hop: Version) -> Vec<String> {
    let mut by_manager: BTreeMap<&Manager, Vec<&NodeInfo>> = BTreeMap::new();
    for n in inventory {
        if matches!(
            n.manager,
            Manager::SelfManaged(_) | Manager::Fargate | Manager::Hybrid
        ) {
            by_manager.entry(&n.manager).or_default().push(n);
        }
    }
    by_manager
        .into_iter()
        .map(|(manager, found)| {
            let mut versions: Vec<String> = found
                .iter()
                .map(|n| {
                    n.version
                        .map_or_else(|| "an unknown version".into(), |v| v.to_string())
                })
                .collect();
            versions.sort();
            versions.dedup();
            let count = match found.len() {
                1 => "1 node".to_string(),
                n => format!("{n} nodes"),
            };
            let head = format!("{manager} ({count} at {})", versions.join(", "));
            let oldest = found.iter().filter_map(|n| n.version).min();
            let skew = match oldest.and_then(|v| first_violation(v, &[hop])) {
                Some(_) => {
                    format!("outside the kubelet skew policy at {hop}: replace them before the run")
                }
                None => format!("within the kubelet skew policy at {hop}"),
            };
            match manager {
                Manager::Fargate => {
                    format!("{head}: each moves to {hop} when its pod restarts")
                }
                Manager::Hybrid => {
                    format!("{head}: not moved by this run, their owners upgrade them; {skew}")
                }
                _ => format!("{head}: not moved by this run; {skew}"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn node(name: &str, labels: &[(&str, &str)], minor: u32) -> NodeInfo {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        NodeInfo {
            name: name.into(),
            manager: Manager::of(&labels),
            kubelet: format!("v1.{minor}.0"),
            version: Some(Version::new(1, minor)),
            ready: true,
            replacing: false,
            do_not_disrupt: false,
        }
    }

    #[test]
    fn nodes_this_step_does_not_move_are_named_with_their_fate() {
        let inventory = [
            node("a", &[("eks.amazonaws.com/nodegroup", "general")], 33),
            node("b", &[("karpenter.sh/nodepool", "default")], 33),
            node("c", &[("alpha.eksctl.io/nodegroup-name", "legacy")], 31),
            node("d", &[("eks.amazonaws.com/compute-type", "fargate")], 33),
            node("e", &[("eks.amazonaws.com/compute-type", "fargate")], 33),
            node("f", &[], 30),
        ];
        assert_eq!(
            lines(&inventory, Version::new(1, 34)),
            [
                "Fargate (2 nodes at 1.33): each moves to 1.34 when its pod restarts",
                "self-managed nodes (1 node at 1.30): not moved by this run; outside the kubelet skew policy at 1.34: replace them before the run",
                "self-managed nodes in `legacy` (1 node at 1.31): not moved by this run; within the kubelet skew policy at 1.34",
            ]
        );
    }
}
