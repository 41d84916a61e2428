//! Kubernetes `Status` error objects and the JSON responses every handler returns.
//!
//! Clients decide what to do from `code` and `reason` (kube-rs maps them into `ErrorResponse`,
//! kubectl prints `message`), so each error carries the same triple a real API server sends, and
//! the HTTP status always equals `code`.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::kube::store::StoreError;
use crate::world::InjectedFault;

/// One field-level problem, as `details.causes[]` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub reason: &'static str,
    pub message: String,
    pub field: String,
}

/// Everything a request can fail with. Each variant maps to one `reason`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// A store failure, with the resource it happened on (`plural`, `group`).
    #[error("{source}")]
    Store {
        source: StoreError,
        group: String,
        resource: String,
    },
    #[error("{0}")]
    BadRequest(String),
    /// No route: unknown path, group, version, resource or subresource.
    #[error("the server could not find the requested resource")]
    NoRoute,
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    Invalid {
        kind: String,
        group: String,
        name: String,
        message: String,
        causes: Vec<Cause>,
    },
    #[error("Unauthorized")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("{0}")]
    Timeout(String),
    /// A fault the scenario injected in front of this request.
    #[error("{message}")]
    Injected {
        fault: InjectedFault,
        message: String,
    },
}

impl ApiError {
    /// A store error on `resource` of `group`.
    pub fn store(source: StoreError, group: &str, resource: &str) -> Self {
        ApiError::Store {
            source,
            group: group.to_string(),
            resource: resource.to_string(),
        }
    }

    pub fn code(&self) -> u16 {
        match self {
            ApiError::Store { source, .. } => source.status().0,
            ApiError::BadRequest(_) => 400,
            ApiError::NoRoute => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Invalid { .. } => 422,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::TooLarge { .. } => 413,
            ApiError::Timeout(_) => 504,
            ApiError::Injected { fault, .. } => fault.status,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::Store { source, .. } => source.status().1,
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::NoRoute => "NotFound",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::TooLarge { .. } => "RequestEntityTooLarge",
            ApiError::Timeout(_) => "Timeout",
            ApiError::Injected { fault, .. } => match fault.status {
                429 => "TooManyRequests",
                503 => "ServiceUnavailable",
                _ => "InternalError",
            },
        }
    }

    fn details(&self) -> Option<Value> {
        match self {
            ApiError::Store {
                source,
                group,
                resource,
            } => {
                let (name, group, kind) = match source {
                    // A missing namespace is reported on `namespaces`, not on the resource.
                    StoreError::NotFound { kind, name } if kind == "namespaces" => {
                        (name.as_str(), "", "namespaces")
                    }
                    StoreError::NotFound { name, .. }
                    | StoreError::AlreadyExists { name, .. }
                    | StoreError::Conflict { name, .. } => {
                        (name.as_str(), group.as_str(), resource.as_str())
                    }
                    StoreError::Invalid(_) | StoreError::Gone { .. } => return None,
                };
                let mut d = json!({ "name": name, "kind": kind });
                if !group.is_empty() {
                    d["group"] = json!(group);
                }
                Some(d)
            }
            ApiError::Invalid {
                kind,
                group,
                name,
                causes,
                ..
            } => {
                let mut d = json!({
                    "name": name,
                    "kind": kind,
                    "causes": causes.iter().map(|c| json!({
                        "reason": c.reason, "message": c.message, "field": c.field,
                    })).collect::<Vec<_>>(),
                });
                if !group.is_empty() {
                    d["group"] = json!(group);
                }
                Some(d)
            }
            ApiError::Injected { fault, .. } if fault.status == 429 => {
                Some(json!({ "retryAfterSeconds": 1 }))
            }
            _ => None,
        }
    }

    /// The `Status` object for this error.
    pub fn to_status(&self) -> Value {
        status_object(
            self.code(),
            self.reason(),
            &self.to_string(),
            self.details(),
        )
    }
}

/// A failure `Status`, as both HTTP error bodies and watch `ERROR` events carry it.
pub fn status_object(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut s = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(d) = details {
        s["details"] = d;
    }
    s
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = json_response(self.code(), &self.to_status());
        if matches!(&self, ApiError::Injected { fault, .. } if fault.status == 429) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// A JSON response with `code`. Serializing a `Value` cannot fail, but if it ever did the client
/// gets a 500 rather than a panic.
pub fn json_response(code: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match serde_json::to_vec(body) {
        Ok(bytes) => bytes_response(status, "application/json", bytes),
        Err(_) => bytes_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            b"cannot encode the response".to_vec(),
        ),
    }
}

pub fn bytes_response(status: StatusCode, content_type: &'static str, bytes: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub type ApiResult = Result<Response, ApiError>;
