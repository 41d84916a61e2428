//! OpenAPI v3: the index `/openapi/v3` and one document per group-version.
//!
//! kubectl needs these for `apply` with its default `--validate=strict`: it looks in the
//! group-version's document for a PATCH operation tagged with the object's
//! `x-kubernetes-group-version-kind` and a `fieldValidation` query parameter; finding one, it
//! leaves validation to the server and never asks for the protobuf OpenAPI v2 (which the sandbox
//! does not serve). Without it kubectl fails with "failed to download openapi".
//!
//! The PATCH request bodies deliberately do not list `application/strategic-merge-patch+json`:
//! kubectl would then compute strategic merge patches from these (schema-less) documents
//! instead of its compiled-in Go types, losing list merge keys. Schemas are open
//! (`x-kubernetes-preserve-unknown-fields`), since the sandbox validates no fields.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::discovery::git_version;
use super::status::{ApiError, ApiResult, json_response};
use crate::kube::store::ResourceType;
use crate::world::World;

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";

/// Whether a group is built into Kubernetes (as opposed to served from a CRD).
pub fn is_builtin_group(group: &str) -> bool {
    group.is_empty() || !group.contains('.') || group.ends_with(".k8s.io")
}

/// The schema name Kubernetes gives a kind: `io.k8s.api.apps.v1.Deployment` for built-ins, the
/// reversed group for CRDs (`io.velero.v1.Backup`).
fn schema_name(t: &ResourceType) -> String {
    if is_builtin_group(&t.group) {
        let g = if t.group.is_empty() {
            "core"
        } else {
            t.group.split('.').next().unwrap_or("core")
        };
        format!("io.k8s.api.{g}.{}.{}", t.version, t.kind)
    } else {
        let reversed: Vec<&str> = t.group.split('.').rev().collect();
        format!("{}.{}.{}", reversed.join("."), t.version, t.kind)
    }
}

/// `apis/velero.io/v1` or `api/v1`: the index key of a group-version.
fn gv_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn gvk(t: &ResourceType) -> Value {
    json!({ "group": t.group, "version": t.version, "kind": t.kind })
}

fn query_param(name: &str, ty: &str, description: &str) -> Value {
    json!({
        "name": name, "in": "query", "description": description,
        "schema": { "type": ty, "uniqueItems": true },
    })
}

fn path_param(name: &str) -> Value {
    json!({
        "name": name, "in": "path", "required": true,
        "description": format!("{name} of the object"),
        "schema": { "type": "string", "uniqueItems": true },
    })
}

fn response_ref(schema: &str) -> Value {
    let content = json!({ "schema": { "$ref": format!("#/components/schemas/{schema}") } });
    json!({
        "200": { "description": "OK", "content": { "application/json": content.clone(), "application/yaml": content } },
        "401": { "description": "Unauthorized" },
    })
}

fn operation(
    t: &ResourceType,
    action: &str,
    op_id: String,
    schema: &str,
    params: Vec<Value>,
    body: Option<Vec<&str>>,
) -> Value {
    let mut op = json!({
        "operationId": op_id,
        "parameters": params,
        "responses": response_ref(schema),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(t),
    });
    if let Some(types) = body {
        let body_schema =
            json!({ "schema": { "$ref": format!("#/components/schemas/{}", schema_name(t)) } });
        let content: Map<String, Value> = types
            .into_iter()
            .map(|ct| (ct.to_string(), body_schema.clone()))
            .collect();
        op["requestBody"] = json!({ "content": content, "required": true });
    }
    op
}

fn write_params(patch: bool) -> Vec<Value> {
    let mut p = vec![
        query_param(
            "dryRun",
            "string",
            "When present, do not persist the change.",
        ),
        query_param(
            "fieldManager",
            "string",
            "The name of the actor making the change.",
        ),
        query_param(
            "fieldValidation",
            "string",
            "How the server treats unknown or duplicate fields: Ignore, Warn or Strict.",
        ),
    ];
    if patch {
        p.push(query_param("force", "boolean", "Force apply requests."));
    }
    p
}

