//! Amazon Route 53 on loopback, the part a blue/green switch uses: hosted zones
//! (`ListHostedZones`, `ListHostedZonesByName`, `GetHostedZone`), record sets
//! (`ListResourceRecordSets`, `ChangeResourceRecordSets` with weighted sets) and changes
//! (`GetChange`, `PENDING` then `INSYNC`), over Route 53's REST-XML protocol as
//! `aws-sdk-route53` and the AWS CLI speak it (botocore's `route53/2013-04-01` model), errors
//! in the `<ErrorResponse>` envelope with Route 53's codes and statuses.

mod history;
mod xml;
pub mod zones;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::scenario::fqdn;
use crate::world::{ACCESS_KEY, World};
use zones::{RecordSet, Refusal};

const PREFIX: &str = "/2013-04-01/";

/// An error as Route 53 answers it.
struct R53Error {
    status: u16,
    code: &'static str,
    message: String,
}

fn invalid_input(message: impl Into<String>) -> R53Error {
    R53Error {
        status: 400,
        code: "InvalidInput",
        message: message.into(),
    }
}

impl From<Refusal> for R53Error {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NoSuchHostedZone(id) => R53Error {
                status: 404,
                code: "NoSuchHostedZone",
                message: format!("No hosted zone found with ID: {id}"),
            },
            Refusal::NoSuchChange(id) => R53Error {
                status: 404,
                code: "NoSuchChange",
                message: format!("A change with the specified change ID does not exist: {id}"),
            },
            Refusal::InvalidChangeBatch(messages) => R53Error {
                status: 400,
                code: "InvalidChangeBatch",
                message: format!("[{}]", messages.join(", ")),
            },
            Refusal::InvalidInput(m) => invalid_input(m),
        }
    }
}

pub fn router(world: Arc<World>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(world)
}

async fn handle(
    State(world): State<Arc<World>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let path = uri.path().to_string();
    let query = Query(
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect(),
    );
    let param = |k: &str| query.get(k);
    let route = path.strip_prefix(PREFIX).unwrap_or("");
    let parts: Vec<&str> = route.trim_end_matches('/').split('/').collect();
    let operation = match (&method, parts.as_slice()) {
        (&Method::GET, ["hostedzone"]) => "ListHostedZones",
        (&Method::GET, ["hostedzonesbyname"]) => "ListHostedZonesByName",
        (&Method::GET, ["hostedzone", _]) => "GetHostedZone",
        (&Method::GET, ["hostedzone", _, "rrset"]) => "ListResourceRecordSets",
        (&Method::POST, ["hostedzone", _, "rrset"]) => "ChangeResourceRecordSets",
        (&Method::GET, ["change", _]) => "GetChange",
        _ => "",
    };
    let mut detail = None;
    let result = authorized(&headers)
        .and_then(|()| fault(&world, operation))
        .and_then(|()| match operation {
            "ListHostedZones" => list_zones(&world, param("maxitems"), None),
            "ListHostedZonesByName" => {
                list_zones(&world, param("maxitems"), Some(param("dnsname").unwrap_or("")))
            }
            "GetHostedZone" => Ok(xml::get_hosted_zone(&world.route53.zone(parts[1])?)),
            "ListResourceRecordSets" => list_record_sets(&world, parts[1], &query),
            "ChangeResourceRecordSets" => {
                let (changes, comment) = xml::change_request(&body)
                    .map_err(|e| invalid_input(format!("Could not parse the request: {e}")))?;
                if changes.is_empty() {
                    return Err(invalid_input(
                        "1 validation error detected: Value '[]' at 'changeBatch.changes' failed to satisfy constraint: Member must have length greater than or equal to 1",
                    ));
                }
                let change = world.route53.apply(parts[1], &changes, comment)?;
                detail = Some(
                    changes
                        .iter()
                        .map(|c| describe(&c.action, &c.set))
                        .collect::<Vec<_>>()
                        .join("; "),
                );
                Ok(xml::change_response(
                    "ChangeResourceRecordSetsResponse",
                    &change,
                ))
            }
            "GetChange" => Ok(xml::change_response(
                "GetChangeResponse",
                &world.route53.change(parts[1])?,
            )),
            _ => Err(invalid_input(format!(
                "the sandbox does not emulate {method} {path}"
            ))),
        });
    let (status, body) = match result {
        Ok(body) => (200, body),
        Err(e) => {
            detail = Some(format!("error={}", e.code));
            (
                e.status,
                xml::error(e.status, e.code, &e.message, &request_id),
            )
        }
    };
    let name = if operation.is_empty() {
        format!("{method} {path}")
    } else {
        operation.to_string()
    };
    world.requests.push("route53", name, status, detail);
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-requestid", id);
    }
    response
}

