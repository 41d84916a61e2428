//! Version skew: a kubelet may be at most three minor versions older than the API server (two
//! before 1.25) and never newer; kube-proxy follows the same rule. A hop that would break it
//! leaves nodes the new control plane does not support. Nodes of managed node groups the
//! workflow upgrades move with every hop, so only the first hop matters for them; anything
//! else (self-managed nodes, a kube-proxy nobody upgrades) must hold for every hop.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;

use super::{Facts, Finding, Severity};
use crate::cloud::nodes::Manager;
use crate::types::Version;
pub use crate::types::version::minor_of;

/// How many minor versions a kubelet or kube-proxy at `node` may trail the API server.
fn allowed_lag(node: Version) -> u32 {
    if node >= Version::new(1, 25) { 3 } else { 2 }
}

/// The first version among `hops` that `component` at `node` cannot run against.
pub fn first_violation(node: Version, hops: &[Version]) -> Option<Version> {
    hops.iter().copied().find(|h| {
        h.major != node.major || h.minor < node.minor || h.minor - node.minor > allowed_lag(node)
    })
}

pub async fn check(facts: &Facts<'_>) -> Vec<Finding> {
    let mut out = kubelets(facts).await;
    out.extend(kube_proxy(facts).await);
    out.extend(ipvs(facts).await);
    out
}

/// Whether a kube-proxy configuration (the add-on's `configurationValues` JSON, or the
/// `config` of the kube-proxy-config ConfigMap, YAML) selects IPVS mode.
pub fn selects_ipvs(text: &str) -> bool {
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(text) {
        return json.get("mode").and_then(|m| m.as_str()) == Some("ipvs");
    }
    text.lines().any(|l| {
        l.trim_start()
            .strip_prefix("mode:")
            .is_some_and(|v| v.trim().trim_matches(['"', '\'']) == "ipvs")
    })
}

/// IPVS mode is deprecated in Kubernetes 1.35: a warning on a hop to 1.35, an error beyond.
async fn ipvs(facts: &Facts<'_>) -> Vec<Finding> {
    let Some(last) = facts.hops.iter().copied().max() else {
        return Vec::new();
    };
    if last < Version::new(1, 35) {
        return Vec::new();
    }
    let from_addon = facts
        .addons
        .iter()
        .find(|a| a.name == "kube-proxy")
        .and_then(|a| a.configuration_values.as_deref())
        .is_some_and(selects_ipvs);
    let from_config = match Api::<ConfigMap>::namespaced(facts.conn.kube.clone(), "kube-system")
        .get_opt("kube-proxy-config")
        .await
    {
        Ok(Some(cm)) => cm
            .data
            .as_ref()
            .and_then(|d| d.get("config"))
            .is_some_and(|c| selects_ipvs(c)),
        _ => false,
    };
    if !(from_addon || from_config) {
        return Vec::new();
    }
    let error = last > Version::new(1, 35);
    vec![
        Finding::new(
            "K8S003",
            if error { Severity::Error } else { Severity::Warning },
            "kube-proxy",
            format!(
                "runs in IPVS mode (set in {}), which Kubernetes deprecates in 1.35; this run goes to {last}",
                if from_addon { "the add-on's configurationValues" } else { "ConfigMap kube-system/kube-proxy-config" }
            ),
            "move kube-proxy to `iptables` or `nftables` mode before the upgrade",
        )
        .at(Some("kube-system"), "kube-proxy"),
    ]
}

