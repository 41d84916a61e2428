//! One look at the cluster's health: unready nodes, unavailable workloads, kube-system pods that
//! are not running and crash-looping pods counted per owner (pods get new names on every node
//! replacement; their owner keeps its name). The baseline taken in `prepare` is one of these;
//! a health check fails only on what is new or worse than in it. Nodes are also counted per
//! manager (`managers`): a node's name does not outlive its replacement, its manager does.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};

use super::managers::{self, ManagerCount, Tally};
use crate::checks::list;
use crate::cloud::nodes::NodeInfo;

/// Something unhealthy, with a score of how bad (unavailable replicas, or 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub detail: String,
    pub severity: u32,
}

impl Problem {
    /// The problem's identity across looks: its kind and object, not its detail.
    pub fn id(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// The cluster's health at a moment: the problems found and what was checked.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub problems: Vec<Problem>,
    pub nodes: usize,
    pub workloads: usize,
    pub kube_system_pods: usize,
    /// Nodes per manager, sorted by its label. Journals written before the tool counted them
    /// have none, and a health check then has no capacity to compare.
    #[serde(default)]
    pub managers: Vec<ManagerCount>,
}

fn problem(
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    detail: String,
    severity: u32,
) -> Problem {
    Problem {
        kind: kind.into(),
        namespace: namespace.map(str::to_string),
        name: name.into(),
        detail,
        severity,
    }
}

/// Reads the cluster's workload health. `namespaces` limits the workloads looked at. Every
/// list is paged, so a large cluster costs pages, not one response the size of the cluster.
pub async fn snapshot(
    kube: kube::Client,
    namespaces: Option<&[String]>,
) -> Result<Snapshot, kube::Error> {
    let mut s = Snapshot::default();
    let in_scope = |ns: Option<&str>| {
        namespaces.is_none_or(|list| ns.is_some_and(|n| list.iter().any(|x| x == n)))
    };
    let all = ListParams::default;

    let mut tally = Tally::default();
    list::each(&Api::<Node>::all(kube.clone()), all(), |node| {
        s.nodes += 1;
        let node = NodeInfo::from_node(node);
        // A node on its way out, or one still joining (Karpenter's `unregistered` taint), is a
        // replacement in flight: the per-manager count judges it, not its name.
        if !node.ready && !node.replacing {
            s.problems
                .push(problem("Node", None, &node.name, "not Ready".into(), 1));
        }
        tally.add(&node);
    })
    .await?;
    s.managers = tally.counts();
    s.problems.extend(managers::stuck_launches(&kube).await);
    pods(&kube, &in_scope, &mut s).await?;
    list::each(&Api::<Deployment>::all(kube.clone()), all(), |d| {
        let want = d.spec.as_ref().and_then(|sp| sp.replicas).unwrap_or(1);
        let have = d.status.as_ref().and_then(|st| st.available_replicas);
        availability(
            &mut s,
            &in_scope,
            "Deployment",
            &d.metadata,
            want,
            have,
            "replicas available",
        );
    })
    .await?;
    list::each(&Api::<StatefulSet>::all(kube.clone()), all(), |st| {
        let want = st.spec.as_ref().and_then(|sp| sp.replicas).unwrap_or(1);
        let have = st.status.as_ref().and_then(|x| x.ready_replicas);
        availability(
            &mut s,
            &in_scope,
            "StatefulSet",
            &st.metadata,
            want,
            have,
            "replicas ready",
        );
    })
    .await?;
    list::each(&Api::<DaemonSet>::all(kube), all(), |ds| {
        let want = ds.status.as_ref().map_or(0, |x| x.desired_number_scheduled);
        let have = ds.status.as_ref().and_then(|x| x.number_available);
        availability(
            &mut s,
            &in_scope,
            "DaemonSet",
            &ds.metadata,
            want,
            have,
            "pods available",
        );
    })
    .await?;
    Ok(s)
}

/// Counts a workload in scope, and records it as a problem when fewer than `want` of its
/// replicas (or pods) are `what`.
fn availability(
    s: &mut Snapshot,
    in_scope: &impl Fn(Option<&str>) -> bool,
    kind: &str,
    meta: &ObjectMeta,
    want: i32,
    have: Option<i32>,
    what: &str,
) {
    let ns = meta.namespace.as_deref();
    if !in_scope(ns) {
        return;
    }
    s.workloads += 1;
    let want = want.max(0) as u32;
    let have = have.unwrap_or(0).max(0) as u32;
    if have < want {
        let name = meta.name.as_deref().unwrap_or("");
        s.problems.push(problem(
            kind,
            ns,
            name,
            format!("{have}/{want} {what}"),
            want - have,
        ));
    }
}

/// Why a pod's first waiting container waits (`CrashLoopBackOff`, `ImagePullBackOff`, …).
fn waiting_reason(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
}

/// One pass over every pod: kube-system pods that are not running, and crash-looping pods
/// elsewhere, counted per owner. Pods come and go with new names on every node replacement, so
/// a pod's own name cannot be compared with the baseline, but "3 pods of Deployment shop/web
/// crash-loop" can.
async fn pods(
    kube: &kube::Client,
    in_scope: &impl Fn(Option<&str>) -> bool,
    s: &mut Snapshot,
) -> Result<(), kube::Error> {
    let mut system = Vec::new();
    let mut by_owner: BTreeMap<(String, String), (u32, String)> = BTreeMap::new();
    list::each(
        &Api::<Pod>::all(kube.clone()),
        ListParams::default(),
        |pod| {
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            if ns == "kube-system" {
                s.kube_system_pods += 1;
                let phase = pod
                    .status
                    .as_ref()
                    .and_then(|st| st.phase.clone())
                    .unwrap_or_default();
                let ready = pod
                    .status
                    .as_ref()
                    .and_then(|st| st.container_statuses.as_ref())
                    .is_some_and(|cs| cs.iter().all(|c| c.ready));
                if phase != "Succeeded" && !(phase == "Running" && ready) {
                    let why = waiting_reason(&pod).unwrap_or(phase);
                    let name = pod.metadata.name.as_deref().unwrap_or("");
                    system.push(problem(
                        "Pod",
                        Some("kube-system"),
                        name,
                        format!("not running: {why}"),
                        1,
                    ));
                }
                return;
            }
            if !in_scope(Some(&ns)) {
                return;
            }
            let Some(reason) =
                waiting_reason(&pod).filter(|r| r == "CrashLoopBackOff" || r.ends_with("Error"))
            else {
                return;
            };
            let owner = pod
                .metadata
                .owner_references
                .as_ref()
                .and_then(|o| o.first())
                .map(|o| match o.kind.as_str() {
                    // A ReplicaSet is named after its Deployment plus a template hash that changes
                    // with every rollout.
                    "ReplicaSet" => format!(
                        "Deployment/{}",
                        o.name.rsplit_once('-').map_or(o.name.as_str(), |(d, _)| d)
                    ),
                    kind => format!("{kind}/{}", o.name),
                })
                .unwrap_or_else(|| format!("Pod/{}", pod.metadata.name.as_deref().unwrap_or("")));
            by_owner.entry((ns, owner)).or_insert((0, reason)).0 += 1;
        },
    )
    .await?;
    s.problems.extend(system);
    for ((ns, owner), (count, reason)) in by_owner {
        let (kind, name) = owner.split_once('/').unwrap_or(("Pod", owner.as_str()));
        s.problems.push(problem(
            &format!("pods of {kind}"),
            Some(&ns),
            name,
            format!("{count} crash-looping ({reason})"),
            count,
        ));
    }
    Ok(())
}

/// Problems in `now` that are new or worse than in `baseline`.
pub fn regressions(baseline: &Snapshot, now: &[Problem]) -> Vec<Problem> {
    let before: BTreeMap<String, u32> = baseline
        .problems
        .iter()
        .map(|p| (p.id(), p.severity))
        .collect();
    now.iter()
        .filter(|p| before.get(&p.id()).is_none_or(|was| p.severity > *was))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_baseline_written_before_managers_were_counted_still_reads() {
        let old = serde_json::json!({
            "problems": [
                { "kind": "Node", "namespace": null, "name": "ip-10-0-1-1", "detail": "not Ready", "severity": 1 },
            ],
            "nodes": 5,
            "workloads": 3,
            "kubeSystemPods": 8,
        });
        let snap: Snapshot = serde_json::from_value(old).expect("an old baseline reads");
        assert_eq!(snap.nodes, 5);
        assert_eq!(snap.problems[0].id(), "Node ip-10-0-1-1");
        assert!(snap.managers.is_empty());
        // And the new field goes out and comes back.
        let mut snap = snap;
        snap.managers.push(ManagerCount {
            manager: "node group `general`".into(),
            nodes: 3,
            ready: 2,
            replacing: 1,
            fixed_size: true,
        });
        let json = serde_json::to_value(&snap).expect("JSON");
        assert_eq!(json["managers"][0]["replacing"], 1);
        let back: Snapshot = serde_json::from_value(json).expect("reads back");
        assert_eq!(back.managers, snap.managers);
    }

    #[test]
    fn a_problem_gone_or_no_worse_is_not_a_regression() {
        let p = |name: &str, severity| {
            problem("Deployment", Some("shop"), name, String::new(), severity)
        };
        let baseline = Snapshot {
            problems: vec![p("web", 1), p("api", 2)],
            ..Snapshot::default()
        };
        let found = regressions(&baseline, &[p("web", 1), p("api", 3), p("db", 1)]);
        let ids: Vec<String> = found.iter().map(Problem::id).collect();
        assert_eq!(ids, ["Deployment shop/api", "Deployment shop/db"]);
    }
}
