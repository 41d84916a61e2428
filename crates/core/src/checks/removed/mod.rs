//! Removed-API detection: which objects and clients use an API that a hop's Kubernetes version
//! no longer serves. Live objects are useless for this (the API server converts them to whatever
//! version a client asks for), so the evidence is what was *submitted*: the API server's
//! `apiserver_requested_deprecated_apis` metric, the `last-applied-configuration` annotation
//! `kubectl apply` leaves, and the manifests of deployed Helm 3 releases.

pub mod annotations;
mod gone;
pub mod helm;
pub mod metric;

pub use gone::gone_finding;

use std::sync::LazyLock;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use serde::Deserialize;

use super::{Facts, Finding, Severity, list};
use crate::types::Version;

/// One row of `removed_apis.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RemovedApi {
    pub removed_in: Version,
    pub api_version: String,
    pub kind: String,
    pub resource: String,
    #[serde(default)]
    pub replacement: Option<String>,
    #[serde(default)]
    pub since: Option<Version>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub replacement_kind: Option<String>,
    /// A third-party component (`cert-manager`, `istio`); `None` for Kubernetes itself.
    #[serde(default)]
    pub component: Option<String>,
}

impl RemovedApi {
    /// `(group, version)` of the removed API; the core group is `""`.
    pub fn group_version(&self) -> (&str, &str) {
        match self.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", self.api_version.as_str()),
        }
    }

    /// Who removes the API, with the release: `Kubernetes 1.25`, `cert-manager 1.6`.
    pub fn removed_by(&self) -> String {
        format!("{} {}", self.owner(), self.removed_in)
    }

    fn owner(&self) -> &str {
        self.component.as_deref().unwrap_or("Kubernetes")
    }

    /// `` `group/version` Kind `` to move to, when there is one.
    pub(crate) fn target(&self) -> Option<String> {
        let r = self.replacement.as_ref()?;
        Some(format!(
            "`{r}` {}",
            self.replacement_kind.as_deref().unwrap_or(&self.kind)
        ))
    }

    fn remedy(&self) -> String {
        let mut out = match self.target() {
            Some(t) => format!("migrate the manifest to {t}"),
            None => "remove the object before upgrading".to_string(),
        };
        if let Some(since) = self.since {
            match &self.component {
                None => out.push_str(&format!(" (served since {since})")),
                Some(c) => out.push_str(&format!(" (served since {c} {since})")),
            }
        }
        if let Some(note) = &self.note {
            out.push_str(&format!("; {note}"));
        }
        out
    }
}

const TABLE_TEXT: &str = include_str!("../removed_apis.yaml");

static TABLE: LazyLock<Result<Vec<RemovedApi>, String>> = LazyLock::new(|| {
    serde_saphyr::from_str::<Vec<RemovedApi>>(TABLE_TEXT).map_err(|e| e.to_string())
});

/// The built-in table, parsed once. An error here is a defect of the embedded file, which a
/// unit test rules out; it is still reported as a finding rather than a panic.
pub fn table() -> Result<&'static [RemovedApi], &'static str> {
    match &*TABLE {
        Ok(rows) => Ok(rows.as_slice()),
        Err(e) => Err(e.as_str()),
    }
}

/// The removals that matter for a run from `current` through `hops`: APIs still served now and
/// gone by the last hop (`rows`), and APIs the current version already no longer serves
/// (`gone`), which still block Helm and `kubectl apply` when manifests name them.
#[derive(Debug, Clone, Default)]
pub struct Removals {
    pub rows: Vec<&'static RemovedApi>,
    pub gone: Vec<&'static RemovedApi>,
}

/// Whether a row is Kubernetes's own (its versions are Kubernetes versions).
fn kubernetes(r: &&RemovedApi) -> bool {
    r.component.is_none()
}

/// The oldest removal whose kinds the annotation scan lists for already-removed APIs. Older
/// kinds (RBAC, Ingress, webhooks…) would widen the tool's Kubernetes permissions to most of
/// the cluster; their Helm manifests are still checked, and Deployments and StatefulSets are
/// read anyway.
pub const GONE_SCAN_FROM: Version = Version::new(1, 29);

