//! Rollback-readiness insights (`ROLLBACK_READINESS`), derived from the emulated cluster: what
//! would break if the control plane went back to N-1 now. They exist while a rollback is
//! possible (after an in-place upgrade, within the 7-day window) and, as on EKS, are refreshed
//! on a schedule (daily), by StartInsightsRefresh and whenever a rollback is requested, not on
//! every read: a reader sees them as of `lastRefreshTime`.
//!
//! The checks: kubelet version skew (managed node groups, self-managed and Fargate nodes; Auto
//! Mode nodes are EKS's to roll back), kube-proxy version skew, add-on version compatibility,
//! API usage (objects of group/versions N-1 does not serve), cluster health, and on Auto Mode
//! the disruption controls that will hold the node rollback back (a warning, never a block).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::insights::Insight;
use super::rollback::window_target;
use super::state::{Eks, State, epoch_now};
use crate::kube::selector::Selector;
use crate::sim::nodes::{self, COMPUTE_TYPE_LABEL, DO_NOT_DISRUPT, NODEGROUP_LABEL};
use eks_upgrade_core::types::Version;
use eks_upgrade_core::types::version::minor_of;

const CATEGORY: &str = "ROLLBACK_READINESS";
/// How often EKS refreshes insights on its own (emulated time).
const DAILY: f64 = 86_400.0;

pub const KUBELET: &str = "Kubelet version skew";
pub const KUBE_PROXY: &str = "Kube-proxy version skew";
pub const ADDONS: &str = "EKS add-on version compatibility";
pub const API_USAGE: &str = "Kubernetes API usage";
pub const HEALTH: &str = "Cluster health issues";
pub const DISRUPTION: &str = "Auto Mode node disruption controls";

/// The insights as of one refresh.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub target: Version,
    /// Emulated seconds since the sandbox started, for the daily refresh.
    pub emulated_at: f64,
    pub insights: Vec<Insight>,
}

/// Recomputes the insights now (or drops them when no rollback is possible), keeping each
/// insight's last transition time while its status stays the same.
pub fn refresh(eks: &Eks, state: &mut State) {
    let Some(target) = window_target(eks, state) else {
        state.rollback_insights = None;
        return;
    };
    let now = epoch_now();
    let before: BTreeMap<String, (String, f64)> = state
        .rollback_insights
        .iter()
        .flat_map(|s| &s.insights)
        .map(|i| {
            let since = i.refreshed.map(|(_, t)| t).unwrap_or(now);
            (i.id.clone(), (i.status.clone(), since))
        })
        .collect();
    let mut insights = compute(eks, state, target);
    for i in &mut insights {
        let since = match before.get(&i.id) {
            Some((status, since)) if *status == i.status => *since,
            _ => now,
        };
        i.refreshed = Some((now, since));
    }
    state.rollback_insights = Some(Snapshot {
        target,
        emulated_at: eks.emulated_now(),
        insights,
    });
}

/// Brings the snapshot in line with the window before a read: first computed after an upgrade,
/// refreshed daily, gone once no rollback is possible.
pub fn keep_current(eks: &Eks, state: &mut State) {
    let target = window_target(eks, state);
    let stale = match (&state.rollback_insights, target) {
        (None, None) => false,
        (Some(s), Some(t)) => s.target != t || eks.emulated_now() - s.emulated_at >= DAILY,
        _ => true,
    };
    if stale {
        refresh(eks, state);
    }
}

fn resource(status: &str, reason: String, uri: Option<String>, arn: Option<&str>) -> Value {
    let mut r = json!({ "insightStatus": { "status": status, "reason": reason } });
    if let Some(u) = uri {
        r["kubernetesResourceUri"] = json!(u);
    }
    if let Some(a) = arn {
        r["arn"] = json!(a);
    }
    r
}

