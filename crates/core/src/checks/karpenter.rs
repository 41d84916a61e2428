//! Pre-flight checks for clusters whose nodes Karpenter (self-installed, or EKS Auto Mode's)
//! manages. After a control-plane hop, such nodes move only by drift: the controller must run a
//! release that supports the new version, each EC2NodeClass must select an AMI that exists for
//! it, and each NodePool's disruption budgets and annotations must let nodes go. Any of these
//! wrong leaves nodes behind (or, with a pinned alias, no node launchable at all), which the
//! operator must learn before the first change, not from a stuck run.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::{Facts, Finding, Severity, karpenter_compat as compat};
use crate::checks::skew::first_violation;
use crate::cloud::karpenter::{self as k, AmiTerm, Karpenter, Read, Release, failing};
use crate::cloud::karpenter_budget::{Allowance, allowed};
use crate::cloud::nodes::{DO_NOT_DISRUPT, Manager, NodeInfo};
use crate::types::Version;

/// How long pre-flight waits for Karpenter's objects.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// How far ahead a budget is looked at: a run, its soak and its recovery fit in a day.
const LOOKAHEAD_HOURS: i64 = 24;
/// Budgets with schedules change at cron minutes; a look every few minutes finds every span
/// longer than that, which is all a drift of real nodes could use.
const SAMPLE_MINUTES: i64 = 5;

pub async fn check(facts: &Facts<'_>) -> Vec<Finding> {
    let kube = facts.conn.kube.clone();
    // Bounded: kube's client retries 429 and 503 with backoff, minutes in all, and pre-flight
    // must not hang on one kind of object.
    let (read, inventory) = tokio::join!(
        tokio::time::timeout(READ_TIMEOUT, k::read(&kube)),
        facts.nodes()
    );
    // A node list that failed is EKS007's finding; these checks then have no nodes to judge.
    let inventory = inventory.unwrap_or(&[]);
    let labelled = inventory.iter().any(|n| n.manager.pool().is_some());
    let Ok(read) = read else {
        return vec![read_problem(format!(
            "the API server did not answer the lists of Karpenter's objects within {}s",
            READ_TIMEOUT.as_secs()
        ))];
    };
    let karpenter = match read {
        Ok(Read::Found(found)) => found,
        Ok(Read::NotInstalled) => return Vec::new(),
        Ok(Read::Forbidden(why)) if labelled => {
            return vec![read_problem(format!(
                "cannot list Karpenter's NodePools, though nodes carry `karpenter.sh/nodepool`: {why}"
            ))];
        }
        Ok(Read::Forbidden(_)) => return Vec::new(),
        Err(e) => {
            return vec![read_problem(format!(
                "cannot read Karpenter's objects: {}",
                crate::errors::kube(&e)
            ))];
        }
    };
    let mut out = Vec::new();
    out.extend(controller(facts, &karpenter));
    out.extend(ami_selection(facts, &karpenter, inventory).await);
    out.extend(readiness(&karpenter));
    out.extend(budgets(&karpenter, inventory, Utc::now()));
    out.extend(do_not_disrupt(&kube, &karpenter, inventory).await);
    out
}

fn read_problem(message: String) -> Finding {
    Finding::new(
        "EKS017",
        Severity::Warning,
        "Karpenter",
        message,
        "grant `list` on `nodepools` and `nodeclaims` (`karpenter.sh`) and `ec2nodeclasses` (`karpenter.k8s.aws`), as examples/kubernetes/clusterrole.yaml does",
    )
}

/// The nodes of each self-installed or Auto Mode NodePool.
fn pool_nodes(inventory: &[NodeInfo]) -> BTreeMap<&str, Vec<&NodeInfo>> {
    let mut out: BTreeMap<&str, Vec<&NodeInfo>> = BTreeMap::new();
    for node in inventory {
        if let Manager::Karpenter(p) | Manager::AutoMode(p) = &node.manager {
            out.entry(p.as_str()).or_default().push(node);
        }
    }
    out
}

