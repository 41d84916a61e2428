//! Cluster insights: the scenario's own, "Deprecated APIs removed in Kubernetes v1.NN"
//! computed from the deprecated API requests the scenario's API server has seen, relative to the
//! version the control plane runs now (ERROR for the next minor, WARNING for later ones), and
//! the rollback-readiness insights derived from the cluster's state (`rollback_insights`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::Call;
use super::errors::EksError;
use super::request::{body_max_results, body_str, page};
use super::rollback_insights;
use super::state::{Eks, State, epoch_now, stable_id};
use crate::scenario::DeprecatedRequest;
use eks_upgrade_core::types::Version;

const CATEGORIES: [&str; 3] = [
    "UPGRADE_READINESS",
    "MISCONFIGURATION",
    "ROLLBACK_READINESS",
];
const STATUSES: [&str; 4] = ["PASSING", "WARNING", "ERROR", "UNKNOWN"];
const NO_USAGE: &str = "No deprecated API usage detected within the last 30 days.";

/// Where a deprecated API's replacement lives, and since which release it is served.
/// `(group, version, resource or "" for all) → (replacement group/version, since)`; from the
/// Kubernetes deprecation guide.
const REPLACEMENTS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "extensions",
        "v1beta1",
        "ingresses",
        "networking.k8s.io/v1",
        "1.19",
    ),
    (
        "networking.k8s.io",
        "v1beta1",
        "",
        "networking.k8s.io/v1",
        "1.19",
    ),
    ("batch", "v1beta1", "", "batch/v1", "1.21"),
    (
        "discovery.k8s.io",
        "v1beta1",
        "",
        "discovery.k8s.io/v1",
        "1.21",
    ),
    ("events.k8s.io", "v1beta1", "", "events.k8s.io/v1", "1.19"),
    ("autoscaling", "v2beta1", "", "autoscaling/v2", "1.23"),
    ("autoscaling", "v2beta2", "", "autoscaling/v2", "1.23"),
    (
        "policy",
        "v1beta1",
        "poddisruptionbudgets",
        "policy/v1",
        "1.21",
    ),
    ("node.k8s.io", "v1beta1", "", "node.k8s.io/v1", "1.20"),
    ("storage.k8s.io", "v1beta1", "", "storage.k8s.io/v1", "1.24"),
    (
        "storage.k8s.io",
        "v1alpha1",
        "",
        "storage.k8s.io/v1",
        "1.34",
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        "v1beta1",
        "",
        "flowcontrol.apiserver.k8s.io/v1beta3",
        "1.26",
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        "v1beta2",
        "",
        "flowcontrol.apiserver.k8s.io/v1",
        "1.29",
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        "v1beta3",
        "",
        "flowcontrol.apiserver.k8s.io/v1",
        "1.29",
    ),
    (
        "admissionregistration.k8s.io",
        "v1beta1",
        "",
        "admissionregistration.k8s.io/v1",
        "1.16",
    ),
    (
        "admissionregistration.k8s.io",
        "v1alpha1",
        "",
        "admissionregistration.k8s.io/v1",
        "1.30",
    ),
    (
        "apiextensions.k8s.io",
        "v1beta1",
        "",
        "apiextensions.k8s.io/v1",
        "1.16",
    ),
    (
        "resource.k8s.io",
        "v1alpha3",
        "",
        "resource.k8s.io/v1",
        "1.34",
    ),
    (
        "resource.k8s.io",
        "v1beta1",
        "",
        "resource.k8s.io/v1",
        "1.34",
    ),
    (
        "storagemigration.k8s.io",
        "v1alpha1",
        "",
        "storagemigration.k8s.io/v1beta1",
        "1.35",
    ),
];

fn path(group_version: &str, resource: &str) -> String {
    if group_version.contains('/') {
        format!("/apis/{group_version}/{resource}")
    } else {
        format!("/api/{group_version}/{resource}")
    }
}

fn deprecation_detail(r: &DeprecatedRequest) -> Value {
    let gv = if r.group.is_empty() {
        r.version.clone()
    } else {
        format!("{}/{}", r.group, r.version)
    };
    let replacement = REPLACEMENTS
        .iter()
        .find(|(g, v, res, _, _)| {
            *g == r.group && *v == r.version && (res.is_empty() || *res == r.resource)
        })
        .map(|(_, _, _, to, since)| (path(to, &r.resource), *since));
    let seed = format!("{gv}/{}", r.resource);
    json!({
        "usage": path(&gv, &r.resource),
        "replacedWith": replacement.as_ref().map(|(p, _)| p.clone()).unwrap_or_default(),
        "stopServingVersion": r.removed_release.to_string(),
        "startServingReplacementVersion": replacement.map(|(_, s)| s).unwrap_or_default(),
        "clientStats": [{
            "userAgent": "kubectl/v1.33.1 (linux/amd64) kubernetes/8adc0f0",
            "numberOfRequestsLast30Days": 10 + crate::sim::names::hash(&seed) % 500,
            "lastRequestTime": (epoch_now() - 3600.0).floor(),
        }],
    })
}

