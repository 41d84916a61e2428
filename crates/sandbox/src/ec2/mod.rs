//! The emulated EC2 API: `DescribeSubnets` over EC2's query protocol, as `aws-sdk-ec2` and the
//! AWS CLI speak it — a form-encoded POST (`Action=DescribeSubnets&Version=2016-11-15`,
//! `SubnetId.N`, `Filter.N.Name`, `Filter.N.Value.M`, `MaxResults`, `NextToken`) answered with
//! XML, and errors in EC2's `<Response><Errors>` envelope.
//!
//! The subnets are the scenario's (`spec.subnets`), the same ones EKS `DescribeCluster` and
//! `DescribeNodegroup` name, so a client that follows EKS's subnet ids finds them here.

mod request;
mod xml;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::scenario::{Subnet, is_subnet_id};
use crate::world::{ACCESS_KEY, World};
use eks_upgrade_core::types::glob::matches as glob;
use request::Params;

/// The API version every EC2 query request names.
pub const API_VERSION: &str = "2016-11-15";

/// An EC2 error: the HTTP status, the `Code` and the `Message` of the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2Error {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl Ec2Error {
    fn client(code: &'static str, message: impl Into<String>) -> Ec2Error {
        Ec2Error {
            status: 400,
            code,
            message: message.into(),
        }
    }

    fn auth(message: impl Into<String>) -> Ec2Error {
        Ec2Error {
            status: 401,
            code: "AuthFailure",
            message: message.into(),
        }
    }
}

pub fn router(world: Arc<World>) -> Router {
    Router::new().fallback(serve).with_state(world)
}

async fn serve(
    State(world): State<Arc<World>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    // The SDK and the CLI POST a form; a GET with the same query string is also EC2 query.
    let params = Params::parse(query.as_deref(), &body);
    let action = params.one("Action").unwrap_or("").to_string();
    let operation = if action.is_empty() {
        "(no Action)".to_string()
    } else {
        action.clone()
    };
    let result = answer(&world, &headers, &params, &action);
    let (status, body, detail) = match result {
        Ok((xml, detail)) => (200, xml, detail),
        Err(e) => (
            e.status,
            xml::error(e.code, &e.message, &request_id),
            Some(format!("error={}", e.code)),
        ),
    };
    world.requests.push("ec2", operation, status, detail);
    let body = body.replace(xml::REQUEST_ID_SLOT, &request_id);
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml;charset=UTF-8"),
    );
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-requestid", id);
    }
    response
}

/// The XML body and the request record's detail, or the error to send.
fn answer(
    world: &World,
    headers: &HeaderMap,
    params: &Params,
    action: &str,
) -> Result<(String, Option<String>), Ec2Error> {
    authenticate(world, headers)?;
    if action.is_empty() {
        return Err(Ec2Error::client(
            "MissingAction",
            "The request must contain the parameter Action",
        ));
    }
    if action != "DescribeSubnets" {
        return Err(Ec2Error::client(
            "InvalidAction",
            format!("The action {action} is not valid for this web service."),
        ));
    }
    match params.one("Version") {
        None => {
            return Err(Ec2Error::client(
                "MissingParameter",
                "The request must contain the parameter Version",
            ));
        }
        Some(v) if v != API_VERSION => {
            return Err(Ec2Error::client(
                "NoSuchVersion",
                format!("The requested version ({v}) is not valid."),
            ));
        }
        Some(_) => {}
    }
    if let Some(fault) = world.api_faults.take("ec2", action) {
        return Err(match fault.status {
            429 => Ec2Error {
                status: 503,
                code: "RequestLimitExceeded",
                message: "Request limit exceeded.".into(),
            },
            503 => Ec2Error {
                status: 503,
                code: "Unavailable",
                message: "The server is overloaded and can't handle the request.".into(),
            },
            _ => Ec2Error {
                status: 500,
                code: "InternalError",
                message: "An internal error has occurred.".into(),
            },
        });
    }
    describe_subnets(world, params)
}