/// A request's query string.
struct Query(Vec<(String, String)>);

impl Query {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `UPSERT app.example.com. CNAME green weight 10`, for the request record.
fn describe(action: &str, s: &RecordSet) -> String {
    let mut out = format!("{action} {} {}", s.name, s.kind);
    if let (Some(id), Some(w)) = (&s.set_identifier, s.weight) {
        out.push_str(&format!(" {id} weight {w}"));
    }
    out
}

/// The SigV4 credential scope: the sandbox's access key and the `route53` service (Route 53
/// is global and signs in `us-east-1`). Signatures themselves are not recomputed.
fn authorized(headers: &HeaderMap) -> Result<(), R53Error> {
    let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(R53Error {
            status: 403,
            code: "MissingAuthenticationToken",
            message: "Missing Authentication Token".into(),
        });
    };
    let scope: Vec<&str> = auth
        .split([',', ' '])
        .find_map(|p| p.trim().strip_prefix("Credential="))
        .unwrap_or("")
        .split('/')
        .collect();
    if scope.first() != Some(&ACCESS_KEY) || scope.get(3) != Some(&"route53") {
        return Err(R53Error {
            status: 403,
            code: "InvalidClientTokenId",
            message: "The security token included in the request is invalid.".into(),
        });
    }
    Ok(())
}

/// An injected fault, in Route 53's words: `Throttling` is a 400 there.
fn fault(world: &World, operation: &str) -> Result<(), R53Error> {
    let Some(f) = world.api_faults.take("route53", operation) else {
        return Ok(());
    };
    Err(match f.status {
        429 => R53Error {
            status: 400,
            code: "Throttling",
            message: "Rate exceeded".into(),
        },
        503 => R53Error {
            status: 503,
            code: "ServiceUnavailable",
            message: "Service is unavailable".into(),
        },
        _ => R53Error {
            status: 500,
            code: "InternalFailure",
            message: "An internal error occurred".into(),
        },
    })
}

fn max_items(text: Option<&str>, limit: usize) -> Result<usize, R53Error> {
    match text {
        None => Ok(limit),
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=limit).contains(n))
            .ok_or_else(|| {
                invalid_input(format!(
                    "1 validation error detected: Value '{t}' at 'maxItems' failed to satisfy constraint: Member must be a number between 1 and {limit}"
                ))
            }),
    }
}

fn list_zones(world: &World, max: Option<&str>, by_name: Option<&str>) -> Result<String, R53Error> {
    let max = max_items(max, 100)?;
    let mut zones = world.route53.all();
    zones.sort_by_key(|z| zones::reversed(&z.name));
    if let Some(name) = by_name.filter(|n| !n.is_empty()) {
        let from = zones::reversed(&fqdn(name));
        zones.retain(|z| zones::reversed(&z.name) >= from);
    }
    zones.truncate(max);
    Ok(xml::list_hosted_zones(&zones, max, by_name))
}

fn list_record_sets(world: &World, zone: &str, query: &Query) -> Result<String, R53Error> {
    let param = |k: &str| query.get(k);
    let zone = world.route53.zone(zone)?;
    let max = max_items(param("maxitems"), 300)?;
    if param("type").is_some() && param("name").is_none() {
        return Err(invalid_input(
            "The input is not valid: a record type was given without a record name",
        ));
    }
    let start = param("name").map(|n| RecordSet {
        name: fqdn(n),
        kind: param("type").unwrap_or("").to_ascii_uppercase(),
        set_identifier: param("identifier").map(str::to_string),
        weight: None,
        ttl: None,
        values: Vec::new(),
    });
    let from: Vec<&RecordSet> = zone
        .records
        .iter()
        .filter(|r| start.as_ref().is_none_or(|s| r.order() >= s.order()))
        .collect();
    let page: Vec<RecordSet> = from.iter().take(max).map(|r| (*r).clone()).collect();
    Ok(xml::list_record_sets(&page, from.get(max).copied(), max))
}
