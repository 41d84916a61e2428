//! `kubectl.kubernetes.io/last-applied-configuration`: client-side `kubectl apply` stores the
//! manifest it applied, with the apiVersion it was written in. An object applied from a manifest
//! that uses a removed API will fail the next `kubectl apply` after the upgrade. Objects created
//! any other way carry no annotation, and an annotation can be stale after a migration made
//! with another tool; the finding says where it came from so a person can judge.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use serde::Deserialize;

use super::{GONE_SCAN_FROM, Removals, Source, finding, gone_finding};
use crate::checks::{Finding, Severity, list};

pub const ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

#[derive(Deserialize)]
struct Applied {
    #[serde(rename = "apiVersion", default)]
    api_version: String,
    #[serde(default)]
    kind: String,
}

/// A finding when the object's annotation names an API a hop removes (an error), or one the
/// current version already no longer serves (a warning).
pub fn check_object(meta: &ObjectMeta, removals: &Removals) -> Option<Finding> {
    let text = meta.annotations.as_ref()?.get(ANNOTATION)?;
    let applied: Applied = serde_json::from_str(text).ok()?;
    let (ns, name) = (
        meta.namespace.as_deref(),
        meta.name.as_deref().unwrap_or(""),
    );
    if let Some(api) = removals.by_kind(&applied.api_version, &applied.kind) {
        return Some(finding(api, Source::Annotation, ns, name));
    }
    let api = removals.gone_by_kind(&applied.api_version, &applied.kind)?;
    Some(gone_finding(api, Source::Annotation, ns, name))
}

/// Lists the objects of every kind a hop removes, and of the kinds removed from
/// [`GONE_SCAN_FROM`] up to the current version, through the API that replaces each (the one
/// the cluster serves), and checks their annotations. `skip` names `(group, resource)` pairs another
/// check already lists and feeds to [`check_object`].
pub async fn scan(kube: &kube::Client, removals: &Removals, skip: &[(&str, &str)]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut listed: Vec<(String, String)> = Vec::new();
    let gone = removals
        .gone
        .iter()
        .filter(|r| r.component.is_none() && r.removed_in >= GONE_SCAN_FROM);
    for api in removals.rows.iter().chain(gone) {
        let Some(replacement) = api.replacement.as_deref() else {
            continue;
        };
        let (group, version) = replacement.split_once('/').unwrap_or(("", replacement));
        let key = (group.to_string(), api.resource.clone());
        if skip.contains(&(group, api.resource.as_str())) || listed.contains(&key) {
            continue;
        }
        listed.push(key);
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, &api.kind),
            &api.resource,
        );
        let objects: Api<DynamicObject> = Api::all_with(kube.clone(), &resource);
        let result = list::each(&objects, ListParams::default(), |obj| {
            if let Some(f) = check_object(&obj.metadata, removals) {
                out.push(f);
            }
        })
        .await;
        match result {
            Ok(_) => {}
            Err(e) if list::not_served(&e) => {}
            Err(e) => out.push(Finding::new(
                "API002",
                Severity::Warning,
                format!("API {replacement} {}", api.resource),
                format!(
                    "cannot list {} to read their annotations: {}",
                    api.resource,
                    crate::errors::kube(&e)
                ),
                format!("grant `list` on `{}` in group `{group}`", api.resource),
            )),
        }
    }
    out
}