fn list_params() -> Vec<Value> {
    [
        ("allowWatchBookmarks", "boolean"),
        ("continue", "string"),
        ("fieldSelector", "string"),
        ("labelSelector", "string"),
        ("limit", "integer"),
        ("resourceVersion", "string"),
        ("resourceVersionMatch", "string"),
        ("sendInitialEvents", "boolean"),
        ("timeoutSeconds", "integer"),
        ("watch", "boolean"),
    ]
    .iter()
    .map(|(n, ty)| query_param(n, ty, "See the Kubernetes API conventions."))
    .collect()
}

/// The paths of one resource type.
fn paths_of(t: &ResourceType, paths: &mut Map<String, Value>) {
    let prefix = if t.group.is_empty() {
        format!("/api/{}", t.version)
    } else {
        format!("/apis/{}/{}", t.group, t.version)
    };
    let scoped = if t.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", t.plural)
    } else {
        format!("{prefix}/{}", t.plural)
    };
    let schema = schema_name(t);
    let list_schema = format!("{schema}List");
    let ns = if t.namespaced { "Namespaced" } else { "" };
    let id = |verb: &str, suffix: &str| format!("{verb}{ns}{}{suffix}", t.kind);
    let scope_params: Vec<Value> = if t.namespaced {
        vec![path_param("namespace")]
    } else {
        Vec::new()
    };
    let mut with_name = scope_params.clone();
    with_name.push(path_param("name"));
    let patch_types = vec![
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/apply-patch+yaml",
    ];

    paths.insert(
        scoped.clone(),
        json!({
            "parameters": scope_params,
            "get": operation(t, "list", id("list", ""), &list_schema, list_params(), None),
            "post": operation(t, "post", id("create", ""), &schema, write_params(false), Some(vec!["application/json", "application/yaml"])),
            "delete": operation(t, "deletecollection", id("deleteCollection", ""), STATUS, list_params(), None),
        }),
    );
    if t.namespaced {
        paths.insert(
            format!("{prefix}/{}", t.plural),
            json!({ "get": operation(t, "list", format!("list{}ForAllNamespaces", t.kind), &list_schema, list_params(), None) }),
        );
    }
    paths.insert(
        format!("{scoped}/{{name}}"),
        json!({
            "parameters": with_name,
            "get": operation(t, "get", id("read", ""), &schema, Vec::new(), None),
            "put": operation(t, "put", id("replace", ""), &schema, write_params(false), Some(vec!["application/json", "application/yaml"])),
            "patch": operation(t, "patch", id("patch", ""), &schema, write_params(true), Some(patch_types.clone())),
            "delete": operation(t, "delete", id("delete", ""), &schema, vec![query_param("dryRun", "string", "When present, do not persist the change.")], None),
        }),
    );
    if t.status_subresource {
        paths.insert(
            format!("{scoped}/{{name}}/status"),
            json!({
                "parameters": with_name,
                "get": operation(t, "get", id("read", "Status"), &schema, Vec::new(), None),
                "put": operation(t, "put", id("replace", "Status"), &schema, write_params(false), Some(vec!["application/json", "application/yaml"])),
                "patch": operation(t, "patch", id("patch", "Status"), &schema, write_params(true), Some(patch_types)),
            }),
        );
    }
}

fn schemas_of(t: &ResourceType, schemas: &mut Map<String, Value>) {
    let open = json!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true });
    let name = schema_name(t);
    schemas.insert(
        name.clone(),
        json!({
            "type": "object",
            "description": format!("{} ({}), served by the eks-upgrade sandbox.", t.kind, t.api_version()),
            "properties": {
                "apiVersion": { "type": "string" },
                "kind": { "type": "string" },
                "metadata": { "$ref": format!("#/components/schemas/{OBJECT_META}") },
                "spec": open,
                "status": open,
            },
            "x-kubernetes-preserve-unknown-fields": true,
            "x-kubernetes-group-version-kind": [gvk(t)],
        }),
    );
    schemas.insert(
        format!("{name}List"),
        json!({
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": { "type": "string" },
                "kind": { "type": "string" },
                "metadata": { "$ref": format!("#/components/schemas/{LIST_META}") },
                "items": { "type": "array", "items": { "$ref": format!("#/components/schemas/{name}") } },
            },
            "x-kubernetes-group-version-kind": [{ "group": t.group, "version": t.version, "kind": format!("{}List", t.kind) }],
        }),
    );
}