impl Removals {
    pub fn between(table: &'static [RemovedApi], current: Version, hops: &[Version]) -> Removals {
        let last = hops.iter().copied().max().unwrap_or(current);
        Removals {
            rows: table
                .iter()
                .filter(kubernetes)
                .filter(|r| r.removed_in > current && r.removed_in <= last)
                .collect(),
            // Third-party removals come with the component's upgrade, not the cluster's: the
            // tool cannot tell whether the installed release still serves them, so they are
            // only ever warnings.
            gone: table
                .iter()
                .filter(|r| !kubernetes(r) || r.removed_in <= current)
                .collect(),
        }
    }

    /// The removal, before or at the current version, of `apiVersion` + `kind`.
    pub fn gone_by_kind(&self, api_version: &str, kind: &str) -> Option<&'static RemovedApi> {
        self.gone
            .iter()
            .copied()
            .find(|r| r.api_version == api_version && r.kind == kind)
    }

    /// The removal of `apiVersion` + `kind`, as written in a manifest.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&'static RemovedApi> {
        self.rows
            .iter()
            .copied()
            .find(|r| r.api_version == api_version && r.kind == kind)
    }

    /// The removal of a group/version/resource, as the metric labels it.
    pub fn by_resource(
        &self,
        group: &str,
        version: &str,
        resource: &str,
    ) -> Option<&'static RemovedApi> {
        self.rows
            .iter()
            .copied()
            .find(|r| r.group_version() == (group, version) && r.resource == resource)
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Where the evidence of a removed API came from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The API server saw requests to it.
    Metric,
    /// An object's `last-applied-configuration` annotation.
    Annotation,
    /// A deployed Helm release's manifest.
    Helm { release: String, revision: u64 },
}

/// When the API goes: on a hop of this run, or already before the current version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Hop,
    Gone,
}

impl Source {
    fn code(&self) -> &'static str {
        match self {
            Source::Metric => "API001",
            Source::Annotation => "API002",
            Source::Helm { .. } => "API003",
        }
    }

    fn describe(&self) -> String {
        match self {
            Source::Metric => {
                "the API server's `apiserver_requested_deprecated_apis` metric".into()
            }
            Source::Annotation => {
                "its `kubectl.kubernetes.io/last-applied-configuration` annotation".into()
            }
            Source::Helm { release, revision } => {
                format!("Helm release `{release}` revision {revision}")
            }
        }
    }
}

/// A finding for an object (or, from the metric, an API) that uses a removed API.
pub fn finding(api: &RemovedApi, source: Source, namespace: Option<&str>, name: &str) -> Finding {
    let object = match (&source, namespace) {
        (Source::Metric, _) => format!("API {} {}", api.api_version, api.resource),
        (_, Some(ns)) => format!("{} {ns}/{name}", api.kind),
        (_, None) => format!("{} {name}", api.kind),
    };
    let alpha = if api.stage.as_deref() == Some("alpha") {
        " (an alpha API)"
    } else {
        ""
    };
    let message = match &source {
        Source::Metric => format!(
            "clients requested `{}` {}{alpha}, which Kubernetes {} no longer serves (seen in {})",
            api.api_version,
            api.resource,
            api.removed_in,
            source.describe()
        ),
        _ => format!(
            "uses `{}` {}{alpha}, which Kubernetes {} no longer serves (found in {})",
            api.api_version,
            api.kind,
            api.removed_in,
            source.describe()
        ),
    };
    let mut remedy = api.remedy();
    if matches!(source, Source::Metric) {
        remedy = format!(
            "find the client (EKS upgrade insights or the audit log name its user agent) and {}",
            remedy.replacen("migrate the manifest", "move it", 1)
        );
    }
    Finding::new(source.code(), Severity::Error, object, message, remedy)
        .at(namespace, name)
        .with_source(match &source {
            Source::Metric => "metric".to_string(),
            Source::Annotation => "annotation".to_string(),
            Source::Helm { release, revision } => format!("helm:{release}@{revision}"),
        })
}

