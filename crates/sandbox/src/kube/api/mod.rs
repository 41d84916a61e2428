//! The Kubernetes API over HTTPS, as kubectl and kube-rs see a real EKS cluster's API server.
//!
//! One fallback handler takes every request, because Kubernetes paths are data (groups, versions
//! and resources come from the store's registered types). For each request it:
//!
//! 1. reads the whole body, whatever the method — a DELETE carries `DeleteOptions`, and a body
//!    left unread breaks the next request on a kept-alive connection;
//! 2. authenticates the EKS bearer token (`auth`); anonymous callers may read only `/version`
//!    and the health endpoints, as on EKS;
//! 3. consumes an injected fault for `METHOD path` if the scenario has one left;
//! 4. routes to discovery, OpenAPI, metrics, or the resource verbs (`crud`, `list`, `patch`,
//!    `watch`, `scale`, pods' `log`), answering kubectl's `as=Table` requests with server-side Tables
//!    (`table`) and decoding the protobuf bodies of `kubectl create` (`protobuf`);
//! 5. records `METHOD path` and the status in the world's request log (a watch once, when its
//!    stream starts).
//!
//! What is knowingly not emulated: aggregated discovery; protobuf responses (JSON is always
//! sent; kubectl accepts it) and protobuf bodies of kinds `kubectl create` does not make;
//! OpenAPI v2; managedFields, so server-side apply never conflicts; finalizers, graceful
//! deletion and garbage collection (the workload simulator removes the pods of deleted
//! workloads); admission and schema validation (`fieldValidation` is accepted and ignored);
//! subresources other than `status`, `scale` and pods' `log` (no `exec`, `eviction`; logs are
//! made up, see `logs`); and consistent
//! snapshots for paginated lists or exact-version reads (later pages show objects as they are
//! when read).

pub mod auth;
mod crud;
mod discovery;
mod jsonpath;
mod list;
mod logs;
mod metrics;
mod openapi;
mod patch;
mod path;
mod proto_schema;
mod protobuf;
mod scale;
mod status;
mod table;
mod validate;
mod watch;

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};

pub use discovery::git_version;
use path::{Query, Route};
use status::{ApiError, ApiResult};

use crate::world::{ACCESS_KEY, SECRET_KEY, World};

/// Requests larger than this are refused, as the API server refuses bodies over 3 MiB.
const MAX_BODY: usize = 3 * 1024 * 1024;
/// How much of an oversized body is read and dropped before answering, so that the client,
/// still sending, sees the 413 instead of a broken connection.
const MAX_DRAIN: usize = 64 * 1024 * 1024;

/// Reads the whole body. Over `MAX_BODY` the rest is drained (up to `MAX_DRAIN`) and the
/// request refused.
async fn read_body(mut body: axum::body::Body) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(ApiError::BadRequest(
                "the request body could not be read".into(),
            ));
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        seen = seen.saturating_add(data.len());
        if seen <= MAX_BODY {
            buf.extend_from_slice(&data);
        } else if seen > MAX_DRAIN {
            break;
        }
    }
    if seen > MAX_BODY {
        return Err(ApiError::TooLarge { limit: MAX_BODY });
    }
    Ok(buf.freeze())
}

/// The server's state: the world, plus counters for `/metrics`.
pub(crate) struct Api {
    pub world: Arc<World>,
    pub metrics: metrics::Metrics,
}

/// A request with its body read and its query decoded.
pub(crate) struct Request {
    pub method: Method,
    pub query: Query,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Request {
    /// The media type of the body, without parameters (`; charset=utf-8`).
    pub fn content_type(&self) -> &str {
        self.headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::trim)
            .unwrap_or("")
    }
}

pub fn router(world: Arc<World>) -> axum::Router {
    let api = Arc::new(Api {
        world,
        metrics: metrics::Metrics::default(),
    });
    axum::Router::new().fallback(handle).with_state(api)
}