/// An insight of the category, ERROR with `resources` when there are any, else PASSING.
fn verdict(
    name: &str,
    target: Version,
    resources: Vec<Value>,
    error: String,
    fine: &str,
) -> Insight {
    let (status, reason) = if resources.is_empty() {
        ("PASSING", fine.to_string())
    } else {
        ("ERROR", error)
    };
    let mut i = Insight::new(name, CATEGORY, target, status, reason);
    i.resources = resources;
    i.links = Some(json!({
        "EKS cluster version rollback": "https://docs.aws.amazon.com/eks/latest/userguide/rollback-cluster.html",
    }));
    i
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Every check, as of now.
fn compute(eks: &Eks, state: &State, target: Version) -> Vec<Insight> {
    let mut out = vec![
        kubelet(eks, state, target),
        kube_proxy(eks, state, target),
        addons(eks, state, target),
        api_usage(eks, target),
        health(eks, state, target),
    ];
    if state.cluster.compute.is_some() {
        out.push(disruption(eks, target));
    }
    for i in &mut out {
        i.description = description(&i.name, target);
        i.recommendation = recommendation(&i.name, target);
    }
    out
}

fn description(name: &str, target: Version) -> String {
    match name {
        KUBELET => format!("Checks that no kubelet of a managed node group, self-managed node or Fargate pod is newer than Kubernetes v{target}, the version a rollback returns to; the version skew policy forbids a kubelet newer than the API server."),
        KUBE_PROXY => format!("Checks that kube-proxy, as an EKS add-on or a DaemonSet, is not newer than Kubernetes v{target}."),
        ADDONS => format!("Checks that every installed EKS add-on version is supported on Kubernetes v{target}."),
        API_USAGE => format!("Checks for stored objects of API versions that Kubernetes v{target} does not serve."),
        HEALTH => "Checks for control-plane health issues that prevent a version rollback.".to_string(),
        _ => "Checks for NodePool disruption budgets and do-not-disrupt annotations that hold back the rollback of Auto Mode nodes.".to_string(),
    }
}

fn recommendation(name: &str, target: Version) -> String {
    match name {
        KUBELET => format!("Roll managed node groups back with UpdateNodegroupVersion to {target}, replace self-managed nodes with nodes at {target}, and delete Fargate pods after the rollback so that they start again at {target}; or pass force."),
        KUBE_PROXY => format!("Update the kube-proxy add-on to a version for Kubernetes {target} before rolling back."),
        ADDONS => format!("Update each listed add-on with UpdateAddon to a version DescribeAddonVersions lists for Kubernetes {target} before rolling back."),
        API_USAGE => format!("Remove or migrate the listed objects to API versions Kubernetes {target} serves, or pass force if they can be lost."),
        HEALTH => "Resolve the cluster health issues DescribeCluster reports before rolling back.".to_string(),
        _ => "Allow disruption (a NodePool budget above 0, no karpenter.sh/do-not-disrupt annotation) so that Auto Mode can roll nodes back before the rollback times out.".to_string(),
    }
}

fn kubelet(eks: &Eks, state: &State, target: Version) -> Insight {
    let mut resources = Vec::new();
    for ng in state.nodegroups.values().filter(|ng| ng.version > target) {
        let reason = format!(
            "Node group {} runs Kubernetes {}, newer than {target}.",
            ng.name, ng.version
        );
        resources.push(resource("ERROR", reason, None, Some(&ng.arn)));
    }
    let store = &eks.world.store;
    let (Some(nrt), Some(prt)) = (
        store.resource("", "v1", "nodes"),
        store.resource("", "v1", "pods"),
    ) else {
        return verdict(KUBELET, target, resources, String::new(), "");
    };
    for node in store.list(&nrt, None, &Selector::default()).0 {
        let labels = node
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or(Value::Null);
        let compute = labels.get(COMPUTE_TYPE_LABEL).and_then(Value::as_str);
        // Managed node groups are judged by their version above; Auto Mode nodes EKS rolls
        // back itself.
        if labels.get(NODEGROUP_LABEL).is_some() || compute == Some("auto") {
            continue;
        }
        let Some(version) = nodes::node_version(&node).filter(|v| *v > target) else {
            continue;
        };
        let name = str_at(&node, "/metadata/name");
        let kubelet = str_at(&node, "/status/nodeInfo/kubeletVersion");
        if compute == Some("fargate") {
            let field =
                Selector::parse(None, Some(&format!("spec.nodeName={name}"))).unwrap_or_default();
            for pod in store.list(&prt, None, &field).0 {
                let (ns, pod) = (
                    str_at(&pod, "/metadata/namespace"),
                    str_at(&pod, "/metadata/name"),
                );
                let reason =
                    format!("Fargate pod {ns}/{pod} runs kubelet {kubelet}, newer than {target}.");
                resources.push(resource(
                    "ERROR",
                    reason,
                    Some(format!("/api/v1/namespaces/{ns}/pods/{pod}")),
                    None,
                ));
            }
        } else {
            let reason = format!(
                "Node {name} runs kubelet {kubelet} (Kubernetes {version}), newer than {target}."
            );
            resources.push(resource(
                "ERROR",
                reason,
                Some(format!("/api/v1/nodes/{name}")),
                None,
            ));
        }
    }
    let error = format!(
        "{} node group(s), node(s) or Fargate pod(s) run a kubelet newer than Kubernetes v{target}.",
        resources.len()
    );
    verdict(
        KUBELET,
        target,
        resources,
        error,
        &format!("Every kubelet this check covers runs Kubernetes v{target} or older."),
    )
}

fn kube_proxy(eks: &Eks, state: &State, target: Version) -> Insight {
    let mut resources = Vec::new();
    if let Some(addon) = state.addons.get("kube-proxy") {
        if minor_of(&addon.version).is_some_and(|v| v > target) {
            let reason = format!(
                "The kube-proxy add-on is at {}, newer than {target}.",
                addon.version
            );
            resources.push(resource("ERROR", reason, None, Some(&addon.arn)));
        }
    } else if let Some(rt) = eks.world.store.resource("apps", "v1", "daemonsets")
        && let Ok(ds) = eks.world.store.get(&rt, Some("kube-system"), "kube-proxy")
    {
        let image = str_at(&ds, "/spec/template/spec/containers/0/image");
        if minor_of(image).is_some_and(|v| v > target) {
            let reason = format!("The kube-proxy DaemonSet runs {image}, newer than {target}.");
            let uri = "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy".to_string();
            resources.push(resource("ERROR", reason, Some(uri), None));
        }
    }
    let error = format!("kube-proxy is newer than Kubernetes v{target}.");
    verdict(
        KUBE_PROXY,
        target,
        resources,
        error,
        &format!("kube-proxy runs Kubernetes v{target} or older."),
    )
}

fn addons(eks: &Eks, state: &State, target: Version) -> Insight {
    let catalog = eks.world.scenario.addon_catalog();
    let mut resources = Vec::new();
    let mut details = Vec::new();
    for addon in state.addons.values() {
        let versions: Vec<&str> = catalog
            .iter()
            .filter(|e| e.name == addon.name)
            .flat_map(|e| &e.versions)
            .filter(|v| v.compatible.contains(&target))
            .map(|v| v.version.as_str())
            .collect();
        if !versions.contains(&addon.version.as_str()) {
            let reason = format!(
                "Add-on {} version {} is not supported on Kubernetes {target}.",
                addon.name, addon.version
            );
            resources.push(resource("ERROR", reason, None, Some(&addon.arn)));
            details.push(json!({ "name": addon.name, "compatibleVersions": versions }));
        }
    }
    let error = format!(
        "{} EKS add-on(s) run a version not supported on Kubernetes v{target}.",
        resources.len()
    );
    let mut i = verdict(
        ADDONS,
        target,
        resources,
        error,
        &format!("Every EKS add-on runs a version supported on Kubernetes v{target}."),
    );
    i.addon_compatibility = details;
    i
}

fn api_usage(eks: &Eks, target: Version) -> Insight {
    let store = &eks.world.store;
    let mut resources = Vec::new();
    for r in eks.world.scenario.spec.resources.iter() {
        if r.served_since.is_none_or(|since| since <= target) {
            continue;
        }
        let Some(rt) = store.resource(&r.group, &r.version, &r.plural) else {
            continue;
        };
        for obj in store.list(&rt, None, &Selector::default()).0 {
            let name = str_at(&obj, "/metadata/name");
            let uri = match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
                Some(ns) => format!(
                    "/apis/{}/{}/namespaces/{ns}/{}/{name}",
                    r.group, r.version, r.plural
                ),
                None => format!("/apis/{}/{}/{}/{name}", r.group, r.version, r.plural),
            };
            let reason = format!(
                "{}/{} {} is not served by Kubernetes {target}.",
                r.group, r.version, r.kind
            );
            resources.push(resource("ERROR", reason, Some(uri), None));
        }
    }
    let error = format!(
        "{} object(s) use API versions that Kubernetes v{target} does not serve.",
        resources.len()
    );
    verdict(
        API_USAGE,
        target,
        resources,
        error,
        &format!("No stored objects use API versions that Kubernetes v{target} does not serve."),
    )
}

