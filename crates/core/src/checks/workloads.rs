//! Workloads a node drain will take down: a single replica with no PodDisruptionBudget goes
//! offline while its node is replaced, and nothing tells the drain to wait. The Deployments and
//! StatefulSets read here are also checked for removed APIs in their annotations, so each is
//! listed once.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, ListParams};

use super::removed::{Removals, annotations};
use super::{Facts, Finding, Severity, list};

/// Whether `selector` selects pods with `labels` (Kubernetes label-selector semantics; an
/// empty selector selects everything).
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let equal = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions = selector.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let values = e.values.as_deref().unwrap_or(&[]);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            // An operator this tool does not know selects nothing, as the API server would
            // have refused it.
            _ => false,
        }
    });
    equal && expressions
}

/// One workload as far as this check cares.
struct Workload {
    kind: &'static str,
    meta: ObjectMeta,
    replicas: i32,
    pod_labels: BTreeMap<String, String>,
    images: Vec<String>,
}

/// The community ingress-nginx controller image; the project was retired in March 2026 and
/// publishes no releases validated against newer Kubernetes versions.
const INGRESS_NGINX: &str = "ingress-nginx/controller";

impl Workload {
    fn new(
        kind: &'static str,
        meta: ObjectMeta,
        replicas: Option<i32>,
        template: PodTemplateSpec,
    ) -> Self {
        Workload {
            kind,
            meta,
            // The API server defaults an unset `replicas` to 1.
            replicas: replicas.unwrap_or(1),
            images: template
                .spec
                .map(|s| s.containers.into_iter().filter_map(|c| c.image).collect())
                .unwrap_or_default(),
            pod_labels: template.metadata.and_then(|m| m.labels).unwrap_or_default(),
        }
    }
}

pub async fn check(facts: &Facts<'_>, removals: &Removals) -> Vec<Finding> {
    let kube = facts.conn.kube.clone();
    let mut out = Vec::new();
    let mut budgets: BTreeMap<String, Vec<LabelSelector>> = BTreeMap::new();
    if let Err(e) = list::each(
        &Api::<PodDisruptionBudget>::all(kube.clone()),
        ListParams::default(),
        |pdb| {
            let ns = pdb.metadata.namespace.unwrap_or_default();
            if let Some(selector) = pdb.spec.and_then(|s| s.selector) {
                budgets.entry(ns).or_default().push(selector);
            }
        },
    )
    .await
    {
        out.push(cannot_list("poddisruptionbudgets", &e));
        return out;
    }

    // Velero's own server runs one replica by design and has done its work before any drain;
    // kube-system belongs to EKS and its add-ons.
    let exempt = ["kube-system", facts.velero_namespace];
    let to_1_35 = facts
        .hops
        .iter()
        .any(|h| *h >= crate::types::Version::new(1, 35));
    let consider = |w: Workload, out: &mut Vec<Finding>| {
        if let Some(f) = annotations::check_object(&w.meta, removals) {
            out.push(f);
        }
        let ns = w.meta.namespace.clone().unwrap_or_default();
        if to_1_35 && let Some(image) = w.images.iter().find(|i| i.contains(INGRESS_NGINX)) {
            let name = w.meta.name.clone().unwrap_or_default();
            out.push(
                Finding::new(
                    "K8S004",
                    Severity::Warning,
                    format!("{} {ns}/{name}", w.kind),
                    format!("runs the community ingress-nginx controller (`{image}`), retired in March 2026 and not validated against Kubernetes 1.35 and later"),
                    "plan a move to a maintained controller (the Gateway API or a vendor ingress controller), or accept it with a workflow override",
                )
                .at(Some(&ns), &name),
            );
        }
        if w.replicas != 1 || exempt.contains(&ns.as_str()) {
            return;
        }
        let protected = budgets
            .get(&ns)
            .is_some_and(|list| list.iter().any(|s| selects(s, &w.pod_labels)));
        if !protected {
            let name = w.meta.name.clone().unwrap_or_default();
            out.push(
                Finding::new(
                    "K8S002",
                    Severity::Warning,
                    format!("{} {ns}/{name}", w.kind),
                    "runs a single replica with no PodDisruptionBudget: it goes offline while its node is drained",
                    "run at least two replicas with a PodDisruptionBudget, or accept the outage with a workflow override",
                )
                .at(Some(&ns), &name),
            );
        }
    };

    let deployments = list::each(
        &Api::<Deployment>::all(kube.clone()),
        ListParams::default(),
        |d| {
            let spec = d.spec.unwrap_or_default();
            let w = Workload::new("Deployment", d.metadata, spec.replicas, spec.template);
            consider(w, &mut out);
        },
    )
    .await;
    if let Err(e) = deployments {
        out.push(cannot_list("deployments", &e));
    }
    let statefulsets = list::each(&Api::<StatefulSet>::all(kube), ListParams::default(), |s| {
        let spec = s.spec.unwrap_or_default();
        let w = Workload::new("StatefulSet", s.metadata, spec.replicas, spec.template);
        consider(w, &mut out);
    })
    .await;
    if let Err(e) = statefulsets {
        out.push(cannot_list("statefulsets", &e));
    }
    out
}

/// A list the check needs failed. Without the permission (403) the other checks still run: a
/// warning, and what to grant. Any other failure (the API server erring or unreachable) leaves
/// the check without an answer, so the run stops before any change and can be tried again.
fn cannot_list(resource: &str, e: &kube::Error) -> Finding {
    let forbidden = matches!(e, kube::Error::Api(status) if status.code == 403);
    let (severity, remedy) = if forbidden {
        (
            Severity::Warning,
            format!("grant `list` on `{resource}` to the identity the tool runs as"),
        )
    } else {
        (
            Severity::Error,
            "the API server did not answer; nothing was changed, so run again later".to_string(),
        )
    };
    Finding::new(
        "K8S002",
        severity,
        format!("API {resource}"),
        format!("cannot list {resource}: {}", crate::errors::kube(e)),
        remedy,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_follow_kubernetes_semantics() {
        let pod = labels(&[("app", "web"), ("tier", "front")]);
        let by_labels = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: None,
        };
        assert!(selects(&by_labels, &pod));
        assert!(
            selects(&LabelSelector::default(), &pod),
            "empty selects all"
        );
        let expr = |op: &str, values: &[&str]| LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: op.into(),
                values: Some(values.iter().map(|v| v.to_string()).collect()),
            }]),
        };
        assert!(selects(&expr("In", &["front", "back"]), &pod));
        assert!(!selects(&expr("NotIn", &["front"]), &pod));
        assert!(selects(&expr("Exists", &[]), &pod));
        assert!(!selects(&expr("DoesNotExist", &[]), &pod));
        assert!(!selects(&expr("Near", &[]), &pod));
    }
}