/// The Kubernetes verb (for authorization messages) and the metrics verb of a request.
fn verbs(
    method: &Method,
    route: &Route,
    query: &Query,
    headers: &HeaderMap,
) -> (&'static str, &'static str) {
    let Route::Resource(p) = route else {
        return (
            "get",
            match *method {
                Method::GET => "GET",
                Method::POST => "POST",
                Method::PUT => "PUT",
                Method::DELETE => "DELETE",
                _ => "OTHER",
            },
        );
    };
    let named = p.name.is_some();
    match *method {
        Method::GET if query.flag("watch") => ("watch", "WATCH"),
        Method::GET if named => ("get", "GET"),
        Method::GET => ("list", "LIST"),
        Method::POST => ("create", "POST"),
        Method::PUT => ("update", "PUT"),
        Method::PATCH => {
            let apply = headers
                .get(axum::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/apply-patch"));
            ("patch", if apply { "APPLY" } else { "PATCH" })
        }
        Method::DELETE if named => ("delete", "DELETE"),
        Method::DELETE => ("deletecollection", "DELETECOLLECTION"),
        _ => ("unknown", "OTHER"),
    }
}

async fn handle(State(api): State<Arc<Api>>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let operation = format!("{} {}", parts.method, path);
    let query = Query::parse(parts.uri.query());
    let route = path::parse(&path);
    let (verb, metrics_verb) = verbs(&parts.method, &route, &query, &parts.headers);
    let result = match read_body(body).await {
        Ok(body) => {
            let request = Request {
                method: parts.method,
                query,
                headers: parts.headers,
                body,
            };
            serve(&api, request, &route, &operation, &path, verb).await
        }
        Err(_) => Err(ApiError::TooLarge { limit: MAX_BODY }),
    };
    let response = result.unwrap_or_else(IntoResponse::into_response);
    let code = response.status().as_u16();
    api.world.requests.push_for(
        Some(api.world.cluster_name()),
        "kubernetes",
        operation,
        code,
        None,
    );
    let (group, version, resource, subresource, scope) = match &route {
        Route::Resource(p) => (
            p.group.clone(),
            p.version.clone(),
            p.plural.clone(),
            p.subresource.clone().unwrap_or_default(),
            if p.name.is_some() {
                "resource"
            } else if p.namespace.is_some() {
                "namespace"
            } else {
                "cluster"
            },
        ),
        _ => Default::default(),
    };
    api.metrics.count(metrics::RequestKey {
        verb: metrics_verb,
        group,
        version,
        resource,
        subresource,
        scope,
        code,
    });
    response
}

/// `Forbidden` for an anonymous caller, worded as the API server's authorizer words it.
fn forbidden(route: &Route, path: &str, verb: &str) -> ApiError {
    let user = "User \"system:anonymous\"";
    ApiError::Forbidden(match route {
        Route::Resource(p) => {
            let resource = if p.group.is_empty() {
                p.plural.clone()
            } else {
                format!("{}.{}", p.plural, p.group)
            };
            let scope = match &p.namespace {
                Some(ns) => format!("in the namespace \"{ns}\""),
                None => "at the cluster scope".to_string(),
            };
            let named = p
                .name
                .as_deref()
                .map(|n| format!(" \"{n}\""))
                .unwrap_or_default();
            format!(
                "{resource}{named} is forbidden: {user} cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
                p.plural, p.group
            )
        }
        _ => format!("forbidden: {user} cannot get path \"{path}\""),
    })
}

async fn serve(
    api: &Arc<Api>,
    request: Request,
    route: &Route,
    operation: &str,
    path: &str,
    verb: &str,
) -> ApiResult {
    let world = &api.world;
    let expectation = auth::Expectation {
        cluster: &world.scenario.spec.cluster.name,
        access_key: ACCESS_KEY,
        secret_key: SECRET_KEY,
        now: SystemTime::now(),
    };
    let caller =
        auth::authenticate(&request.headers, &expectation).map_err(|_| ApiError::Unauthorized)?;
    if caller == auth::Caller::Anonymous && !matches!(route, Route::Version | Route::Health) {
        return Err(forbidden(route, path, verb));
    }
    if let Some(fault) = world.api_faults.take("kubernetes", operation) {
        let message = match fault.status {
            429 => "Too many requests, please try again later.".to_string(),
            503 => "the server is currently unable to handle the request".to_string(),
            _ => format!("Internal error occurred: injected fault for {operation}"),
        };
        return Err(ApiError::Injected { fault, message });
    }
    let get_only = |f: &dyn Fn() -> ApiResult| {
        if request.method == Method::GET || request.method == Method::HEAD {
            f()
        } else {
            Err(ApiError::MethodNotAllowed(format!(
                "the server does not allow this method on the requested resource ({} {path})",
                request.method
            )))
        }
    };
    match route {
        Route::Root => get_only(&|| discovery::root(world)),
        Route::Version => get_only(&|| discovery::version(world)),
        Route::Health => {
            get_only(&|| discovery::health(path, request.query.get("verbose").is_some()))
        }
        Route::Metrics => get_only(&|| metrics::render(world, &api.metrics)),
        Route::OpenApiV3Index => get_only(&|| openapi::index(world)),
        Route::OpenApiV3(key) => get_only(&|| openapi::group_version(world, key)),
        Route::OpenApiV2 | Route::NotFound => Err(ApiError::NoRoute),
        Route::CoreVersions => get_only(&|| discovery::core_versions(world)),
        Route::Groups => get_only(&|| discovery::groups(world)),
        Route::Group(g) => get_only(&|| discovery::group(world, g)),
        Route::Resources { group, version } => {
            get_only(&|| discovery::resources(world, group, version))
        }
        Route::Resource(p) => crud::serve(api, request, p).await,
    }
}