/// EKS016: the controller's release must support every hop.
fn controller(facts: &Facts<'_>, karpenter: &Karpenter) -> Vec<Finding> {
    let Some(c) = &karpenter.controller else {
        return Vec::new();
    };
    let Some(last) = facts.hops.iter().copied().max() else {
        return Vec::new();
    };
    let object = format!("Deployment {}/{}", c.namespace, c.name);
    let tag = c.tag.as_deref().unwrap_or("");
    let Some(version) = compat::parse_version(tag) else {
        return vec![
            Finding::new(
                "EKS016",
                Severity::Warning,
                &object,
                format!("cannot tell which Karpenter release runs (image tag `{tag}`), so not whether it supports Kubernetes {last}"),
                "check Karpenter's compatibility table (karpenter.sh, Upgrading → Compatibility) before the run",
            )
            .at(Some(&c.namespace), &c.name),
        ];
    };
    let shown = format!("{}.{}.{}", version.0, version.1, version.2);
    let support = match compat::support(version) {
        Ok(s) => s,
        Err(e) => {
            return vec![Finding::new(
                "EKS016",
                Severity::Warning,
                &object,
                e.to_string(),
                "report this defect; Karpenter's compatibility cannot be checked until it is fixed",
            )];
        }
    };
    match support {
        compat::Support::Known { max, .. } if Version::new(max.0, max.1) < last => {
            let first_bad = facts
                .hops
                .iter()
                .copied()
                .find(|h| *h > Version::new(max.0, max.1))
                .unwrap_or(last);
            vec![
                Finding::new(
                    "EKS016",
                    Severity::Error,
                    &object,
                    format!(
                        "Karpenter {shown} supports Kubernetes up to {}.{}; this run goes to {last}, and from {first_bad} on Karpenter may fail to launch or replace nodes",
                        max.0, max.1
                    ),
                    format!("upgrade Karpenter (its CRDs first) to a release that supports {last} before the run"),
                )
                .at(Some(&c.namespace), &c.name),
            ]
        }
        compat::Support::OlderThanTable => vec![
            Finding::new(
                "EKS016",
                Severity::Warning,
                &object,
                format!("Karpenter {shown} is not in the compatibility table this tool knows; it may not support Kubernetes {last}"),
                "upgrade Karpenter to a current release before the run",
            )
            .at(Some(&c.namespace), &c.name),
        ],
        _ => Vec::new(),
    }
}

/// EKS015: how each EC2NodeClass in use selects its AMI, against every hop.
async fn ami_selection(
    facts: &Facts<'_>,
    karpenter: &Karpenter,
    inventory: &[NodeInfo],
) -> Vec<Finding> {
    let by_pool = pool_nodes(inventory);
    // Class → the self-installed pools that use it.
    let mut users: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for pool in karpenter.pools.iter().filter(|p| !p.auto_mode()) {
        users
            .entry(pool.class.name.as_str())
            .or_default()
            .push(pool.name.as_str());
    }
    let pinned = karpenter.classes.iter().any(|c| {
        c.terms.iter().any(|t| {
            matches!(
                t,
                AmiTerm::Alias {
                    release: Release::Pinned(_),
                    ..
                }
            )
        })
    });
    // Release dates are read only when a pinned alias needs them.
    let released: BTreeMap<Version, chrono::NaiveDate> = if pinned {
        facts
            .offered_versions()
            .await
            .unwrap_or(&[])
            .iter()
            .filter_map(|v| Some((v.version, v.release_date?)))
            .collect()
    } else {
        BTreeMap::new()
    };
    let Some(last) = facts.hops.iter().copied().max() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for class in &karpenter.classes {
        let Some(pools) = users.get(class.name.as_str()) else {
            continue;
        };
        let count: usize = pools
            .iter()
            .map(|p| by_pool.get(p).map_or(0, Vec::len))
            .sum();
        let pools_text = pools
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let object = format!("EC2NodeClass {}", class.name);
        for term in &class.terms {
            let finding = match term {
                AmiTerm::Alias {
                    release: Release::Latest,
                    ..
                } => None,
                AmiTerm::Alias {
                    family,
                    release: Release::Pinned(date),
                } => facts
                    .hops
                    .iter()
                    .find_map(|h| released.get(h).filter(|r| date < *r).map(|r| (*h, *r)))
                    .map(|(hop, release)| {
                        Finding::new(
                            "EKS015",
                            Severity::Error,
                            &object,
                            format!(
                                "selects {term}, a release older than Kubernetes {hop} on EKS ({release}): after the hop Karpenter finds no AMI for NodePool {pools_text}, launches no node for it and replaces none of its {count} nodes"
                            ),
                            format!(
                                "use `alias: {family}@latest`, or pin a release AWS published for {last} (`aws ssm get-parameters-by-path --path /aws/service/eks/optimized-ami/{last}/` lists them)"
                            ),
                        )
                    }),
                AmiTerm::Alias {
                    release: Release::Unknown,
                    ..
                } => Some(Finding::new(
                    "EKS015",
                    Severity::Warning,
                    &object,
                    format!("selects {term}, whose release the tool cannot read; it cannot tell whether an AMI exists for {last}"),
                    "use `alias: FAMILY@latest` or `FAMILY@vYYYYMMDD`",
                )),
                AmiTerm::Id(_) | AmiTerm::Fixed(_) => {
                    // These nodes stay at their version through every hop: the kubelet skew
                    // must hold against all of them.
                    let broken = pools
                        .iter()
                        .flat_map(|p| by_pool.get(p).into_iter().flatten())
                        .filter_map(|n| n.version)
                        .filter_map(|v| first_violation(v, facts.hops).map(|h| (v, h)))
                        .min_by_key(|(_, h)| *h);
                    Some(match broken {
                        Some((v, hop)) => Finding::new(
                            "EKS015",
                            Severity::Error,
                            &object,
                            format!(
                                "selects {term}, which does not follow the control plane: NodePool {pools_text} keeps its nodes at {v}, which a {hop} control plane does not support"
                            ),
                            format!(
                                "point `amiSelectorTerms` at AMIs for {} (or use `alias: al2023@latest`) and let Karpenter replace the nodes before the run, or stop the run at an earlier target",
                                facts.current
                            ),
                        ),
                        None => Finding::new(
                            "EKS015",
                            Severity::Warning,
                            &object,
                            format!(
                                "selects {term}, which does not follow the control plane: NodePool {pools_text} keeps its {count} nodes at their version through this run, and Karpenter replaces them only when the class changes"
                            ),
                            format!(
                                "after the run, point `amiSelectorTerms` at AMIs for {last} (or use `alias: al2023@latest`)"
                            ),
                        ),
                    })
                }
                AmiTerm::Ssm(_) => Some(Finding::new(
                    "EKS015",
                    Severity::Warning,
                    &object,
                    format!("selects its AMI by {term}; the tool cannot tell whether it resolves to an AMI for {last}"),
                    "make sure the parameter follows the cluster's version, or use `alias: al2023@latest`",
                )),
            };
            out.extend(finding);
        }
    }
    out
}