async fn kubelets(facts: &Facts<'_>) -> Vec<Finding> {
    let nodes = match facts.nodes().await {
        Ok(nodes) => nodes,
        Err(e) => {
            return vec![Finding::new(
                "EKS007",
                Severity::Error,
                "API nodes",
                format!("cannot list nodes to check kubelet versions: {e}"),
                "grant `list` on `nodes` to the identity the tool runs as",
            )];
        }
    };
    // (who moves the nodes, kubelet version) → node names
    let mut groups: BTreeMap<(Manager, Version), Vec<String>> = BTreeMap::new();
    for node in nodes {
        if let Some(v) = node.version {
            groups
                .entry((node.manager.clone(), v))
                .or_default()
                .push(node.name.clone());
        }
    }
    let mut out = Vec::new();
    for ((manager, version), names) in groups {
        // Node groups the workflow upgrades move with every hop, Fargate nodes take each hop's
        // version as their pods restart, and NodePools the workflow waits for reach each hop
        // before the next: only the first hop can leave them behind. (A Karpenter pool on fixed
        // AMIs does not move; EKS015 judges it against every hop.) Every other node stays where
        // it is, so it must hold against every hop.
        let moves_with_hops = match manager {
            Manager::Nodegroup(_) => facts.coverage.nodegroups,
            Manager::Fargate => true,
            Manager::Karpenter(_) | Manager::AutoMode(_) => facts.coverage.node_pools,
            Manager::Hybrid | Manager::SelfManaged(_) => false,
        };
        let hops = if moves_with_hops {
            &facts.hops[..facts.hops.len().min(1)]
        } else {
            facts.hops
        };
        let Some(bad) = first_violation(version, hops) else {
            continue;
        };
        let oldest = Version::new(bad.major, bad.minor.saturating_sub(allowed_lag(version)));
        let (object, remedy) = match &manager {
            Manager::Nodegroup(ng) => (
                format!("Nodegroup {ng}"),
                format!("upgrade node group `{ng}` to {} first", facts.current),
            ),
            Manager::Fargate => (
                "Fargate nodes".to_string(),
                "restart the Fargate pods so they start on the current version".to_string(),
            ),
            Manager::Karpenter(pool) => (
                format!("NodePool {pool}"),
                format!(
                    "let Karpenter replace NodePool `{pool}`'s nodes at {} first (its EC2NodeClass must select an AMI for that version, such as `alias: al2023@latest`), or stop the run at an earlier target",
                    facts.current
                ),
            ),
            Manager::AutoMode(pool) => (
                format!("NodePool {pool}"),
                format!(
                    "let EKS Auto Mode replace NodePool `{pool}`'s nodes at {} first (its disruption budget must allow drift), or stop the run at an earlier target",
                    facts.current
                ),
            ),
            Manager::Hybrid | Manager::SelfManaged(_) => (
                manager.to_string(),
                format!(
                    "replace these nodes with ones at {oldest} or newer before the upgrade, or stop the run at an earlier target"
                ),
            ),
        };
        let shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
        let last = hops.last().copied().unwrap_or(bad);
        out.push(Finding::new(
            "EKS007",
            Severity::Error,
            object,
            format!(
                "kubelet {version} on {} node{} ({}{}) is not supported by a {bad} control plane{}: kubelets may trail the API server by {} minor versions at most",
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                shown.join(", "),
                if names.len() > shown.len() { ", …" } else { "" },
                if last != bad && !moves_with_hops {
                    format!(", and this run goes on to {last} without moving them")
                } else {
                    String::new()
                },
                allowed_lag(version)
            ),
            remedy,
        ));
    }
    out
}

async fn kube_proxy(facts: &Facts<'_>) -> Vec<Finding> {
    let ds = match Api::<DaemonSet>::namespaced(facts.conn.kube.clone(), "kube-system")
        .get_opt("kube-proxy")
        .await
    {
        Ok(Some(ds)) => ds,
        Ok(None) => return Vec::new(),
        Err(e) => {
            return vec![Finding::new(
                "EKS008",
                Severity::Warning,
                "DaemonSet kube-system/kube-proxy",
                format!(
                    "cannot read kube-proxy to check its version: {}",
                    crate::errors::kube(&e)
                ),
                "grant `get` on `daemonsets` in kube-system",
            )];
        }
    };
    let image = ds
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|p| p.containers.into_iter().find(|c| c.name == "kube-proxy"))
        .and_then(|c| c.image)
        .unwrap_or_default();
    let Some(version) = minor_of(&image) else {
        return Vec::new();
    };
    let managed = facts.addons.iter().any(|a| a.name == "kube-proxy") && facts.coverage.addons;
    let mut checked = vec![facts.current];
    checked.extend_from_slice(if managed {
        &facts.hops[..facts.hops.len().min(1)]
    } else {
        facts.hops
    });
    let Some(bad) = first_violation(version, &checked) else {
        return Vec::new();
    };
    vec![
        Finding::new(
            "EKS008",
            Severity::Error,
            "DaemonSet kube-system/kube-proxy",
            format!(
                "kube-proxy {version} (image `{image}`) is not supported against a {bad} API server: it may not be newer, nor more than {} minor versions older",
                allowed_lag(version)
            ),
            if managed {
                "update the kube-proxy add-on to the cluster's version before the run".to_string()
            } else {
                "install kube-proxy as an EKS add-on, or add `upgradeAddons` to the workflow, so it moves with every hop".to_string()
            },
        )
        .at(Some("kube-system"), "kube-proxy"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_ipvs_mode_in_json_and_yaml() {
        assert!(selects_ipvs(r#"{"mode":"ipvs","ipvs":{"scheduler":"rr"}}"#));
        assert!(!selects_ipvs(r#"{"mode":"iptables"}"#));
        assert!(selects_ipvs(
            "kind: KubeProxyConfiguration\nmode: \"ipvs\"\n"
        ));
        assert!(selects_ipvs("mode: ipvs"));
        assert!(!selects_ipvs("mode: \"\"\nipvs:\n  scheduler: rr"));
    }

    #[test]
    fn three_minors_of_lag_are_allowed_and_never_newer() {
        let v = |m| Version::new(1, m);
        assert_eq!(first_violation(v(30), &[v(31), v(32), v(33)]), None);
        assert_eq!(
            first_violation(v(30), &[v(31), v(32), v(33), v(34)]),
            Some(v(34))
        );
        assert_eq!(first_violation(v(24), &[v(25), v(26), v(27)]), Some(v(27)));
        assert_eq!(first_violation(v(33), &[v(32)]), Some(v(32)));
    }
}
