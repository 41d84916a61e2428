//! What holds NodePool nodes back from the hop's version, worked out from objects (the
//! controller's Deployment, EC2NodeClass status, budgets, annotations) rather than Events, so a
//! real cluster and the sandbox give the same answer.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;

use super::{Look, PoolLook};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ListParams};

use crate::checks::workloads::selects;
use crate::cloud::karpenter::{self, PodOn, failing};
use crate::cloud::karpenter_budget::allowed;
use crate::steps::StepCtx;
use crate::types::{HumanDuration, Version};

/// One reason nodes of a pool wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocker {
    /// The Karpenter controller has no available replica.
    ControllerDown {
        deployment: String,
    },
    /// The pool's EC2NodeClass resolves no AMI: nothing launches.
    NoAmi {
        class: String,
        why: String,
    },
    /// The pool's budgets allow no disruption for drift now.
    BudgetZero {
        budget: String,
    },
    NodesDoNotDisrupt {
        nodes: Vec<String>,
    },
    PodsDoNotDisrupt {
        pods: Vec<String>,
    },
    /// A PodDisruptionBudget allows no eviction of these pods on lagging nodes.
    Pdb {
        pdb: String,
        pods: Vec<String>,
    },
    /// Replacement NodeClaims failed to launch (`Launched` `False`), or the NodePool says its
    /// launches fail (`NodeRegistrationHealthy` `False`). Karpenter deletes a failed claim, so
    /// `claims` counts those the step saw across its looks.
    LaunchFailures {
        claims: usize,
        reason: String,
        message: String,
    },
}

/// Failed launches seen across looks, per NodePool: the claims go, the tally stays.
#[derive(Debug, Default)]
pub struct Launches {
    /// Claim name → (pool, reason, message).
    failed: BTreeMap<String, (String, String, String)>,
    /// Pool → its `NodeRegistrationHealthy` `False` reason and message, as last seen.
    unhealthy: BTreeMap<String, (String, String)>,
}

impl Launches {
    /// Adds what one look found in the pools of `scope`.
    pub fn note(&mut self, found: &Look, scope: &[&PoolLook]) {
        let in_scope = |pool: &str| scope.iter().any(|p| p.name == pool);
        for c in &found.karpenter.claims {
            let Some(pool) = c.pool.as_deref().filter(|p| in_scope(p)) else {
                continue;
            };
            if let Some(f) = failing(&c.conditions, "Launched") {
                self.failed.insert(
                    c.name.clone(),
                    (pool.to_string(), f.reason.clone(), f.message.clone()),
                );
            }
        }
        for p in found.karpenter.pools.iter().filter(|p| in_scope(&p.name)) {
            match failing(&p.conditions, "NodeRegistrationHealthy") {
                Some(f) => {
                    self.unhealthy
                        .insert(p.name.clone(), (f.reason.clone(), f.message.clone()));
                }
                None => {
                    self.unhealthy.remove(&p.name);
                }
            }
        }
    }

    /// One blocker per pool that had failed launches or says it has.
    fn blockers(&self) -> Vec<(String, Blocker)> {
        let mut by_pool: BTreeMap<&str, (usize, &str, &str)> = BTreeMap::new();
        for (pool, reason, message) in self.failed.values() {
            let e = by_pool.entry(pool).or_insert((0, reason, message));
            e.0 += 1;
            (e.1, e.2) = (reason, message);
        }
        for (pool, (reason, message)) in &self.unhealthy {
            by_pool.entry(pool).or_insert((0, reason, message));
        }
        by_pool
            .into_iter()
            .map(|(pool, (claims, reason, message))| {
                (
                    pool.to_string(),
                    Blocker::LaunchFailures {
                        claims,
                        reason: reason.to_string(),
                        message: message.to_string(),
                    },
                )
            })
            .collect()
    }
}