/// EKS017: what stops Karpenter from launching or replacing nodes now.
fn readiness(karpenter: &Karpenter) -> Vec<Finding> {
    let mut out = Vec::new();
    let remedy = "fix it before the run: drift replaces nodes only by launching new ones";
    if let Some(c) = karpenter.controller.as_ref().filter(|c| c.available == 0) {
        out.push(
            Finding::new(
                "EKS017",
                Severity::Warning,
                format!("Deployment {}/{}", c.namespace, c.name),
                "the Karpenter controller has no available replica: no node drifts or launches while it is down",
                "bring the controller back (`kubectl -n NAMESPACE get pods -l app.kubernetes.io/name=karpenter`)",
            )
            .at(Some(&c.namespace), &c.name),
        );
    }
    for class in &karpenter.classes {
        if let Some(c) = failing(&class.conditions, "Ready") {
            let cause = [
                "AMIsReady",
                "SubnetsReady",
                "SecurityGroupsReady",
                "InstanceProfileReady",
            ]
            .into_iter()
            .find_map(|kind| failing(&class.conditions, kind))
            .unwrap_or(c);
            out.push(Finding::new(
                "EKS017",
                Severity::Warning,
                format!("EC2NodeClass {}", class.name),
                format!(
                    "Karpenter cannot launch nodes of this class now: `{}` `False` (`{}`){}",
                    cause.kind,
                    cause.reason,
                    if cause.message.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", cause.message)
                    }
                ),
                remedy,
            ));
        }
    }
    for pool in &karpenter.pools {
        if let Some(c) = failing(&pool.conditions, "NodeRegistrationHealthy")
            .or_else(|| failing(&pool.conditions, "Ready"))
        {
            out.push(Finding::new(
                "EKS017",
                Severity::Warning,
                format!("NodePool {}", pool.name),
                format!(
                    "Karpenter reports the pool `{}` `False` (`{}`){}",
                    c.kind,
                    c.reason,
                    if c.message.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", c.message)
                    }
                ),
                remedy,
            ));
        }
    }
    out
}

