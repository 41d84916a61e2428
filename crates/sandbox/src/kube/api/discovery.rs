//! Discovery: `/version`, `/api`, `/apis`, `/apis/G`, `/api/v1`, `/apis/G/V`, the root list and
//! the health endpoints.
//!
//! Only the legacy (per-group-version) documents are served, as plain `application/json`. kubectl
//! asks for aggregated discovery (`apidiscovery.k8s.io/v2`) first and falls back to these when the
//! answer is plain JSON, so both kubectl and kube-rs work without the aggregated format.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::status::{ApiError, ApiResult, bytes_response, json_response};
use crate::kube::store::ResourceType;
use crate::world::World;
use eks_upgrade_core::types::Version;

/// Every verb a served resource supports.
pub const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// The verbs of a `/status` subresource.
pub const STATUS_VERBS: [&str; 3] = ["get", "patch", "update"];

/// The patch level EKS runs for each minor (plausible values; clients only read the minor).
fn patch_level(version: Version) -> u32 {
    match version.minor {
        ..=28 => 16,
        29 => 15,
        30 => 14,
        31 => 13,
        32 => 9,
        33 => 5,
        34 => 1,
        _ => 0,
    }
}

/// A stable 7-hex-digit "commit" per version (FNV-1a), like the suffix of EKS's `gitVersion`.
fn build_hash(version: Version) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in version.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:016x}", h)
}

/// `gitVersion` as EKS reports it, such as `v1.33.5-eks-3c1a2f0`.
pub fn git_version(version: Version) -> String {
    let hash = build_hash(version);
    format!(
        "v{}.{}.{}-eks-{}",
        version.major,
        version.minor,
        patch_level(version),
        &hash[..7]
    )
}

/// `GET /version`. The installed kubectl is a dispatcher that picks its binary from `minor`, so
/// `minor` is the bare number.
pub fn version(world: &World) -> ApiResult {
    let v = world.control_plane_version();
    let hash = build_hash(v);
    Ok(json_response(
        200,
        &json!({
            "major": v.major.to_string(),
            "minor": v.minor.to_string(),
            "gitVersion": git_version(v),
            "gitCommit": format!("{hash}{hash}{}", &hash[..8]),
            "gitTreeState": "clean",
            "buildDate": "2025-10-01T00:00:00Z",
            "goVersion": "go1.24.6",
            "compiler": "gc",
            "platform": "linux/amd64",
        }),
    ))
}

/// `/healthz`, `/livez`, `/readyz`: always healthy. `?verbose` lists the checks as the API server
/// does.
pub fn health(path: &str, verbose: bool) -> ApiResult {
    let body = if verbose {
        let name = path
            .trim_matches('/')
            .split('/')
            .next()
            .unwrap_or("healthz");
        format!("[+]ping ok\n[+]log ok\n[+]etcd ok\n{name} check passed\n")
    } else {
        "ok".to_string()
    };
    Ok(bytes_response(
        StatusCode::OK,
        "text/plain; charset=utf-8",
        body.into_bytes(),
    ))
}

/// Group-versions in the order types were registered (built-ins first), each once.
fn group_versions(types: &[Arc<ResourceType>]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for t in types {
        let gv = (t.group.clone(), t.version.clone());
        if !out.contains(&gv) {
            out.push(gv);
        }
    }
    out
}

fn gv_string(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// `GET /`.
pub fn root(world: &World) -> ApiResult {
    let mut paths = vec![
        "/api".to_string(),
        "/api/v1".to_string(),
        "/apis".to_string(),
    ];
    let gvs = group_versions(&world.store.types());
    for (g, v) in gvs.iter().filter(|(g, _)| !g.is_empty()) {
        let group = format!("/apis/{g}");
        if !paths.contains(&group) {
            paths.push(group);
        }
        paths.push(format!("/apis/{g}/{v}"));
    }
    for p in [
        "/healthz",
        "/livez",
        "/metrics",
        "/openapi/v2",
        "/openapi/v3",
        "/readyz",
        "/version",
    ] {
        paths.push(p.to_string());
    }
    Ok(json_response(200, &json!({ "paths": paths })))
}

/// `GET /api`.
pub fn core_versions(world: &World) -> ApiResult {
    let address = world
        .endpoints()
        .map(|e| e.kubernetes.trim_start_matches("https://").to_string())
        .unwrap_or_else(|| "127.0.0.1:443".to_string());
    Ok(json_response(
        200,
        &json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": address }],
        }),
    ))
}