impl Blocker {
    fn text(&self) -> String {
        match self {
            Blocker::ControllerDown { deployment } => {
                format!("the Karpenter controller `{deployment}` has no available replica")
            }
            Blocker::NoAmi { class, why } => {
                format!("EC2NodeClass `{class}` resolves no AMI ({why})")
            }
            Blocker::BudgetZero { budget } => {
                format!("held by its disruption budget {budget}")
            }
            Blocker::NodesDoNotDisrupt { nodes } => {
                format!("do-not-disrupt nodes {}", names(nodes))
            }
            Blocker::PodsDoNotDisrupt { pods } => format!("do-not-disrupt pods {}", names(pods)),
            Blocker::Pdb { pdb, pods } => format!(
                "PodDisruptionBudget `{pdb}`, which allows no eviction of {}",
                names(pods)
            ),
            Blocker::LaunchFailures {
                claims,
                reason,
                message,
            } => {
                let what = match claims {
                    0 => "its replacements fail to launch".to_string(),
                    1 => "1 replacement NodeClaim failed to launch".to_string(),
                    n => format!("{n} replacement NodeClaims failed to launch"),
                };
                let why = if message.is_empty() {
                    format!("`{reason}`")
                } else {
                    format!("`{reason}`: {message}")
                };
                format!("{what} ({why})")
            }
        }
    }

    fn hint(&self) -> &'static str {
        match self {
            Blocker::ControllerDown { .. } => {
                "bring the Karpenter controller back (`kubectl get pods -A -l app.kubernetes.io/name=karpenter`)"
            }
            Blocker::NoAmi { .. } => {
                "point the EC2NodeClass at an AMI for this version (`alias: al2023@latest`) and check `kubectl get ec2nodeclasses`"
            }
            Blocker::BudgetZero { .. } => {
                "raise the NodePool's budget for `Drifted` (such as `{ nodes: \"10%\", reasons: [Drifted] }`) or wait for its schedule to open"
            }
            Blocker::NodesDoNotDisrupt { .. } => {
                "remove the `karpenter.sh/do-not-disrupt` annotation from the nodes: it holds a node whatever the NodePool says"
            }
            Blocker::PodsDoNotDisrupt { .. } => {
                "remove the `karpenter.sh/do-not-disrupt` annotation from the pods, or set `terminationGracePeriod` on the NodePool"
            }
            Blocker::Pdb { .. } => {
                "a PodDisruptionBudget that allows no eviction holds its pods' nodes: scale the workload up or relax the budget, or set `terminationGracePeriod` on the NodePool"
            }
            Blocker::LaunchFailures { .. } => {
                "see why with `kubectl get nodeclaims` and the NodePool's `NodeRegistrationHealthy` condition: EC2 capacity and quotas, the subnets' free addresses and the node role decide whether a launch succeeds"
            }
        }
    }
}

fn names(items: &[String]) -> String {
    let mut text = items
        .iter()
        .take(5)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > 5 {
        text.push_str(&format!(" and {} more", items.len() - 5));
    }
    text
}

/// Karpenter pools in `scope` whose class resolves no AMI.
pub fn without_ami(found: &Look, scope: &[&PoolLook]) -> Vec<(String, Blocker)> {
    scope
        .iter()
        .filter(|p| !p.auto_mode)
        .filter_map(|p| {
            let pool = found.karpenter.pools.iter().find(|x| x.name == p.name)?;
            let class = found.karpenter.class(&pool.class.name)?;
            let why = match failing(&class.conditions, "AMIsReady") {
                Some(c) => format!("`AMIsReady` `False`, `{}`", c.reason),
                None if class.amis.is_empty() => "no AMI in its status".to_string(),
                None => return None,
            };
            Some((
                p.name.clone(),
                Blocker::NoAmi {
                    class: class.name.clone(),
                    why,
                },
            ))
        })
        .collect()
}