/// K8S005: NodePools whose budgets allow no drift over the next day.
fn budgets(karpenter: &Karpenter, inventory: &[NodeInfo], now: DateTime<Utc>) -> Vec<Finding> {
    let by_pool = pool_nodes(inventory);
    let mut out = Vec::new();
    for pool in &karpenter.pools {
        let nodes = by_pool
            .get(pool.name.as_str())
            .map_or(&[][..], Vec::as_slice);
        if nodes.is_empty() {
            continue;
        }
        // The budgets alone: nodes being replaced now use part of the allowance, but that
        // passes and is no finding.
        let samples = LOOKAHEAD_HOURS * 60 / SAMPLE_MINUTES;
        let looks: Vec<(DateTime<Utc>, Allowance)> = (0..=samples)
            .map(|i| {
                let at = now + Duration::minutes(i * SAMPLE_MINUTES);
                (at, allowed(&pool.budgets, "Drifted", nodes.len(), 0, at))
            })
            .collect();
        let Some(first_zero) = looks.iter().position(|(_, a)| a.nodes == 0) else {
            continue;
        };
        let who = if pool.auto_mode() {
            "EKS Auto Mode"
        } else {
            "Karpenter"
        };
        let budget_text = looks[first_zero].1.describe(&pool.budgets);
        let message = if looks.iter().all(|(_, a)| a.nodes == 0) {
            format!(
                "allows no drift for the next {LOOKAHEAD_HOURS} hours ({budget_text}): {who} replaces none of its {} nodes after the control plane moves",
                nodes.len()
            )
        } else {
            // The first span without drift, to the sample precision.
            let end = looks[first_zero..]
                .iter()
                .find(|(_, a)| a.nodes > 0)
                .map(|(at, _)| *at);
            format!(
                "allows no drift for part of the next {LOOKAHEAD_HOURS} hours, first from {} UTC{} ({budget_text}): its {} nodes wait while that lasts",
                looks[first_zero].0.format("%a %H:%M"),
                end.map(|e| format!(" until about {}", e.format("%a %H:%M")))
                    .unwrap_or_default(),
                nodes.len()
            )
        };
        out.push(Finding::new(
            "K8S005",
            Severity::Warning,
            format!("NodePool {}", pool.name),
            message,
            "add a budget for drift such as `{ nodes: \"10%\", reasons: [Drifted] }`, or a schedule that opens during the run",
        ));
    }
    out
}

/// K8S006: nodes and pods Karpenter must not disrupt, on NodePool nodes.
async fn do_not_disrupt(
    kube: &kube::Client,
    karpenter: &Karpenter,
    inventory: &[NodeInfo],
) -> Vec<Finding> {
    let by_pool = pool_nodes(inventory);
    if by_pool.is_empty() {
        return Vec::new();
    }
    // Node → pool, for the nodes whose pods' annotations count: past a termination grace
    // period on its NodeClaim Karpenter drains a node whatever its pods say.
    let mut counted: BTreeMap<String, String> = BTreeMap::new();
    for (pool, nodes) in &by_pool {
        counted.extend(
            nodes
                .iter()
                .filter(|n| karpenter.pods_hold(&n.name))
                .map(|n| (n.name.clone(), pool.to_string())),
        );
    }
    let listed = k::do_not_disrupt_pods(kube, &counted).await;
    let mut pods = listed.as_ref().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for (pool, nodes) in &by_pool {
        let held_nodes: Vec<&str> = nodes
            .iter()
            .filter(|n| n.do_not_disrupt)
            .map(|n| n.name.as_str())
            .collect();
        let held_pods = pods.remove(*pool).unwrap_or_default();
        if held_nodes.is_empty() && held_pods.is_empty() {
            continue;
        }
        let mut parts = Vec::new();
        if !held_nodes.is_empty() {
            parts.push(format!(
                "{} node{} ({})",
                held_nodes.len(),
                plural(held_nodes.len()),
                shown(held_nodes.iter().copied())
            ));
        }
        if !held_pods.is_empty() {
            parts.push(format!(
                "{} running pod{} ({})",
                held_pods.len(),
                plural(held_pods.len()),
                shown(held_pods.iter().map(String::as_str))
            ));
        }
        out.push(Finding::new(
            "K8S006",
            Severity::Warning,
            format!("NodePool {pool}"),
            format!(
                "{} annotated `{DO_NOT_DISRUPT}`: drift skips the nodes they are on, which stay at their version",
                parts.join(" and ")
            ),
            "remove the annotation for the upgrade, or set `terminationGracePeriod` on the NodePool so that drift may drain them",
        ));
    }
    if let Err(e) = listed {
        out.push(read_problem(format!(
            "cannot list pods to find those Karpenter must not disrupt: {}",
            crate::errors::kube(&e)
        )));
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Up to five names, then an ellipsis: findings are read by people.
fn shown<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    let mut text = names
        .iter()
        .take(5)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > 5 {
        text.push_str(", …");
    }
    text
}