/// The document of one group-version, or `None` when nothing is served there.
fn document(world: &World, group: &str, version: &str) -> Option<Value> {
    let types: Vec<Arc<ResourceType>> = world
        .store
        .types()
        .into_iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let open = json!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true });
    let mut schemas = Map::new();
    schemas.insert(
        OBJECT_META.into(),
        json!({
            "type": "object",
            "properties": {
                "name": { "type": "string" }, "namespace": { "type": "string" },
                "generateName": { "type": "string" }, "uid": { "type": "string" },
                "resourceVersion": { "type": "string" }, "generation": { "type": "integer", "format": "int64" },
                "creationTimestamp": { "type": "string", "format": "date-time" },
                "labels": { "type": "object", "additionalProperties": { "type": "string" } },
                "annotations": { "type": "object", "additionalProperties": { "type": "string" } },
                "finalizers": { "type": "array", "items": { "type": "string" } },
                "ownerReferences": { "type": "array", "items": open },
                "managedFields": { "type": "array", "items": open },
            },
        }),
    );
    schemas.insert(LIST_META.into(), json!({ "type": "object", "properties": { "continue": { "type": "string" }, "remainingItemCount": { "type": "integer" }, "resourceVersion": { "type": "string" } } }));
    schemas.insert(STATUS.into(), open.clone());
    for t in &types {
        paths_of(t, &mut paths);
        schemas_of(t, &mut schemas);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": git_version(world.control_plane_version()) },
        "paths": paths,
        "components": { "schemas": schemas },
    }))
}

/// A stable content hash for `?hash=`: clients cache documents by it.
fn content_hash(doc: &Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in doc.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

/// `GET /openapi/v3`.
pub fn index(world: &World) -> ApiResult {
    let mut gvs: Vec<(String, String)> = Vec::new();
    for t in world.store.types() {
        let gv = (t.group.clone(), t.version.clone());
        if !gvs.contains(&gv) {
            gvs.push(gv);
        }
    }
    let mut paths = Map::new();
    for (g, v) in gvs {
        if let Some(doc) = document(world, &g, &v) {
            let key = gv_key(&g, &v);
            paths.insert(
                key.clone(),
                json!({ "serverRelativeURL": format!("/openapi/v3/{key}?hash={}", content_hash(&doc)) }),
            );
        }
    }
    Ok(json_response(200, &json!({ "paths": paths })))
}

/// `GET /openapi/v3/api/v1` or `/openapi/v3/apis/G/V` (any `?hash=` is accepted).
pub fn group_version(world: &World, key: &str) -> ApiResult {
    let parts: Vec<&str> = key.split('/').collect();
    let (group, version) = match parts.as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return Err(ApiError::NoRoute),
    };
    let doc = document(world, group, version).ok_or(ApiError::NoRoute)?;
    Ok(json_response(200, &doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        let b = ResourceType::new("velero.io", "v1", "Backup", "backups", true);
        assert_eq!(schema_name(&b), "io.velero.v1.Backup");
        let d = ResourceType::new("apps", "v1", "Deployment", "deployments", true);
        assert_eq!(schema_name(&d), "io.k8s.api.apps.v1.Deployment");
        let c = ResourceType::new("", "v1", "ConfigMap", "configmaps", true);
        assert_eq!(schema_name(&c), "io.k8s.api.core.v1.ConfigMap");
        assert!(is_builtin_group("coordination.k8s.io"));
        assert!(!is_builtin_group("example.com"));
    }
}