fn health(eks: &Eks, state: &State, target: Version) -> Insight {
    let spec = &eks.world.scenario.spec;
    let resources: Vec<Value> = spec
        .cluster
        .health_issues
        .iter()
        .map(|i| {
            let reason = format!("{}: {}", i.code, i.message);
            resource("ERROR", reason, None, Some(&state.cluster.arn))
        })
        .collect();
    let error = format!("The cluster has {} health issue(s).", resources.len());
    verdict(
        HEALTH,
        target,
        resources,
        error,
        "The cluster has no health issues.",
    )
}

fn disruption(eks: &Eks, target: Version) -> Insight {
    let store = &eks.world.store;
    let mut resources = Vec::new();
    if let Some(rt) = store.resource("karpenter.sh", "v1", "nodepools") {
        for pool in store.list(&rt, None, &Selector::default()).0 {
            let zero = pool
                .pointer("/spec/disruption/budgets")
                .and_then(Value::as_array)
                .is_some_and(|b| {
                    b.iter().any(|b| {
                        b.get("nodes").and_then(Value::as_str) == Some("0")
                            && b.get("schedule").is_none()
                    })
                });
            if zero {
                let name = str_at(&pool, "/metadata/name");
                let reason = format!("NodePool {name} has a disruption budget of 0 nodes.");
                resources.push(resource(
                    "WARNING",
                    reason,
                    Some(format!("/apis/karpenter.sh/v1/nodepools/{name}")),
                    None,
                ));
            }
        }
    }
    let annotated = |o: &Value| {
        o.pointer("/metadata/annotations")
            .and_then(|a| a.get(DO_NOT_DISRUPT))
            .and_then(Value::as_str)
            == Some("true")
    };
    if let Some(rt) = store.resource("", "v1", "nodes") {
        for node in crate::sim::automode::drifted(store, target) {
            let Ok(obj) = store.get(&rt, None, &node) else {
                continue;
            };
            if annotated(&obj) {
                let reason = format!("Node {node} is annotated {DO_NOT_DISRUPT}.");
                resources.push(resource(
                    "WARNING",
                    reason,
                    Some(format!("/api/v1/nodes/{node}")),
                    None,
                ));
            }
            if let Some(prt) = store.resource("", "v1", "pods") {
                let field = Selector::parse(None, Some(&format!("spec.nodeName={node}")))
                    .unwrap_or_default();
                for pod in store
                    .list(&prt, None, &field)
                    .0
                    .iter()
                    .filter(|p| annotated(p))
                {
                    let (ns, name) = (
                        str_at(pod, "/metadata/namespace"),
                        str_at(pod, "/metadata/name"),
                    );
                    let reason = format!("Pod {ns}/{name} is annotated {DO_NOT_DISRUPT}.");
                    resources.push(resource(
                        "WARNING",
                        reason,
                        Some(format!("/api/v1/namespaces/{ns}/pods/{name}")),
                        None,
                    ));
                }
            }
        }
    }
    let mut i = verdict(
        DISRUPTION,
        target,
        Vec::new(),
        String::new(),
        "No disruption controls hold back the rollback of Auto Mode nodes.",
    );
    if !resources.is_empty() {
        i.status = "WARNING".into();
        i.reason = format!(
            "{} disruption control(s) will hold Auto Mode nodes at their version until they are lifted or the rollback times out.",
            resources.len()
        );
        i.resources = resources;
    }
    i
}