/// Checks the SigV4 `Authorization` header's credential scope: the sandbox's access key, the
/// cluster's region and the `ec2` service. Signatures themselves are not recomputed.
fn authenticate(world: &World, headers: &HeaderMap) -> Result<(), Ec2Error> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            Ec2Error::auth("AWS was not able to validate the provided access credentials")
        })?;
    let credential = value
        .split([',', ' '])
        .find_map(|part| part.trim().strip_prefix("Credential="))
        .ok_or_else(|| Ec2Error::auth("Authorization header requires 'Credential' parameter."))?;
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.first() != Some(&ACCESS_KEY) {
        return Err(Ec2Error::auth(
            "AWS was not able to validate the provided access credentials",
        ));
    }
    let region = &world.scenario.spec.cluster.region;
    if scope.get(2) != Some(&region.as_str()) || scope.get(3) != Some(&"ec2") {
        return Err(Ec2Error::auth(
            "Credential should be scoped to a valid region.",
        ));
    }
    Ok(())
}

/// The filter names of `DescribeSubnets` the emulator evaluates (EC2 accepts each under its
/// hyphenated and its camel-case name).
const FILTERS: &[&str] = &[
    "subnet-id",
    "vpc-id",
    "availability-zone",
    "availabilityZone",
    "availability-zone-id",
    "availabilityZoneId",
    "cidr-block",
    "cidr",
    "cidrBlock",
    "state",
    "default-for-az",
    "defaultForAz",
    "owner-id",
];

/// A subnet's value for a filter name from [`FILTERS`].
fn filter_value<'a>(subnet: &'a Subnet, name: &str, owner: &'a str) -> &'a str {
    match name {
        "subnet-id" => &subnet.id,
        "vpc-id" => &subnet.vpc_id,
        "availability-zone" | "availabilityZone" => &subnet.availability_zone,
        "availability-zone-id" | "availabilityZoneId" => &subnet.availability_zone_id,
        "cidr-block" | "cidr" | "cidrBlock" => &subnet.cidr_block,
        "state" => "available",
        "owner-id" => owner,
        _ => "false",
    }
}

fn describe_subnets(world: &World, params: &Params) -> Result<(String, Option<String>), Ec2Error> {
    let scenario = &world.scenario;
    let all = scenario.subnets();
    let ids = params.list("SubnetId");
    for id in &ids {
        if !is_subnet_id(id) {
            return Err(Ec2Error::client(
                "InvalidSubnetID.Malformed",
                format!("Invalid id: \"{id}\""),
            ));
        }
    }
    if let Some(missing) = ids.iter().find(|id| !all.iter().any(|s| s.id == **id)) {
        return Err(Ec2Error::client(
            "InvalidSubnetID.NotFound",
            format!("The subnet ID '{missing}' does not exist"),
        ));
    }
    let filters = params.filters();
    for (name, _) in &filters {
        if !FILTERS.contains(&name.as_str()) {
            return Err(Ec2Error::client(
                "InvalidParameterValue",
                format!("The filter '{name}' is invalid"),
            ));
        }
    }
    let max = match params.one("MaxResults") {
        None => None,
        Some(text) => match text.parse::<usize>() {
            Ok(_) if !ids.is_empty() => {
                return Err(Ec2Error::client(
                    "InvalidParameterCombination",
                    "The parameter SubnetIds cannot be used with the parameter MaxResults",
                ));
            }
            Ok(n) if (5..=1000).contains(&n) => Some(n),
            _ => {
                return Err(Ec2Error::client(
                    "InvalidParameterValue",
                    format!(
                        "Value ( {text} ) for parameter maxResults is invalid. Parameter must be between 5 and 1000."
                    ),
                ));
            }
        },
    };
    let owner = scenario.spec.account.as_str();
    let matching: Vec<&Subnet> = all
        .iter()
        .filter(|s| ids.is_empty() || ids.contains(&s.id.as_str()))
        .filter(|s| {
            filters.iter().all(|(name, values)| {
                let value = filter_value(s, name, owner);
                values.iter().any(|pattern| glob(pattern, value))
            })
        })
        .collect();
    let start = match params.one("NextToken") {
        None | Some("") => 0,
        Some(token) => request::decode_token(token)
            .filter(|o| *o <= matching.len())
            .ok_or_else(|| {
                Ec2Error::client(
                    "InvalidPaginationToken",
                    format!("The token '{token}' is invalid."),
                )
            })?,
    };
    let end = max.map_or(matching.len(), |m| (start + m).min(matching.len()));
    let page = &matching[start..end];
    let next = (end < matching.len()).then(|| request::encode_token(end));
    let region = &scenario.spec.cluster.region;
    let xml = xml::describe_subnets(page, region, owner, next.as_deref());
    let detail = if ids.is_empty() {
        None
    } else {
        Some(format!("subnets={}", ids.join(",")))
    };
    Ok((xml, detail))
}
