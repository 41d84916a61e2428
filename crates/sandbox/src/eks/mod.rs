//! The emulated EKS API: the REST-JSON subset the tool uses, with the real routes, wire shapes,
//! error types per operation and upgrade rules (eks-api.md is the reference).
//!
//! The router is the account's front: account-wide operations (ListClusters, the version
//! catalogues) are answered here, the others go to the state of the cluster their path names.
//! Every request passes through [`serve`]: injected API faults first, then the operation, then
//! the request record (`requests`, naming the request's cluster) that tests read to prove what
//! the tool did.

mod access;
mod addon_lifecycle;
mod addons;
mod automode;
mod cluster;
mod config;
pub mod errors;
mod fargate;
mod insights;
mod lifecycle;
mod nodegroup_lifecycle;
mod nodegroups;
mod request;
mod rollback;
mod rollback_insights;
pub(crate) mod state;
mod versions;
mod wire;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use errors::{ERROR_TYPE, EksError, ErrorKind, Op, REQUEST_ID};
use request::Query;
use state::Eks;

use crate::account::Account;

/// One parsed request, as the operation handlers see it.
pub(crate) struct Call {
    pub op: Op,
    params: HashMap<String, String>,
    pub query: Query,
    pub body: Value,
}

impl Call {
    /// A path label (`name`, `nodegroupName`, `addonName`, `updateId`, `id`), percent-decoded.
    pub fn param(&self, key: &str) -> &str {
        self.params.get(key).map(String::as_str).unwrap_or("")
    }

    /// The cluster the request is about, after checking it exists.
    pub fn cluster(&self, eks: &Eks) -> Result<&str, EksError> {
        let name = self.param("name");
        eks.check_cluster(name)?;
        Ok(name)
    }
}

type Params = Option<Path<HashMap<String, String>>>;

/// A route handler for one operation.
macro_rules! op {
    ($op:expr) => {
        move |State(account): State<Arc<Account>>,
              params: Params,
              RawQuery(query): RawQuery,
              body: Bytes| { serve($op, account, params, query, body) }
    };
}

pub fn router(account: Arc<Account>) -> Router {
    Router::new()
        .route(
            "/clusters",
            get(op!(Op::ListClusters)).post(op!(Op::CreateCluster)),
        )
        .route(
            "/clusters/{name}",
            get(op!(Op::DescribeCluster)).delete(op!(Op::DeleteCluster)),
        )
        .route(
            "/clusters/{name}/updates",
            get(op!(Op::ListUpdates)).post(op!(Op::UpdateClusterVersion)),
        )
        .route(
            "/clusters/{name}/updates/{updateId}",
            get(op!(Op::DescribeUpdate)),
        )
        .route(
            "/clusters/{name}/updates/{updateId}/cancel-update",
            post(op!(Op::CancelUpdate)),
        )
        .route(
            "/clusters/{name}/node-groups",
            get(op!(Op::ListNodegroups)).post(op!(Op::CreateNodegroup)),
        )
        .route(
            "/clusters/{name}/node-groups/{nodegroupName}",
            get(op!(Op::DescribeNodegroup)).delete(op!(Op::DeleteNodegroup)),
        )
        .route(
            "/clusters/{name}/node-groups/{nodegroupName}/update-version",
            post(op!(Op::UpdateNodegroupVersion)),
        )
        .route(
            "/clusters/{name}/addons",
            get(op!(Op::ListAddons)).post(op!(Op::CreateAddon)),
        )
        .route(
            "/clusters/{name}/addons/{addonName}",
            get(op!(Op::DescribeAddon)).delete(op!(Op::DeleteAddon)),
        )
        .route(
            "/clusters/{name}/access-entries",
            get(op!(Op::ListAccessEntries)).post(op!(Op::CreateAccessEntry)),
        )
        .route(
            "/clusters/{name}/fargate-profiles",
            get(op!(Op::ListFargateProfiles)),
        )
        .route(
            "/clusters/{name}/access-entries/{principalArn}",
            get(op!(Op::DescribeAccessEntry)),
        )
        .route(
            "/clusters/{name}/access-entries/{principalArn}/access-policies",
            get(op!(Op::ListAssociatedAccessPolicies)).post(op!(Op::AssociateAccessPolicy)),
        )
        .route(
            "/clusters/{name}/addons/{addonName}/update",
            post(op!(Op::UpdateAddon)),
        )
        .route(
            "/addons/supported-versions",
            get(op!(Op::DescribeAddonVersions)),
        )
        .route("/clusters/{name}/insights", post(op!(Op::ListInsights)))
        .route(
            "/clusters/{name}/insights/{id}",
            get(op!(Op::DescribeInsight)),
        )
        .route(
            "/clusters/{name}/insights-refresh",
            get(op!(Op::DescribeInsightsRefresh)).post(op!(Op::StartInsightsRefresh)),
        )
        .route("/cluster-versions", get(op!(Op::DescribeClusterVersions)))
        .fallback(unknown)
        .method_not_allowed_fallback(unknown)
        .with_state(account)
}