/// Every blocker of the pools in `scope` that are not at `hop`.
pub async fn diagnose(
    ctx: &StepCtx<'_>,
    found: &Look,
    scope: &[&PoolLook],
    hop: Version,
    launches: &Launches,
) -> Vec<(String, Blocker)> {
    let lagging: Vec<&PoolLook> = scope.iter().copied().filter(|p| !p.done(hop)).collect();
    let mut out = without_ami(found, &lagging);
    out.extend(
        launches
            .blockers()
            .into_iter()
            .filter(|(pool, _)| lagging.iter().any(|p| &p.name == pool)),
    );
    if let Some(c) = found
        .karpenter
        .controller
        .as_ref()
        .filter(|c| c.available == 0)
    {
        for p in lagging.iter().filter(|p| !p.auto_mode) {
            out.push((
                p.name.clone(),
                Blocker::ControllerDown {
                    deployment: format!("{}/{}", c.namespace, c.name),
                },
            ));
        }
    }
    // Node → pool, for the lagging nodes whose pods' annotations count.
    let mut watched: BTreeMap<String, String> = BTreeMap::new();
    for p in &lagging {
        let object = found.karpenter.pools.iter().find(|x| x.name == p.name);
        if let Some(pool) = object {
            let behind = p.nodes.iter().filter(|n| n.version != Some(hop)).count();
            let not_ready = p.nodes.iter().filter(|n| !n.ready || n.replacing).count();
            let a = allowed(
                &pool.budgets,
                "Drifted",
                p.nodes.len(),
                not_ready,
                Utc::now(),
            );
            if a.nodes == 0 && behind > 0 {
                let budget = a.describe(&pool.budgets);
                out.push((p.name.clone(), Blocker::BudgetZero { budget }));
            }
        }
        let held: Vec<String> = p
            .nodes
            .iter()
            .filter(|n| n.version != Some(hop) && n.do_not_disrupt)
            .map(|n| n.name.clone())
            .collect();
        if !held.is_empty() {
            out.push((p.name.clone(), Blocker::NodesDoNotDisrupt { nodes: held }));
        }
        for n in p
            .nodes
            .iter()
            .filter(|n| n.version != Some(hop) && found.karpenter.pods_hold(&n.name))
        {
            watched.insert(n.name.clone(), p.name.clone());
        }
    }
    if !watched.is_empty() {
        // A failed list leaves these blockers out; the others still stand.
        let limit = crate::steps::health::LOOK_AT_LEAST;
        let kube = &ctx.conn.kube;
        let (pods, pdbs) = tokio::join!(
            tokio::time::timeout(limit, karpenter::running_pods_on(kube, &watched)),
            tokio::time::timeout(limit, blocking_pdbs(kube)),
        );
        let pods = pods.ok().and_then(Result::ok).unwrap_or_default();
        let pdbs = pdbs.ok().and_then(Result::ok).unwrap_or_default();
        out.extend(pod_blockers(&pods, &pdbs));
    }
    out
}

/// A PodDisruptionBudget that allows no eviction now (`status.disruptionsAllowed` 0).
#[derive(Debug, Clone)]
pub struct Blocking {
    pub namespace: String,
    pub name: String,
    pub selector: LabelSelector,
}

async fn blocking_pdbs(kube: &kube::Client) -> Result<Vec<Blocking>, kube::Error> {
    let mut out = Vec::new();
    crate::cloud::list::each(
        &Api::<PodDisruptionBudget>::all(kube.clone()),
        ListParams::default(),
        |pdb| {
            let allowed = pdb.status.as_ref().map_or(1, |s| s.disruptions_allowed);
            if let (0, Some(selector)) = (allowed, pdb.spec.and_then(|s| s.selector)) {
                out.push(Blocking {
                    namespace: pdb.metadata.namespace.unwrap_or_default(),
                    name: pdb.metadata.name.unwrap_or_default(),
                    selector,
                });
            }
        },
    )
    .await?;
    Ok(out)
}

/// Per pool: the do-not-disrupt pods, and each PodDisruptionBudget that allows no eviction of
/// pods on its lagging nodes.
pub fn pod_blockers(pods: &[PodOn], pdbs: &[Blocking]) -> Vec<(String, Blocker)> {
    let mut held: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut budgets: BTreeMap<(&str, String), Vec<String>> = BTreeMap::new();
    for p in pods {
        if p.do_not_disrupt {
            held.entry(&p.pool).or_default().push(p.id());
        }
        for b in pdbs
            .iter()
            .filter(|_| !p.daemon)
            .filter(|b| b.namespace == p.namespace && selects(&b.selector, &p.labels))
        {
            budgets
                .entry((&p.pool, format!("{}/{}", b.namespace, b.name)))
                .or_default()
                .push(p.id());
        }
    }
    let mut out: Vec<(String, Blocker)> = held
        .into_iter()
        .map(|(pool, mut pods)| {
            pods.sort();
            (pool.to_string(), Blocker::PodsDoNotDisrupt { pods })
        })
        .collect();
    out.extend(budgets.into_iter().map(|((pool, pdb), mut pods)| {
        pods.sort();
        (pool.to_string(), Blocker::Pdb { pdb, pods })
    }));
    out
}