/// Runs the three sources for the removals between the current version and the last hop. Deployments
/// and StatefulSets are left to the workload check, which lists them anyway.
pub async fn check(facts: &Facts<'_>, removals: &Removals) -> Vec<Finding> {
    if removals.is_empty() && removals.gone.is_empty() {
        return Vec::new();
    }
    let kube = &facts.conn.kube;
    let (from_metric, from_helm, from_annotations) = tokio::join!(
        async {
            // The metric counts requests to APIs still served; gone ones cannot be requested.
            if removals.is_empty() {
                Vec::new()
            } else {
                from_metric(kube, removals).await
            }
        },
        from_helm(kube, removals),
        annotations::scan(
            kube,
            removals,
            &[("apps", "deployments"), ("apps", "statefulsets")]
        ),
    );
    let mut out = from_metric;
    out.extend(from_helm);
    out.extend(from_annotations);
    out
}

async fn from_metric(kube: &kube::Client, removals: &Removals) -> Vec<Finding> {
    let request = match http::Request::get("/metrics").body(Vec::new()) {
        Ok(r) => r,
        Err(e) => return vec![metric_unreadable(&e.to_string())],
    };
    match kube.request_text(request).await {
        Ok(text) => metric::check(&text, removals),
        Err(e) => vec![metric_unreadable(&crate::errors::kube(&e))],
    }
}

fn metric_unreadable(why: &str) -> Finding {
    Finding::new(
        "API001",
        Severity::Warning,
        "API server /metrics",
        format!(
            "cannot read the API server's metrics, so clients calling removed APIs are not known: {why}"
        ),
        "grant `get` on the non-resource URL `/metrics` (see examples/kubernetes/clusterrole.yaml)",
    )
}

async fn from_helm(kube: &kube::Client, removals: &Removals) -> Vec<Finding> {
    let secrets: Api<Secret> = Api::all(kube.clone());
    let mut out = Vec::new();
    let params = ListParams::default().labels(helm::SELECTOR);
    let listed = list::each(&secrets, params, |secret| {
        let ns = secret.metadata.namespace.as_deref().unwrap_or("");
        let name = secret.metadata.name.as_deref().unwrap_or("");
        let field = secret
            .data
            .as_ref()
            .and_then(|d| d.get("release"))
            .map(|b| b.0.as_slice());
        out.extend(helm::check(ns, name, field, removals));
    })
    .await;
    if let Err(e) = listed {
        out.push(Finding::new(
            "API003",
            Severity::Warning,
            "Helm releases",
            format!("cannot list Helm release Secrets, so Helm manifests were not checked for removed APIs: {}", crate::errors::kube(&e)),
            "grant `list` on `secrets` (cluster-wide) to the identity the tool runs as",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_and_is_ordered_by_release() {
        let rows = table().expect("removed_apis.yaml parses");
        assert!(rows.len() > 40);
        let first_component = rows
            .iter()
            .position(|r| r.component.is_some())
            .unwrap_or(rows.len());
        assert!(
            rows[first_component..]
                .iter()
                .all(|r| r.component.is_some()),
            "third-party rows come last, in their own section"
        );
        assert!(
            rows.windows(2)
                .all(|w| w[0].component != w[1].component || w[0].removed_in <= w[1].removed_in),
            "rows are ordered by removedIn within Kubernetes and each component"
        );
        for r in rows {
            assert!(r.api_version.contains('/'), "{} has a group", r.api_version);
            assert!(
                r.replacement.is_some() || r.note.is_some(),
                "{} {}",
                r.api_version,
                r.kind
            );
        }
    }

    #[test]
    fn only_removals_after_the_current_version_and_up_to_the_last_hop_count() {
        let rows = table().expect("table");
        let r = Removals::between(rows, Version::new(1, 31), &[Version::new(1, 32)]);
        assert!(
            r.by_kind("flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema")
                .is_some()
        );
        assert!(
            r.by_kind("batch/v1beta1", "CronJob").is_none(),
            "gone long before"
        );
        assert!(
            r.by_resource(
                "flowcontrol.apiserver.k8s.io",
                "v1beta3",
                "prioritylevelconfigurations"
            )
            .is_some()
        );
        let none = Removals::between(rows, Version::new(1, 32), &[]);
        assert!(none.is_empty());
        assert!(
            none.gone_by_kind("flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema")
                .is_some(),
            "removed at the current version"
        );
        assert!(
            none.gone_by_kind("policy/v1beta1", "PodSecurityPolicy")
                .is_some()
        );
        assert!(none.gone_by_kind("apps/v1", "Deployment").is_none());
    }
}