/// Requests the emulator does not serve: recorded, and answered as API Gateway does.
async fn unknown(State(account): State<Arc<Account>>, method: Method, uri: Uri) -> Response {
    let operation = format!("{method} {}", uri.path());
    // `/clusters/{name}/…` names its cluster even when the operation is not emulated.
    let cluster = uri
        .path()
        .strip_prefix("/clusters/")
        .and_then(|rest| rest.split('/').next())
        .map(|name| {
            form_urlencoded::parse(format!("n={name}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        });
    account.shared.requests.push_for(
        cluster.as_deref(),
        "eks",
        operation.clone(),
        404,
        Some("not emulated".into()),
    );
    let mut response = (
        StatusCode::NOT_FOUND,
        axum::Json(json!({
            "__type": "UnknownOperationException",
            "message": format!("The sandbox does not emulate {operation}"),
        })),
    )
        .into_response();
    response.headers_mut().insert(
        ERROR_TYPE,
        HeaderValue::from_static("UnknownOperationException"),
    );
    response
}

/// What the request record says about a request: the target and, for writes, the version.
fn detail(op: Op, params: &HashMap<String, String>, query: &Query, body: &Value) -> String {
    let mut parts = Vec::new();
    let labels = [
        ("name", "cluster"),
        ("nodegroupName", "nodegroup"),
        ("addonName", "addon"),
        ("updateId", "update"),
        ("id", "insight"),
        ("principalArn", "principal"),
    ];
    for (key, label) in labels {
        if let Some(v) = params
            .get(key)
            .map(String::as_str)
            .or_else(|| query.one(key))
        {
            parts.push(format!("{label}={v}"));
        }
    }
    if let Some(v) = query.one("kubernetesVersion") {
        parts.push(format!("kubernetesVersion={v}"));
    }
    // Creations name what they create in their body.
    for (key, label) in [
        ("name", "cluster"),
        ("nodegroupName", "nodegroup"),
        ("addonName", "addon"),
        ("principalArn", "principal"),
    ] {
        if !params.contains_key(key)
            && let Some(v) = body.get(key).and_then(Value::as_str)
        {
            parts.push(format!("{label}={v}"));
        }
    }
    if op.is_write() {
        for key in ["version", "addonVersion", "releaseVersion"] {
            if let Some(v) = body.get(key).and_then(Value::as_str) {
                parts.push(format!("{key}={v}"));
            }
        }
        if body.get("force").and_then(Value::as_bool) == Some(true) {
            parts.push("force=true".into());
        }
    }
    parts.join(" ")
}

async fn serve(
    op: Op,
    account: Arc<Account>,
    params: Params,
    query: Option<String>,
    body: Bytes,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let params = params.map(|Path(p)| p).unwrap_or_default();
    let query = Query::parse(query.as_deref());
    let body = request::parse_body(&body);
    let null = Value::Null;
    let mut detail = detail(op, &params, &query, body.as_ref().unwrap_or(&null));
    // The cluster the request is about: the path's, or CreateCluster's body `name`.
    let cluster = params.get("name").cloned().or_else(|| {
        body.as_ref()
            .ok()
            .and_then(|b| b.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let requests = account.shared.requests.clone();

    let result = match (account.shared.api_faults.take("eks", op.name()), body) {
        (Some(fault), _) => {
            let kind = op.injected(fault.status);
            detail = format!("{detail} injected={}", kind.type_name())
                .trim()
                .to_string();
            let message = match kind {
                ErrorKind::Throttling => "Rate exceeded",
                ErrorKind::ServiceUnavailable => "Service Unavailable",
                _ => "We encountered an internal error. Please try again.",
            };
            Err(EksError::new(kind, message))
        }
        (None, Err(e)) => Err(e),
        (None, Ok(body)) => handle(
            &account,
            &Call {
                op,
                params,
                query,
                body,
            },
        ),
    };
    let detail = (!detail.is_empty()).then_some(detail);
    match result {
        Ok(mut value) => {
            request::strip_nulls(&mut value);
            requests.push_for(cluster.as_deref(), "eks", op.name(), 200, detail);
            let mut response = axum::Json(value).into_response();
            if let Ok(id) = HeaderValue::from_str(&request_id) {
                response.headers_mut().insert(REQUEST_ID, id);
            }
            response
        }
        Err(error) => {
            let response = op.answer(error, &request_id);
            requests.push_for(
                cluster.as_deref(),
                "eks",
                op.name(),
                response.status().as_u16(),
                detail,
            );
            response
        }
    }
}

/// Account-wide operations here; the others on the state of the cluster the path names.
fn handle(account: &Arc<Account>, call: &Call) -> Result<Value, EksError> {
    match call.op {
        Op::ListClusters => cluster::list_clusters(account, call),
        Op::DescribeClusterVersions => {
            versions::describe_cluster_versions(&account.scenario, &call.query)
        }
        Op::DescribeAddonVersions => addons::describe_addon_versions(&account.scenario, call),
        Op::CreateCluster => lifecycle::create_cluster(account, call),
        _ => {
            let name = call.param("name");
            let eks = account
                .eks(name)
                .ok_or_else(|| EksError::no_cluster(name))?;
            handle_cluster(account, &eks, call)
        }
    }
}

fn handle_cluster(account: &Arc<Account>, eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    match call.op {
        Op::ListClusters
        | Op::DescribeClusterVersions
        | Op::DescribeAddonVersions
        | Op::CreateCluster => Err(EksError::new(ErrorKind::Server, "not a cluster operation")),
        Op::DeleteCluster => lifecycle::delete_cluster(account, eks, call),
        Op::CreateNodegroup => nodegroup_lifecycle::create_nodegroup(eks, call),
        Op::DeleteNodegroup => nodegroup_lifecycle::delete_nodegroup(eks, call),
        Op::CreateAddon => addon_lifecycle::create_addon(eks, call),
        Op::DeleteAddon => addon_lifecycle::delete_addon(eks, call),
        Op::ListAccessEntries => access::list_access_entries(eks, call),
        Op::ListFargateProfiles => fargate::list_fargate_profiles(eks, call),
        Op::DescribeAccessEntry => access::describe_access_entry(eks, call),
        Op::CreateAccessEntry => access::create_access_entry(eks, call),
        Op::AssociateAccessPolicy => access::associate_access_policy(eks, call),
        Op::ListAssociatedAccessPolicies => access::list_associated_access_policies(eks, call),
        Op::DescribeCluster => cluster::describe_cluster(eks, call),
        Op::UpdateClusterVersion => cluster::update_cluster_version(eks, call),
        Op::DescribeUpdate => cluster::describe_update(eks, call),
        Op::ListUpdates => cluster::list_updates(eks, call),
        Op::CancelUpdate => automode::cancel_update(eks, call),
        Op::ListNodegroups => nodegroups::list_nodegroups(eks, call),
        Op::DescribeNodegroup => nodegroups::describe_nodegroup(eks, call),
        Op::UpdateNodegroupVersion => nodegroups::update_nodegroup_version(eks, call),
        Op::ListAddons => addons::list_addons(eks, call),
        Op::DescribeAddon => addons::describe_addon(eks, call),
        Op::UpdateAddon => addons::update_addon(eks, call),
        Op::ListInsights => insights::list_insights(eks, call),
        Op::DescribeInsight => insights::describe_insight(eks, call),
        Op::StartInsightsRefresh => insights::start_refresh(eks, call),
        Op::DescribeInsightsRefresh => insights::describe_refresh(eks, call),
    }
}