/// The step's failure: each lagging pool with what holds it, then one `hint:` per kind of
/// blocker. `timeout` is `None` when the step gives up early because waiting cannot help.
pub fn message(
    blockers: &[(String, Blocker)],
    scope: &[&PoolLook],
    hop: Version,
    timeout: Option<HumanDuration>,
) -> String {
    let lagging: Vec<&&PoolLook> = scope.iter().filter(|p| !p.done(hop)).collect();
    let parts: Vec<String> = lagging
        .iter()
        .map(|p| {
            let why: Vec<String> = blockers
                .iter()
                .filter(|(pool, _)| *pool == p.name)
                .map(|(_, b)| b.text())
                .collect();
            if why.is_empty() {
                format!(
                    "{} (no blocker the tool can see: replacements slower than the timeout)",
                    p.line(hop)
                )
            } else {
                format!("{}, {}", p.line(hop), why.join(", "))
            }
        })
        .collect();
    let count = lagging.len();
    let head = format!(
        "{count} NodePool{} did not reach {hop}{}",
        if count == 1 { "" } else { "s" },
        match timeout {
            Some(t) => format!(" within {t}"),
            None => " and cannot".to_string(),
        }
    );
    let mut out = format!("{head}: {}", parts.join("; "));
    let mut hints: Vec<&str> = blockers.iter().map(|(_, b)| b.hint()).collect();
    if blockers.is_empty() {
        hints.push("check `kubectl get nodeclaims` and the NodePools' conditions; or give the step a longer `timeout`");
    }
    let mut seen = BTreeSet::new();
    for h in hints {
        if seen.insert(h) {
            out.push_str(&format!("\nhint: {h}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pool: &str, reason: &str, message: &str) -> (String, String, String) {
        (pool.into(), reason.into(), message.into())
    }

    #[test]
    fn do_not_disrupt_pods_and_pdbs_that_allow_no_eviction_are_named_per_pool() {
        let pod = |pool: &str, ns: &str, name: &str, app: &str, held: bool| PodOn {
            pool: pool.into(),
            namespace: ns.into(),
            name: name.into(),
            labels: [("app".to_string(), app.to_string())].into(),
            do_not_disrupt: held,
            daemon: false,
        };
        let pods = [
            pod("default", "shop", "web-1", "web", false),
            pod("default", "shop", "db-0", "db", true),
            pod("batch", "shop", "web-2", "web", false),
            pod("batch", "other", "web-3", "web", false),
            // A drain leaves DaemonSet pods: their budget holds no node.
            PodOn {
                daemon: true,
                ..pod("batch", "shop", "web-agent", "web", false)
            },
        ];
        let web = Blocking {
            namespace: "shop".into(),
            name: "web".into(),
            selector: LabelSelector {
                match_labels: Some([("app".to_string(), "web".to_string())].into()),
                ..LabelSelector::default()
            },
        };
        let texts: Vec<(String, String)> = pod_blockers(&pods, &[web])
            .into_iter()
            .map(|(pool, b)| (pool, b.text()))
            .collect();
        assert_eq!(
            texts,
            [
                (
                    "default".to_string(),
                    "do-not-disrupt pods `shop/db-0`".to_string()
                ),
                (
                    "batch".to_string(),
                    "PodDisruptionBudget `shop/web`, which allows no eviction of `shop/web-2`"
                        .to_string()
                ),
                (
                    "default".to_string(),
                    "PodDisruptionBudget `shop/web`, which allows no eviction of `shop/web-1`"
                        .to_string()
                ),
            ]
        );
    }

    #[test]
    fn failed_launches_are_counted_per_pool_after_their_claims_are_gone() {
        let mut l = Launches::default();
        l.failed
            .insert("default-a".into(), entry("default", "ICE", "no capacity"));
        l.failed
            .insert("default-b".into(), entry("default", "ICE", "no capacity"));
        l.unhealthy
            .insert("gpu".into(), ("LaunchFailed".into(), String::new()));
        let texts: Vec<(String, String)> = l
            .blockers()
            .into_iter()
            .map(|(pool, b)| (pool, b.text()))
            .collect();
        assert_eq!(
            texts,
            [
                (
                    "default".to_string(),
                    "2 replacement NodeClaims failed to launch (`ICE`: no capacity)".to_string()
                ),
                (
                    "gpu".to_string(),
                    "its replacements fail to launch (`LaunchFailed`)".to_string()
                ),
            ]
        );
    }
}
