//! A Prometheus-compatible query API over the sandbox's traffic counters: `GET|POST
//! /api/v1/query` (an instant query, `query` and optional `time`) answered in Prometheus's
//! JSON envelope, and `/-/ready`. The queries it evaluates are `promql`'s subset; anything
//! else is refused as Prometheus refuses bad input, `bad_data` with HTTP 400.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value as Json, json};

use super::promql::{self, Value};
use super::series::{Series, unix_now};

pub fn router(series: Arc<Series>) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route(
            "/-/ready",
            get(|| async { "Prometheus Server is Ready.\n" }),
        )
        .route(
            "/-/healthy",
            get(|| async { "Prometheus Server is Healthy.\n" }),
        )
        .with_state(series)
}

async fn query(
    State(series): State<Arc<Series>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    // Parameters come in the URL, and for a POST also as a form body, as Prometheus reads them.
    let mut params: Vec<(String, String)> =
        form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if method == Method::POST && form {
        params.extend(form_urlencoded::parse(&body).into_owned());
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(text) = param("query").filter(|q| !q.trim().is_empty()) else {
        return bad_data("invalid parameter \"query\": no expression given");
    };
    let at = match param("time") {
        None => unix_now(),
        Some(t) => match parse_time(t) {
            Some(at) => at,
            None => {
                return bad_data(format!(
                    "invalid parameter \"time\": `{t}` is neither Unix seconds nor an RFC 3339 time"
                ));
            }
        },
    };
    let expr = match promql::parse(text) {
        Ok(e) => e,
        Err(e) => return bad_data(format!("invalid parameter \"query\": {e}")),
    };
    let data = match promql::eval(&expr, at, series.as_ref()) {
        Value::Scalar(v) => json!({
            "resultType": "scalar",
            "result": [at, promql::format_value(v)],
        }),
        Value::Vector(samples) => json!({
            "resultType": "vector",
            "result": samples
                .into_iter()
                .map(|(labels, v)| json!({"metric": labels, "value": [at, promql::format_value(v)]}))
                .collect::<Vec<Json>>(),
        }),
    };
    axum::Json(json!({"status": "success", "data": data})).into_response()
}

fn parse_time(t: &str) -> Option<f64> {
    t.parse::<f64>().ok().filter(|v| v.is_finite()).or_else(|| {
        chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|d| d.timestamp_millis() as f64 / 1000.0)
    })
}

fn bad_data(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({
            "status": "error",
            "errorType": "bad_data",
            "error": message.into(),
        })),
    )
        .into_response()
}