fn group_object(group: &str, versions: &[String]) -> Value {
    let entries: Vec<Value> = versions
        .iter()
        .map(|v| json!({ "groupVersion": gv_string(group, v), "version": v }))
        .collect();
    json!({
        "name": group,
        "versions": entries,
        // One version per group is all the sandbox serves; the first registered is preferred.
        "preferredVersion": entries.first().cloned().unwrap_or(Value::Null),
    })
}

fn versions_of(types: &[Arc<ResourceType>], group: &str) -> Vec<String> {
    group_versions(types)
        .into_iter()
        .filter(|(g, _)| g == group)
        .map(|(_, v)| v)
        .collect()
}

/// `GET /apis`.
pub fn groups(world: &World) -> ApiResult {
    let types = world.store.types();
    let mut names: Vec<&str> = Vec::new();
    for t in types.iter().filter(|t| !t.group.is_empty()) {
        if !names.contains(&t.group.as_str()) {
            names.push(&t.group);
        }
    }
    let groups: Vec<Value> = names
        .iter()
        .map(|g| group_object(g, &versions_of(&types, g)))
        .collect();
    Ok(json_response(
        200,
        &json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups }),
    ))
}

/// `GET /apis/G`.
pub fn group(world: &World, group: &str) -> ApiResult {
    let types = world.store.types();
    let versions = versions_of(&types, group);
    if group.is_empty() || versions.is_empty() {
        return Err(ApiError::NoRoute);
    }
    let mut body = group_object(group, &versions);
    body["kind"] = json!("APIGroup");
    body["apiVersion"] = json!("v1");
    Ok(json_response(200, &body))
}

/// Categories kubectl expands `get all` to.
fn categories(t: &ResourceType) -> Option<Vec<String>> {
    let all = matches!(
        (t.group.as_str(), t.plural.as_str()),
        ("", "pods" | "services" | "replicationcontrollers")
            | (
                "apps",
                "deployments" | "statefulsets" | "daemonsets" | "replicasets"
            )
            | ("batch", "jobs" | "cronjobs")
            | ("autoscaling", "horizontalpodautoscalers")
    );
    let mut out: Vec<String> = if all { vec!["all".into()] } else { Vec::new() };
    out.extend(t.categories.iter().cloned());
    (!out.is_empty()).then_some(out)
}

/// The `APIResourceList` entries of one resource type: itself, its `/status`, and for pods `/log`.
pub fn resource_entries(t: &ResourceType) -> Vec<Value> {
    let mut main = json!({
        "name": t.plural,
        "singularName": t.singular,
        "namespaced": t.namespaced,
        "kind": t.kind,
        "verbs": VERBS,
    });
    if !t.short_names.is_empty() {
        main["shortNames"] = json!(t.short_names);
    }
    if let Some(c) = categories(t) {
        main["categories"] = json!(c);
    }
    let mut out = vec![main];
    if t.status_subresource {
        out.push(json!({
            "name": format!("{}/status", t.plural),
            "singularName": "",
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": STATUS_VERBS,
        }));
    }
    if super::logs::is_log(t, Some("log")) {
        out.push(json!({
            "name": "pods/log",
            "singularName": "",
            "namespaced": true,
            "kind": "Pod",
            "verbs": ["get"],
        }));
    }
    if super::scale::scalable(t) {
        out.push(json!({
            "name": format!("{}/scale", t.plural),
            "singularName": "",
            "namespaced": t.namespaced,
            "group": "autoscaling",
            "version": "v1",
            "kind": "Scale",
            "verbs": STATUS_VERBS,
        }));
    }
    out
}

/// `GET /api/v1` and `GET /apis/G/V`.
pub fn resources(world: &World, group: &str, version: &str) -> ApiResult {
    let types = world.store.types();
    let served: Vec<&Arc<ResourceType>> = types
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    // `/api/v1` is the core group; `/apis/v1` is not a group and 404s.
    if served.is_empty() {
        return Err(ApiError::NoRoute);
    }
    let resources: Vec<Value> = served.iter().flat_map(|t| resource_entries(t)).collect();
    Ok(json_response(
        200,
        &json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": gv_string(group, version),
            "resources": resources,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_version_shape() {
        let v = git_version(Version::new(1, 33));
        assert!(v.starts_with("v1.33.5-eks-"), "{v}");
        assert_eq!(v.len(), "v1.33.5-eks-".len() + 7);
        assert_eq!(v, git_version(Version::new(1, 33)));
        assert_ne!(v, git_version(Version::new(1, 34)));
    }
}