/// One insight in the model's terms.
#[derive(Debug, Clone)]
pub struct Insight {
    pub id: String,
    pub name: String,
    pub category: String,
    pub version: Version,
    pub status: String,
    pub reason: String,
    pub description: String,
    pub recommendation: String,
    pub deprecations: Vec<Value>,
    /// `InsightResourceDetail`s, in wire form.
    pub resources: Vec<Value>,
    /// `AddonCompatibilityDetail`s, in wire form.
    pub addon_compatibility: Vec<Value>,
    /// When it was last refreshed and last changed status (epoch seconds), if not the daily
    /// refresh of the live insights.
    pub refreshed: Option<(f64, f64)>,
    /// `additionalInfo`; the deprecation guide links when `None`.
    pub links: Option<Value>,
}

impl Insight {
    /// An insight with the given identity and status; the rest empty.
    pub fn new(name: &str, category: &str, version: Version, status: &str, reason: String) -> Self {
        Insight {
            id: stable_id(&format!("insight/{name}/{version}")),
            name: name.to_string(),
            category: category.to_string(),
            version,
            status: status.to_string(),
            reason,
            description: String::new(),
            recommendation: String::new(),
            deprecations: Vec::new(),
            resources: Vec::new(),
            addon_compatibility: Vec::new(),
            refreshed: None,
            links: None,
        }
    }
}

/// Every insight of the cluster as it is now.
fn all(eks: &Eks, state: &State) -> Vec<Insight> {
    let spec = &eks.world.scenario.spec;
    let current = state.cluster.version;
    let mut insights: Vec<Insight> = spec
        .insights
        .iter()
        .map(|i| {
            let reason = i.reason.clone().unwrap_or_else(|| match i.status.as_str() {
                "PASSING" => "No issues detected.".into(),
                _ => format!(
                    "Issues detected that affect Kubernetes v{}.",
                    i.kubernetes_version
                ),
            });
            let mut insight = Insight::new(
                &i.name,
                &i.category,
                i.kubernetes_version,
                &i.status,
                reason,
            );
            insight.description = i.description.clone().unwrap_or_else(|| i.name.clone());
            insight.recommendation = i.recommendation.clone().unwrap_or_default();
            insight
        })
        .collect();

    // One deprecated-API insight per release that removes something in use, and always one for
    // the next minor, as EKS shows.
    let mut by_release: BTreeMap<Version, Vec<&DeprecatedRequest>> = BTreeMap::new();
    by_release.entry(current.next_minor()).or_default();
    for r in &spec.deprecated_api_requests {
        by_release.entry(r.removed_release).or_default().push(r);
    }
    for (release, requests) in by_release {
        let (status, reason) = if requests.is_empty() || release <= current {
            ("PASSING", NO_USAGE.to_string())
        } else if release == current.next_minor() {
            (
                "ERROR",
                format!(
                    "Deprecated API usage detected within last 30 days and your cluster is on Kubernetes v{current}."
                ),
            )
        } else {
            (
                "WARNING",
                format!(
                    "Deprecated API usage detected within last 30 days; the APIs are removed in Kubernetes v{release}, more than one minor version after v{current}."
                ),
            )
        };
        let name = format!("Deprecated APIs removed in Kubernetes v{release}");
        let mut insight = Insight::new(&name, "UPGRADE_READINESS", release, status, reason);
        // Kept from before the id scheme included the version: ids stay stable across runs.
        insight.id = stable_id(&format!("insight/{name}"));
        insight.description = format!(
            "Checks for usage of deprecated APIs that are scheduled for removal in Kubernetes v{release}. Upgrading your cluster before migrating to the updated APIs supported by v{release} could cause application impact."
        );
        insight.recommendation = format!(
            "Update manifests and API clients to use newer Kubernetes APIs if applicable before upgrading to Kubernetes v{release}."
        );
        insight.deprecations = requests.into_iter().map(deprecation_detail).collect();
        insights.push(insight);
    }
    // The rollback-readiness insights, as last refreshed, while a rollback is possible.
    if let Some(snapshot) = &state.rollback_insights {
        insights.extend(snapshot.insights.iter().cloned());
    }
    insights.sort_by(|a, b| (a.version, &a.name).cmp(&(b.version, &b.name)));
    insights
}

/// Whether insight enforcement (`faults.enforceInsights`) blocks moving to `target`: an insight
/// of `category` for that version in ERROR.
pub fn blocking(eks: &Eks, state: &State, category: &str, target: Version) -> bool {
    eks.world.scenario.spec.faults.enforce_insights
        && !errors(eks, state, category, target).is_empty()
}

