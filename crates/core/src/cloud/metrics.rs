//! Instant queries against a Prometheus-compatible HTTP API (`GET /api/v1/query`): Prometheus
//! itself, Thanos, Mimir, or Amazon Managed Service for Prometheus behind a signing proxy. A
//! blue/green run reads request and error counts per cluster from it to judge each traffic
//! stage, as Flagger's and Argo Rollouts' analyses do.
//!
//! An empty answer (no series matched) or `NaN` is `None`: "cannot judge", which is not the
//! same as zero errors.

use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

/// Why a query has no number.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("`{url}` is not a URL the query API can be reached at")]
    BadUrl {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "cannot reach the Prometheus query API at `{url}`: {}",
        crate::errors::chain(source)
    )]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The API answered with its own error (`bad_data` for a query it cannot parse,
    /// `timeout`, `execution`, …).
    #[error("Prometheus refused the query ({error_type}): {message}")]
    Refused {
        status: u16,
        error_type: String,
        message: String,
    },
    /// An answer that is not the query API's JSON, such as a 404 page from a wrong URL.
    #[error("`{url}` answered HTTP {status}, not a Prometheus query result")]
    NotPrometheus { url: String, status: u16 },
    #[error("the Prometheus answer cannot be read: {why}")]
    Answer {
        why: String,
        #[source]
        source: Option<serde_json::Error>,
    },
    #[error("the query returned {count} series; the tool needs one number")]
    ManySeries { count: usize },
    #[error("the query returned a `{result_type}`; the tool reads a vector or a scalar")]
    Unsupported { result_type: String },
}

impl MetricsError {
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            MetricsError::ManySeries { .. } => {
                Some("aggregate the query to one series, such as `sum(increase(…[{window}]))`")
            }
            MetricsError::Unsupported { .. } => {
                Some("a range selector must be inside a function such as `increase(…)`")
            }
            MetricsError::NotPrometheus { .. } | MetricsError::BadUrl { .. } => Some(
                "give the base URL of the query API, such as `http://prometheus:9090`; the tool adds `/api/v1/query`",
            ),
            _ => None,
        }
    }
}

/// How long one query may take before it counts as unanswered.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The URL as shown in messages: without credentials, query or fragment.
pub fn shown(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string().trim_end_matches('/').to_string()
        }
        Err(_) => "<the configured URL>".to_string(),
    }
}

/// The query endpoint under `base`, with the query.
fn endpoint(base: &str, query: &str) -> Result<Url, MetricsError> {
    let joined = format!("{}/api/v1/query", base.trim_end_matches('/'));
    let mut url = Url::parse(&joined).map_err(|e| MetricsError::BadUrl {
        url: shown(base),
        source: Box::new(e),
    })?;
    url.query_pairs_mut().append_pair("query", query);
    Ok(url)
}

