//! PATCH in its four content types.
//!
//! - `application/merge-patch+json`: RFC 7386, exactly.
//! - `application/json-patch+json`: RFC 6902, exactly (the `json-patch` crate).
//! - `application/strategic-merge-patch+json`: approximated. Maps merge as in a merge patch;
//!   lists of objects merge by the merge key Kubernetes declares for well-known fields
//!   (`containers` by `name`, `volumeMounts` by `mountPath`, …) and are replaced otherwise;
//!   `$patch: replace|delete`, `$deleteFromPrimitiveList/…` and `metadata.finalizers` union are
//!   honoured; `$setElementOrder/…` and `$retainKeys` are dropped. Custom resources refuse it
//!   with 415, as real CRDs do, which is what makes kubectl fall back to merge patches for them.
//! - `application/apply-patch+yaml` (server-side apply): approximated as create-or-merge with
//!   the strategic rules above for built-in types and atomic lists for custom resources. No
//!   managedFields are tracked, so there are no conflicts and `force` changes nothing; a
//!   `fieldManager` is still required, as the API server requires it.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::openapi::is_builtin_group;
use super::status::{ApiError, ApiResult, json_response};
use super::validate::{check_type, dry_run, invalid, parse_body, store_err, validate_name};
use super::{Api, Request};
use crate::kube::store::{ResourceType, StoreError, Subresource, merge_patch};

const ACCEPTED: &str =
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";

enum Kind {
    Merge,
    Strategic,
    Json,
    Apply,
}

pub fn patch(
    api: &Api,
    req: &Request,
    rt: &Arc<ResourceType>,
    ns: Option<&str>,
    name: &str,
    sub: Subresource,
) -> ApiResult {
    let builtin = is_builtin_group(&rt.group);
    let kind = match req.content_type() {
        "application/merge-patch+json" => Kind::Merge,
        "application/strategic-merge-patch+json" if builtin => Kind::Strategic,
        "application/json-patch+json" => Kind::Json,
        "application/apply-patch+yaml" => Kind::Apply,
        other => {
            let accepted = if builtin {
                format!("{ACCEPTED}, application/strategic-merge-patch+json")
            } else {
                ACCEPTED.to_string()
            };
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format ({other}) - accepted media types include: {accepted}"
            )));
        }
    };
    let dry = dry_run(&req.query)?;
    let store = &api.world.store;
    let update = |expected: Option<&str>,
                  f: &mut dyn FnMut(&mut Value) -> Result<(), StoreError>| {
        let f = |v: &mut Value| f(v);
        if dry {
            store.preview_update(rt, ns, name, expected, sub, f)
        } else {
            store.update(rt, ns, name, expected, sub, f)
        }
    };

    let updated = match kind {
        Kind::Json => {
            let ops: json_patch::Patch = serde_json::from_slice(&req.body)
                .map_err(|e| ApiError::BadRequest(format!("invalid JSON patch: {e}")))?;
            update(None, &mut |current| {
                let before = current.pointer("/metadata/resourceVersion").cloned();
                json_patch::patch(current, &ops).map_err(|e| {
                    StoreError::Invalid(format!("the JSON patch cannot be applied: {e}"))
                })?;
                // A patch that changes resourceVersion asks for that version: a precondition.
                if current.pointer("/metadata/resourceVersion").cloned() != before {
                    return Err(StoreError::Conflict {
                        kind: rt.group_resource(),
                        name: name.to_string(),
                    });
                }
                Ok(())
            })
        }
        Kind::Merge | Kind::Strategic => {
            let body: Value = serde_json::from_slice(&req.body)
                .map_err(|e| ApiError::BadRequest(format!("invalid patch: {e}")))?;
            if !body.is_object() {
                return Err(ApiError::BadRequest(
                    "a merge patch must be a JSON object".into(),
                ));
            }
            let expected = expected_rv(&body);
            let strategic = matches!(kind, Kind::Strategic);
            update(expected.as_deref(), &mut |current| {
                if strategic {
                    strategic_merge(current, &body, "", true);
                } else {
                    merge_patch(current, &body);
                }
                Ok(())
            })
        }
        Kind::Apply => {
            if req.query.non_empty("fieldManager").is_none() {
                return Err(ApiError::BadRequest(
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into(),
                ));
            }
            let body = parse_body(req)?;
            check_type(rt, &body)?;
            let body_name = body
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            if body_name != name {
                return Err(ApiError::BadRequest(format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({name})"
                )));
            }
            if let (Some(b), Some(p)) = (
                body.pointer("/metadata/namespace").and_then(Value::as_str),
                ns,
            ) && b != p
            {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
            let expected = expected_rv(&body);
            let result = update(expected.as_deref(), &mut |current| {
                strategic_merge(current, &body, "", builtin);
                Ok(())
            });
            match result {
                // Apply creates what does not exist yet (not through `/status`).
                Err(StoreError::NotFound { .. }) if sub == Subresource::Main => {
                    validate_name(rt, name)?;
                    let mut obj = body.clone();
                    if rt.status_subresource
                        && let Some(o) = obj.as_object_mut()
                    {
                        o.remove("status");
                    }
                    let created = if dry {
                        store.preview_create(rt, ns, obj)
                    } else {
                        store.create(rt, ns, obj)
                    }
                    .map_err(store_err(rt))?;
                    return Ok(json_response(201, &created));
                }
                other => other,
            }
        }
    };
    let updated = updated.map_err(|e| match e {
        StoreError::Invalid(message) => invalid(rt, name, "patch", message),
        other => store_err(rt)(other),
    })?;
    Ok(json_response(200, &updated))
}

