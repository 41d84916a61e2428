//! The resource verbs: get, create, replace, delete and deletecollection. List is in `list`,
//! patch in `patch`, watch in `watch`; request checks shared by all of them in `validate`.

use std::sync::Arc;

use axum::http::Method;
use serde_json::{Value, json};

use super::list::{list, selector};
use super::path::ResourcePath;
use super::status::{ApiError, ApiResult, json_response};
use super::validate::{check_type, dry_run, invalid, parse_body, store_err, validate_name};
use super::{Api, Request, logs, patch, scale, table, watch};
use crate::kube::store::{ResourceType, StoreError, Subresource};

/// Routes a resource request to its verb.
pub async fn serve(api: &Arc<Api>, req: Request, p: &ResourcePath) -> ApiResult {
    let store = &api.world.store;
    let rt = store
        .resource(&p.group, &p.version, &p.plural)
        .ok_or(ApiError::NoRoute)?;
    let ns = p.namespace.as_deref();
    let name = p.name.as_deref();
    // A namespaced path for a cluster-scoped type, or a named object of a namespaced type
    // without its namespace, exists on no API server.
    if (ns.is_some() && !rt.namespaced) || (name.is_some() && rt.namespaced && ns.is_none()) {
        return Err(ApiError::NoRoute);
    }
    let sub = match p.subresource.as_deref() {
        None => Subresource::Main,
        Some("status") if rt.status_subresource => Subresource::Status,
        Some("scale") if scale::scalable(&rt) => {
            return match name {
                Some(name) => scale::serve(api, &req, &rt, ns, name),
                None => Err(ApiError::NoRoute),
            };
        }
        Some(sub) if logs::is_log(&rt, Some(sub)) => {
            return match name {
                Some(name) => logs::serve(api, &req, &rt, ns, name),
                None => Err(ApiError::NoRoute),
            };
        }
        Some(_) => return Err(ApiError::NoRoute),
    };
    let not_allowed = || {
        ApiError::MethodNotAllowed(format!(
            "the server does not allow this method on the requested resource ({} {})",
            req.method,
            rt.group_resource()
        ))
    };
    match (&req.method, name) {
        (&Method::GET, _) if req.query.flag("watch") => watch::serve(api, &req, rt, ns, name),
        (&Method::GET, Some(name)) => get(api, &req, &rt, ns, name),
        (&Method::GET, None) => list(api, &req, &rt, ns),
        (&Method::POST, None) if sub == Subresource::Main => {
            if rt.namespaced && ns.is_none() {
                return Err(ApiError::NoRoute);
            }
            create(api, &req, &rt, ns)
        }
        (&Method::PUT, Some(name)) => replace(api, &req, &rt, ns, name, sub),
        (&Method::PATCH, Some(name)) => patch::patch(api, &req, &rt, ns, name, sub),
        (&Method::DELETE, Some(name)) if sub == Subresource::Main => {
            delete(api, &req, &rt, ns, name)
        }
        (&Method::DELETE, None) => delete_collection(api, &req, &rt, ns),
        _ => Err(not_allowed()),
    }
}

fn get(api: &Api, req: &Request, rt: &ResourceType, ns: Option<&str>, name: &str) -> ApiResult {
    let obj = api.world.store.get(rt, ns, name).map_err(store_err(rt))?;
    if table::wanted(&req.headers) {
        return Ok(json_response(200, &table::single(rt, &obj, &req.query)));
    }
    Ok(json_response(200, &obj))
}

/// Server-owned metadata a client may not set on create.
const SERVER_OWNED: [&str; 6] = [
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "generation",
    "selfLink",
    "managedFields",
];

fn create(api: &Api, req: &Request, rt: &Arc<ResourceType>, ns: Option<&str>) -> ApiResult {
    let dry = dry_run(&req.query)?;
    let mut obj = parse_body(req)?;
    check_type(rt, &obj)?;
    let Some(o) = obj.as_object_mut() else {
        return Err(ApiError::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    };
    let meta = o.entry("metadata").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return Err(ApiError::BadRequest("metadata must be an object".into()));
    };
    if meta
        .get("resourceVersion")
        .and_then(Value::as_str)
        .is_some_and(|v| !v.is_empty())
    {
        return Err(ApiError::BadRequest(
            "resourceVersion should not be set on objects to be created".into(),
        ));
    }
    if rt.namespaced {
        if let (Some(body_ns), Some(path_ns)) = (meta.get("namespace").and_then(Value::as_str), ns)
            && !body_ns.is_empty()
            && body_ns != path_ns
        {
            return Err(ApiError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            ));
        }
        if let Some(path_ns) = ns {
            meta.insert("namespace".into(), json!(path_ns));
        }
    } else {
        meta.remove("namespace");
    }
    for field in SERVER_OWNED {
        meta.remove(field);
    }
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty() {
        if meta
            .get("generateName")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(invalid(
                rt,
                "",
                "metadata.name",
                "Required value: name or generateName is required".into(),
            ));
        }
    } else {
        validate_name(rt, &name)?;
    }
    let is_namespace = rt.group.is_empty() && rt.plural == "namespaces";
    if is_namespace {
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }
    // Writes to the main resource never set a status that has its own subresource.
    if rt.status_subresource {
        o.remove("status");
    }
    if is_namespace {
        o.insert("status".into(), json!({ "phase": "Active" }));
        let spec = o.entry("spec").or_insert_with(|| json!({}));
        if let Some(s) = spec.as_object_mut() {
            s.entry("finalizers")
                .or_insert_with(|| json!(["kubernetes"]));
        }
    }
    defaults(rt, o, &name);
    let store = &api.world.store;
    let created = if dry {
        store.preview_create(rt, ns, obj)
    } else {
        store.create(rt, ns, obj)
    }
    .map_err(store_err(rt))?;
    // A Job's selector names its uid, known only once stored (the API server generates both
    // before storing; here the Job is stored, then defaulted, before the answer goes out).
    let created = if rt.group == "batch" && rt.kind == "Job" && !dry {
        let ns = created
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        crate::sim::jobs::apply_defaults(store, &ns, created).map_err(store_err(rt))?
    } else {
        created
    };
    Ok(json_response(201, &created))
}

