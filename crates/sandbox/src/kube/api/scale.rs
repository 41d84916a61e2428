//! The `scale` subresource of Deployments, StatefulSets and ReplicaSets (`kubectl scale`):
//! an `autoscaling/v1` Scale view of `spec.replicas`, readable and writable by GET, PUT and
//! PATCH. Writes change the workload's `spec.replicas`; the workload simulator does the rest.

use std::sync::Arc;

use axum::http::Method;
use serde_json::{Value, json};

use super::patch::strategic_merge;
use super::status::{ApiError, ApiResult, json_response};
use super::validate::{dry_run, invalid, store_err};
use super::{Api, Request};
use crate::kube::store::{ResourceType, StoreError, Subresource, merge_patch};

/// Whether a type has a `scale` subresource.
pub fn scalable(rt: &ResourceType) -> bool {
    rt.group == "apps"
        && matches!(
            rt.plural.as_str(),
            "deployments" | "statefulsets" | "replicasets"
        )
}

/// The Scale view of a workload.
fn scale_of(obj: &Value) -> Value {
    let meta = |f: &str| {
        obj.pointer(&format!("/metadata/{f}"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta("name"), "namespace": meta("namespace"), "uid": meta("uid"),
            "resourceVersion": meta("resourceVersion"), "creationTimestamp": meta("creationTimestamp"),
        },
        "spec": { "replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1) },
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        },
    })
}

pub fn serve(
    api: &Api,
    req: &Request,
    rt: &Arc<ResourceType>,
    ns: Option<&str>,
    name: &str,
) -> ApiResult {
    let store = &api.world.store;
    if req.method == Method::GET {
        let obj = store.get(rt, ns, name).map_err(store_err(rt))?;
        return Ok(json_response(200, &scale_of(&obj)));
    }
    if req.method != Method::PUT && req.method != Method::PATCH {
        return Err(ApiError::MethodNotAllowed(format!(
            "the server does not allow this method on the requested resource ({} {}/scale)",
            req.method,
            rt.group_resource()
        )));
    }
    let body: Value = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::BadRequest(format!("invalid Scale: {e}")))?;
    let dry = dry_run(&req.query)?;
    let put = req.method == Method::PUT;
    let ct = req.content_type().to_string();
    let json_patch: Option<json_patch::Patch> = if ct == "application/json-patch+json" {
        Some(
            serde_json::from_value(body.clone())
                .map_err(|e| ApiError::BadRequest(format!("invalid JSON patch: {e}")))?,
        )
    } else {
        None
    };
    if !put
        && json_patch.is_none()
        && !matches!(
            ct.as_str(),
            "application/merge-patch+json"
                | "application/strategic-merge-patch+json"
                | "application/apply-patch+yaml"
        )
    {
        return Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format ({ct})"
        )));
    }
    let expected = body
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && json_patch.is_none())
        .map(str::to_string);
    let change = |current: &mut Value| -> Result<(), StoreError> {
        let mut scale = scale_of(current);
        match &json_patch {
            Some(p) => json_patch::patch(&mut scale, p).map_err(|e| {
                StoreError::Invalid(format!("the JSON patch cannot be applied: {e}"))
            })?,
            None if put => scale = body.clone(),
            None if ct == "application/merge-patch+json" => merge_patch(&mut scale, &body),
            None => strategic_merge(&mut scale, &body, "", true),
        }
        let replicas = scale
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .filter(|r| *r >= 0)
            .ok_or_else(|| {
                StoreError::Invalid(
                    "spec.replicas: Invalid value: must be a non-negative integer".into(),
                )
            })?;
        if let Some(spec) = current.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("replicas".into(), json!(replicas));
        }
        Ok(())
    };
    let updated = if dry {
        store.preview_update(rt, ns, name, expected.as_deref(), Subresource::Main, change)
    } else {
        store.update(rt, ns, name, expected.as_deref(), Subresource::Main, change)
    }
    .map_err(|e| match e {
        StoreError::Invalid(m) => invalid(rt, name, "spec.replicas", m),
        other => store_err(rt)(other),
    })?;
    Ok(json_response(200, &scale_of(&updated)))
}