/// `metadata.resourceVersion` in a patch is a precondition.
fn expected_rv(patch: &Value) -> Option<String> {
    patch
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The merge key Kubernetes declares for a list field, for the common built-in types.
fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    let has = |k: &str| items.iter().any(|i| i.get(k).is_some());
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        // Container ports merge on `containerPort`, service ports on `port`.
        "ports" if has("containerPort") => "containerPort",
        "ports" => "port",
        _ => return None,
    })
}

/// Applies a strategic merge patch (see the module comment for what is approximated). With
/// `keyed` false every list is atomic, as for custom resources under server-side apply.
pub fn strategic_merge(target: &mut Value, patch: &Value, field: &str, keyed: bool) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replacement = p.clone();
        replacement.remove("$patch");
        *target = Value::Object(replacement);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else {
        return;
    };
    for (k, v) in p {
        if k.starts_with("$setElementOrder/") || k == "$retainKeys" || k == "$patch" {
            continue;
        }
        if let Some(list) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(have)), Value::Array(remove)) = (t.get_mut(list), v) {
                have.retain(|x| !remove.contains(x));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        if v.get("$patch").and_then(Value::as_str) == Some("delete") {
            t.remove(k);
            continue;
        }
        match (t.get_mut(k), v) {
            (Some(Value::Array(have)), Value::Array(want)) if keyed => {
                merge_list(have, want, k, field);
            }
            (Some(existing @ Value::Object(_)), Value::Object(_)) => {
                strategic_merge(existing, v, k, keyed);
            }
            _ => {
                let mut fresh = Value::Null;
                strategic_merge(&mut fresh, v, k, keyed);
                if let Value::Array(items) = &mut fresh {
                    strip_directives(items);
                }
                t.insert(k.clone(), fresh);
            }
        }
    }
}

/// Removes `$patch` markers from elements of a list that replaces a missing one.
fn strip_directives(items: &mut Vec<Value>) {
    items.retain(|i| i.get("$patch").and_then(Value::as_str) != Some("delete"));
    for i in items {
        if let Some(o) = i.as_object_mut() {
            o.remove("$patch");
        }
    }
}

fn merge_list(have: &mut Vec<Value>, want: &[Value], field: &str, parent: &str) {
    // `metadata.finalizers` is a set: a patch adds to it.
    if field == "finalizers" && parent == "metadata" {
        for w in want {
            if !have.contains(w) {
                have.push(w.clone());
            }
        }
        return;
    }
    let Some(key) = merge_key(field, want).filter(|_| want.iter().all(Value::is_object)) else {
        let mut replacement = want.to_vec();
        strip_directives(&mut replacement);
        *have = replacement;
        return;
    };
    for w in want {
        let id = w.get(key);
        let existing = id.and_then(|id| have.iter().position(|h| h.get(key) == Some(id)));
        let delete = w.get("$patch").and_then(Value::as_str) == Some("delete");
        match (existing, delete) {
            (Some(i), true) => {
                have.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut have[i], w, field, true),
            (None, false) => {
                let mut fresh = Value::Null;
                strategic_merge(&mut fresh, w, field, true);
                have.push(fresh);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merges_containers_by_name() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "side", "image": "s:1"},
        ]}}}, "metadata": {"finalizers": ["a"], "labels": {"x": "1", "y": "2"}}});
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "side"}],
            "containers": [
                {"name": "web", "image": "a:2", "env": [{"name": "Y", "value": "2"}]},
                {"name": "side", "$patch": "delete"},
            ]}}}, "metadata": {"finalizers": ["b"], "labels": {"y": null}}});
        strategic_merge(&mut d, &patch, "", true);
        let c = &d["spec"]["template"]["spec"]["containers"];
        assert_eq!(c.as_array().unwrap().len(), 1);
        assert_eq!(c[0]["image"], "a:2");
        assert_eq!(c[0]["env"].as_array().unwrap().len(), 2);
        assert_eq!(d["metadata"]["finalizers"], json!(["a", "b"]));
        assert_eq!(d["metadata"]["labels"], json!({"x": "1"}));
    }

    #[test]
    fn atomic_lists_and_directives() {
        let mut d =
            json!({"spec": {"args": ["a", "b"], "tolerations": [{"key": "k"}], "m": {"a": 1}}});
        let patch = json!({"spec": {"args": ["c"], "$deleteFromPrimitiveList/args": ["c"],
            "tolerations": [{"key": "z"}], "m": {"$patch": "replace", "b": 2}}});
        strategic_merge(&mut d, &patch, "", true);
        assert_eq!(d["spec"]["tolerations"], json!([{"key": "z"}]));
        assert_eq!(d["spec"]["m"], json!({"b": 2}));
        let mut cr = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        strategic_merge(
            &mut cr,
            &json!({"spec": {"containers": [{"name": "a", "x": 1}]}}),
            "",
            false,
        );
        assert_eq!(cr["spec"]["containers"], json!([{"name": "a", "x": 1}]));
    }
}