/// The few defaults the API server fills in that clients read back (`kubectl get` shows them).
fn defaults(rt: &ResourceType, o: &mut serde_json::Map<String, Value>, name: &str) {
    if !rt.group.is_empty() {
        return;
    }
    match rt.kind.as_str() {
        "Secret" => {
            o.entry("type").or_insert_with(|| json!("Opaque"));
        }
        "Pod" => {
            o.insert("status".into(), json!({ "phase": "Pending" }));
        }
        "Service" => {
            let spec = o.entry("spec").or_insert_with(|| json!({}));
            if let Some(s) = spec.as_object_mut() {
                let ty = s
                    .entry("type")
                    .or_insert_with(|| json!("ClusterIP"))
                    .clone();
                if ty != "ExternalName" && s.get("clusterIP").is_none() {
                    // A stable address from the name, inside EKS's default service range.
                    let h = name
                        .bytes()
                        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
                    let ip = format!("10.100.{}.{}", (h >> 8) % 256, h % 254 + 1);
                    s.insert("clusterIP".into(), json!(ip));
                    s.insert("clusterIPs".into(), json!([ip]));
                }
            }
        }
        _ => {}
    }
}

fn replace(
    api: &Api,
    req: &Request,
    rt: &Arc<ResourceType>,
    ns: Option<&str>,
    name: &str,
    sub: Subresource,
) -> ApiResult {
    let dry = dry_run(&req.query)?;
    let obj = parse_body(req)?;
    check_type(rt, &obj)?;
    let body_name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if body_name != name {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    if let (Some(body_ns), Some(path_ns)) = (
        obj.pointer("/metadata/namespace").and_then(Value::as_str),
        ns,
    ) && !body_ns.is_empty()
        && body_ns != path_ns
    {
        return Err(ApiError::BadRequest(
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
        ));
    }
    let expected = obj
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    // Custom resources refuse unconditional updates; built-in types accept them.
    if expected.is_empty() && !super::openapi::is_builtin_group(&rt.group) {
        return Err(invalid(
            rt,
            name,
            "metadata.resourceVersion",
            "Invalid value: 0x0: must be specified for an update".into(),
        ));
    }
    let store = &api.world.store;
    let expected = Some(expected.as_str());
    let apply = |current: &mut Value| {
        *current = obj;
        Ok(())
    };
    let updated = if dry {
        store.preview_update(rt, ns, name, expected, sub, apply)
    } else {
        store.update(rt, ns, name, expected, sub, apply)
    }
    .map_err(store_err(rt))?;
    Ok(json_response(200, &updated))
}

/// `DeleteOptions` from the body (kubectl always sends one) and the query.
fn delete_options(req: &Request) -> Result<(bool, Value), ApiError> {
    let opts: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::BadRequest(format!("invalid DeleteOptions: {e}")))?
    };
    let dry = dry_run(&req.query)?
        || opts
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    Ok((dry, opts))
}

fn delete(
    api: &Api,
    req: &Request,
    rt: &Arc<ResourceType>,
    ns: Option<&str>,
    name: &str,
) -> ApiResult {
    let (dry, opts) = delete_options(req)?;
    let store = &api.world.store;
    let current = store.get(rt, ns, name).map_err(store_err(rt))?;
    for (field, pointer) in [
        ("uid", "/metadata/uid"),
        ("resourceVersion", "/metadata/resourceVersion"),
    ] {
        if let Some(want) = opts
            .get("preconditions")
            .and_then(|p| p.get(field))
            .and_then(Value::as_str)
            && current.pointer(pointer).and_then(Value::as_str) != Some(want)
        {
            return Err(ApiError::store(
                StoreError::Conflict {
                    kind: rt.group_resource(),
                    name: name.to_string(),
                },
                &rt.group,
                &rt.plural,
            ));
        }
    }
    if dry {
        return Ok(json_response(200, &current));
    }
    let deleted = store.delete(rt, ns, name).map_err(store_err(rt))?;
    Ok(json_response(200, &deleted))
}

fn delete_collection(
    api: &Api,
    req: &Request,
    rt: &Arc<ResourceType>,
    ns: Option<&str>,
) -> ApiResult {
    let (dry, _) = delete_options(req)?;
    let selector = selector(&req.query, rt)?;
    let store = &api.world.store;
    let (items, _) = store.list(rt, ns, &selector);
    let mut deleted = Vec::with_capacity(items.len());
    for obj in items {
        if dry {
            deleted.push(obj);
            continue;
        }
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let obj_ns = obj.pointer("/metadata/namespace").and_then(Value::as_str);
        // Something else may delete an object meanwhile; that is not an error here.
        if let Ok(d) = store.delete(rt, obj_ns, name) {
            deleted.push(d);
        }
    }
    Ok(json_response(
        200,
        &json!({
            "kind": format!("{}List", rt.kind),
            "apiVersion": rt.api_version(),
            "metadata": { "resourceVersion": store.resource_version().to_string() },
            "items": deleted,
        }),
    ))
}