/// Runs an instant query at the current time and returns its one number; `None` when no series
/// matched or the value is `NaN` (such as 0/0).
pub async fn instant(
    http: &reqwest::Client,
    base: &str,
    query: &str,
) -> Result<Option<f64>, MetricsError> {
    let url = endpoint(base, query)?;
    let response = http
        .get(url)
        .timeout(QUERY_TIMEOUT)
        .send()
        .await
        .map_err(|source| MetricsError::Unreachable {
            url: shown(base),
            // reqwest's message names the URL, credentials included.
            source: source.without_url(),
        })?;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|source| MetricsError::Unreachable {
            url: shown(base),
            // reqwest's message names the URL, credentials included.
            source: source.without_url(),
        })?;
    parse(status, &body).map_err(|e| match e {
        MetricsError::NotPrometheus { status, .. } => MetricsError::NotPrometheus {
            url: shown(base),
            status,
        },
        other => other,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    status: String,
    data: Option<Data>,
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct VectorSample {
    value: (f64, String),
}

/// One number from a query API answer with HTTP status `status`.
pub fn parse(status: u16, body: &[u8]) -> Result<Option<f64>, MetricsError> {
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(e) => e,
        // Prometheus answers every status of its API as JSON; anything else is not it.
        Err(_) if !(200..300).contains(&status) => {
            return Err(MetricsError::NotPrometheus {
                url: String::new(),
                status,
            });
        }
        Err(e) => {
            return Err(MetricsError::Answer {
                why: "it is not the query API's JSON".into(),
                source: Some(e),
            });
        }
    };
    if envelope.status != "success" {
        return Err(MetricsError::Refused {
            status,
            error_type: envelope.error_type.unwrap_or_else(|| "unknown".into()),
            message: envelope.error.unwrap_or_else(|| "no message".into()),
        });
    }
    let data = envelope.data.ok_or_else(|| MetricsError::Answer {
        why: "a successful answer has no `data`".into(),
        source: None,
    })?;
    let answer = |source: serde_json::Error| MetricsError::Answer {
        why: format!("its `{}` result is malformed", data.result_type),
        source: Some(source),
    };
    let text = match data.result_type.as_str() {
        "vector" => {
            let samples: Vec<VectorSample> =
                serde_json::from_value(data.result.clone()).map_err(answer)?;
            match samples.as_slice() {
                [] => return Ok(None),
                [one] => one.value.1.clone(),
                many => return Err(MetricsError::ManySeries { count: many.len() }),
            }
        }
        "scalar" => {
            let (_, v): (f64, String) =
                serde_json::from_value(data.result.clone()).map_err(answer)?;
            v
        }
        other => {
            return Err(MetricsError::Unsupported {
                result_type: other.to_string(),
            });
        }
    };
    let value = number(&text).ok_or_else(|| MetricsError::Answer {
        why: format!("`{text}` is not a number"),
        source: None,
    })?;
    Ok((!value.is_nan()).then_some(value))
}

/// A sample value as Prometheus writes it: a decimal, `NaN`, `+Inf` or `-Inf`.
fn number(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse::<f64>().ok().filter(|v| v.is_finite()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shapes from Prometheus's HTTP API documentation (`/api/v1/query`).

    #[test]
    fn a_vector_with_one_sample_is_its_value() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"cluster":"demo-1-35","host":"app.example.com"},"value":[1435781451.781,"12.5"]}]}}"#;
        assert_eq!(parse(200, body).unwrap(), Some(12.5));
    }

    #[test]
    fn an_empty_vector_or_nan_cannot_be_judged() {
        let empty = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(parse(200, empty).unwrap(), None);
        let nan = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#;
        assert_eq!(parse(200, nan).unwrap(), None);
    }

    #[test]
    fn a_scalar_is_its_value() {
        let body = br#"{"status":"success","data":{"resultType":"scalar","result":[1435781451.781,"0.25"]}}"#;
        assert_eq!(parse(200, body).unwrap(), Some(0.25));
        let inf = br#"{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}"#;
        assert_eq!(parse(200, inf).unwrap(), Some(f64::INFINITY));
    }

    #[test]
    fn warnings_are_tolerated() {
        let body = br#"{"status":"success","warnings":["partial"],"data":{"resultType":"scalar","result":[1,"3"]}}"#;
        assert_eq!(parse(200, body).unwrap(), Some(3.0));
    }

    #[test]
    fn several_series_a_matrix_or_a_string_are_refused() {
        let many = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"status":"500"},"value":[1,"1"]},{"metric":{"status":"502"},"value":[1,"2"]}]}}"#;
        assert!(matches!(
            parse(200, many),
            Err(MetricsError::ManySeries { count: 2 })
        ));
        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{},"values":[[1,"1"],[2,"2"]]}]}}"#;
        let err = parse(200, matrix).unwrap_err();
        assert!(
            matches!(&err, MetricsError::Unsupported { result_type } if result_type == "matrix")
        );
        assert!(err.hint().is_some());
        let string = br#"{"status":"success","data":{"resultType":"string","result":[1,"x"]}}"#;
        assert!(matches!(
            parse(200, string),
            Err(MetricsError::Unsupported { .. })
        ));
    }

    #[test]
    fn the_apis_errors_keep_their_type_and_message() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error"}"#;
        match parse(400, body) {
            Err(MetricsError::Refused {
                status,
                error_type,
                message,
            }) => {
                assert_eq!(status, 400);
                assert_eq!(error_type, "bad_data");
                assert!(message.contains("parse error"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn what_is_not_the_api_is_named_so() {
        assert!(matches!(
            parse(404, b"404 page not found"),
            Err(MetricsError::NotPrometheus { status: 404, .. })
        ));
        assert!(matches!(
            parse(200, b"<html>"),
            Err(MetricsError::Answer {
                source: Some(_),
                ..
            })
        ));
        let bad_value =
            br#"{"status":"success","data":{"resultType":"scalar","result":[1,"many"]}}"#;
        assert!(matches!(
            parse(200, bad_value),
            Err(MetricsError::Answer { .. })
        ));
        let no_data = br#"{"status":"success"}"#;
        assert!(matches!(
            parse(200, no_data),
            Err(MetricsError::Answer { .. })
        ));
    }

    #[test]
    fn the_query_goes_in_the_url_and_credentials_never_in_messages() {
        let url = endpoint("http://prom:9090/", r#"sum(x{a="b"})"#).unwrap();
        assert_eq!(url.path(), "/api/v1/query");
        assert_eq!(
            url.query_pairs()
                .next()
                .map(|(k, v)| (k.into_owned(), v.into_owned())),
            Some(("query".into(), r#"sum(x{a="b"})"#.into()))
        );
        assert_eq!(
            shown("https://user:secret@prom.example.com/prefix?x=1"),
            "https://prom.example.com/prefix"
        );
        assert!(matches!(
            endpoint("not a url", "q"),
            Err(MetricsError::BadUrl { .. })
        ));
    }
}