/// The names of the insights of `category` for `target` in ERROR, as last refreshed.
pub fn errors(eks: &Eks, state: &State, category: &str, target: Version) -> Vec<String> {
    all(eks, state)
        .into_iter()
        .filter(|i| i.category == category && i.version == target && i.status == "ERROR")
        .map(|i| i.name)
        .collect()
}

/// When insights were last refreshed: the last on-demand refresh, else the daily one, taken to
/// have run on the hour.
fn refreshed(state: &State) -> f64 {
    state
        .refresh
        .map(|(_, end)| end)
        .unwrap_or_else(|| (epoch_now() / 3600.0).floor() * 3600.0)
}

fn summary(i: &Insight, refreshed: f64) -> Value {
    let (refreshed, transition) = i.refreshed.unwrap_or((refreshed, refreshed - 86_400.0));
    json!({
        "id": i.id,
        "name": i.name,
        "category": i.category,
        "kubernetesVersion": i.version.to_string(),
        "lastRefreshTime": refreshed,
        "lastTransitionTime": transition,
        "description": i.description,
        "insightStatus": { "status": i.status, "reason": i.reason },
    })
}

/// The filter's list member, each value checked against the enum it belongs to.
fn filter_list<'a>(
    filter: &'a Value,
    key: &str,
    allowed: Option<&[&str]>,
) -> Result<Vec<&'a str>, EksError> {
    let values: Vec<&str> = match filter.get(key) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(_) => {
            return Err(EksError::invalid_parameter(format!(
                "filter.{key} must be a list"
            )));
        }
    };
    if let Some(allowed) = allowed
        && let Some(bad) = values.iter().find(|v| !allowed.contains(v))
    {
        return Err(EksError::invalid_parameter(format!(
            "Invalid value {bad} in filter.{key}. Valid values are {}",
            allowed.join(", ")
        )));
    }
    Ok(values)
}

pub fn list_insights(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    let cluster = call.cluster(eks)?;
    let body = &call.body;
    let filter = body.get("filter").cloned().unwrap_or(Value::Null);
    let categories = filter_list(&filter, "categories", Some(&CATEGORIES))?;
    let versions = filter_list(&filter, "kubernetesVersions", None)?;
    let statuses = filter_list(&filter, "statuses", Some(&STATUSES))?;
    let max = body_max_results(body)?;
    let token = body_str(body, "nextToken")?.filter(|t| !t.is_empty());
    let mut state = eks.lock();
    rollback_insights::keep_current(eks, &mut state);
    let at = refreshed(&state);
    let items: Vec<Value> = all(eks, &state)
        .iter()
        .filter(|i| categories.is_empty() || categories.contains(&i.category.as_str()))
        .filter(|i| versions.is_empty() || versions.contains(&i.version.to_string().as_str()))
        .filter(|i| statuses.is_empty() || statuses.contains(&i.status.as_str()))
        .map(|i| summary(i, at))
        .collect();
    let (items, next) = page(items, max, token).map_err(|e| e.cluster(cluster))?;
    Ok(json!({ "insights": items, "nextToken": next }))
}

pub fn describe_insight(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    let cluster = call.cluster(eks)?;
    let id = call.param("id");
    let mut state = eks.lock();
    rollback_insights::keep_current(eks, &mut state);
    let insights = all(eks, &state);
    let i = insights.iter().find(|i| i.id == id).ok_or_else(|| {
        EksError::not_found(format!("No insight found for id: {id}")).cluster(cluster)
    })?;
    let mut insight = summary(i, refreshed(&state));
    let v = i.version;
    insight["recommendation"] = json!(i.recommendation);
    insight["additionalInfo"] = i.links.clone().unwrap_or_else(|| json!({
        "EKS update cluster documentation": "https://docs.aws.amazon.com/eks/latest/userguide/update-cluster.html",
        format!("Kubernetes v{v} deprecation guide"): format!("https://kubernetes.io/docs/reference/using-api/deprecation-guide/#v{}-{}", v.major, v.minor),
    }));
    insight["resources"] = json!(i.resources);
    insight["categorySpecificSummary"] = json!({
        "deprecationDetails": i.deprecations,
        "addonCompatibilityDetails": i.addon_compatibility,
    });
    Ok(json!({ "insight": insight }))
}

/// StartInsightsRefresh: upgrade insights are recomputed on every read and rollback-readiness
/// insights right now, so a refresh is instant.
pub fn start_refresh(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    call.cluster(eks)?;
    let now = epoch_now();
    let mut state = eks.lock();
    state.refresh = Some((now, now));
    rollback_insights::refresh(eks, &mut state);
    Ok(json!({ "message": "Insights refresh is in progress", "status": "IN_PROGRESS" }))
}

pub fn describe_refresh(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    call.cluster(eks)?;
    let state = eks.lock();
    let end = refreshed(&state);
    let start = state.refresh.map(|(s, _)| s).unwrap_or(end);
    Ok(json!({
        "message": "Insights refresh completed",
        "status": "COMPLETED",
        "startedAt": start,
        "endedAt": end,
    }))
}
