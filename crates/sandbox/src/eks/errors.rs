//! EKS errors as they travel on the wire, and the operations with the error types each one
//! declares in the service model.
//!
//! The Rust SDK only turns an error into its typed variant when the code is one the *operation*
//! models (a `ResourceInUseException` from DescribeCluster becomes `Unhandled`), so every error
//! leaves through [`Op::answer`], which keeps it within the operation's list.

use std::fmt;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// Header names in the lower case HTTP/2 requires; clients match them case-insensitively.
pub const ERROR_TYPE: &str = "x-amzn-errortype";
pub const REQUEST_ID: &str = "x-amzn-requestid";

/// The error shapes of the EKS model this emulator answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidParameter,
    InvalidRequest,
    Client,
    InvalidState,
    ResourceInUse,
    ResourceNotFound,
    Throttling,
    Server,
    ServiceUnavailable,
    ResourceLimitExceeded,
    UnsupportedAvailabilityZone,
}

impl ErrorKind {
    /// The shape name: the `x-amzn-ErrorType` header and the body's `__type`.
    pub fn type_name(self) -> &'static str {
        match self {
            ErrorKind::InvalidParameter => "InvalidParameterException",
            ErrorKind::InvalidRequest => "InvalidRequestException",
            ErrorKind::Client => "ClientException",
            ErrorKind::InvalidState => "InvalidStateException",
            ErrorKind::ResourceInUse => "ResourceInUseException",
            ErrorKind::ResourceNotFound => "ResourceNotFoundException",
            ErrorKind::Throttling => "ThrottlingException",
            ErrorKind::Server => "ServerException",
            ErrorKind::ServiceUnavailable => "ServiceUnavailableException",
            ErrorKind::ResourceLimitExceeded => "ResourceLimitExceededException",
            ErrorKind::UnsupportedAvailabilityZone => "UnsupportedAvailabilityZoneException",
        }
    }

    /// The HTTP status the model gives the shape (`httpStatusCode`).
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::ResourceInUse => 409,
            ErrorKind::ResourceNotFound => 404,
            ErrorKind::Throttling => 429,
            ErrorKind::Server => 500,
            ErrorKind::ServiceUnavailable => 503,
            _ => 400,
        }
    }

    /// Which of `clusterName`, `nodegroupName`, `addonName` the shape has as members.
    fn members(self) -> (bool, bool, bool) {
        match self {
            ErrorKind::InvalidState | ErrorKind::Throttling => (true, false, false),
            ErrorKind::ServiceUnavailable => (false, false, false),
            ErrorKind::ResourceLimitExceeded | ErrorKind::UnsupportedAvailabilityZone => {
                (true, true, false)
            }
            _ => (true, true, true),
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.type_name())
    }
}

/// An error answer: its shape, message and the resource members the body carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct EksError {
    pub kind: ErrorKind,
    pub message: String,
    pub cluster: Option<String>,
    pub nodegroup: Option<String>,
    pub addon: Option<String>,
}

impl EksError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        EksError {
            kind,
            message: message.into(),
            cluster: None,
            nodegroup: None,
            addon: None,
        }
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        EksError::new(ErrorKind::InvalidParameter, message)
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        EksError::new(ErrorKind::InvalidRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        EksError::new(ErrorKind::ResourceNotFound, message)
    }

    pub fn in_use(message: impl Into<String>) -> Self {
        EksError::new(ErrorKind::ResourceInUse, message)
    }

    /// The real message for an unknown cluster.
    pub fn no_cluster(name: &str) -> Self {
        EksError::not_found(format!("No cluster found for name: {name}.")).cluster(name)
    }

    pub fn cluster(mut self, name: &str) -> Self {
        self.cluster = Some(name.to_string());
        self
    }

    pub fn nodegroup(mut self, name: &str) -> Self {
        self.nodegroup = Some(name.to_string());
        self
    }

    pub fn addon(mut self, name: &str) -> Self {
        self.addon = Some(name.to_string());
        self
    }

    fn body(&self) -> Value {
        let (has_cluster, has_nodegroup, has_addon) = self.kind.members();
        let mut body = Map::new();
        body.insert("__type".into(), json!(self.kind.type_name()));
        body.insert("message".into(), json!(self.message));
        let members = [
            (has_cluster, "clusterName", &self.cluster),
            (has_nodegroup, "nodegroupName", &self.nodegroup),
            (has_addon, "addonName", &self.addon),
        ];
        for (allowed, key, value) in members {
            if let (true, Some(v)) = (allowed, value) {
                body.insert(key.into(), json!(v));
            }
        }
        Value::Object(body)
    }
}

/// The EKS operations the emulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    ListClusters,
    DescribeCluster,
    DescribeClusterVersions,
    UpdateClusterVersion,
    DescribeUpdate,
    ListUpdates,
    CancelUpdate,
    ListNodegroups,
    DescribeNodegroup,
    UpdateNodegroupVersion,
    ListAddons,
    DescribeAddon,
    DescribeAddonVersions,
    UpdateAddon,
    ListInsights,
    DescribeInsight,
    StartInsightsRefresh,
    DescribeInsightsRefresh,
    CreateCluster,
    DeleteCluster,
    CreateNodegroup,
    DeleteNodegroup,
    CreateAddon,
    DeleteAddon,
    ListAccessEntries,
    DescribeAccessEntry,
    CreateAccessEntry,
    AssociateAccessPolicy,
    ListAssociatedAccessPolicies,
    ListFargateProfiles,
}

use ErrorKind::*;

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::ListClusters => "ListClusters",
            Op::DescribeCluster => "DescribeCluster",
            Op::DescribeClusterVersions => "DescribeClusterVersions",
            Op::UpdateClusterVersion => "UpdateClusterVersion",
            Op::DescribeUpdate => "DescribeUpdate",
            Op::ListUpdates => "ListUpdates",
            Op::CancelUpdate => "CancelUpdate",
            Op::ListNodegroups => "ListNodegroups",
            Op::DescribeNodegroup => "DescribeNodegroup",
            Op::UpdateNodegroupVersion => "UpdateNodegroupVersion",
            Op::ListAddons => "ListAddons",
            Op::DescribeAddon => "DescribeAddon",
            Op::DescribeAddonVersions => "DescribeAddonVersions",
            Op::UpdateAddon => "UpdateAddon",
            Op::ListInsights => "ListInsights",
            Op::DescribeInsight => "DescribeInsight",
            Op::StartInsightsRefresh => "StartInsightsRefresh",
            Op::DescribeInsightsRefresh => "DescribeInsightsRefresh",
            Op::CreateCluster => "CreateCluster",
            Op::DeleteCluster => "DeleteCluster",
            Op::CreateNodegroup => "CreateNodegroup",
            Op::DeleteNodegroup => "DeleteNodegroup",
            Op::CreateAddon => "CreateAddon",
            Op::DeleteAddon => "DeleteAddon",
            Op::ListAccessEntries => "ListAccessEntries",
            Op::ListFargateProfiles => "ListFargateProfiles",
            Op::DescribeAccessEntry => "DescribeAccessEntry",
            Op::CreateAccessEntry => "CreateAccessEntry",
            Op::AssociateAccessPolicy => "AssociateAccessPolicy",
            Op::ListAssociatedAccessPolicies => "ListAssociatedAccessPolicies",
        }
    }

    /// The errors the service model declares for the operation.
    pub fn errors(self) -> &'static [ErrorKind] {
        match self {
            Op::DescribeCluster => &[ResourceNotFound, Client, Server, ServiceUnavailable],
            Op::ListClusters => &[InvalidParameter, Client, Server, ServiceUnavailable],
            Op::DescribeClusterVersions => &[Server, InvalidParameter, InvalidRequest],
            Op::UpdateClusterVersion | Op::CancelUpdate => &[
                InvalidParameter,
                Client,
                Server,
                ResourceInUse,
                ResourceNotFound,
                InvalidRequest,
                Throttling,
                InvalidState,
            ],
            Op::DescribeUpdate | Op::ListUpdates => {
                &[InvalidParameter, Client, Server, ResourceNotFound]
            }
            Op::ListNodegroups | Op::DescribeNodegroup => &[
                InvalidParameter,
                Client,
                Server,
                ServiceUnavailable,
                ResourceNotFound,
            ],
            Op::UpdateNodegroupVersion => &[
                InvalidParameter,
                Client,
                Server,
                ResourceInUse,
                ResourceNotFound,
                InvalidRequest,
            ],
            Op::ListAddons | Op::DescribeAddon => &[
                InvalidParameter,
                InvalidRequest,
                Client,
                ResourceNotFound,
                Server,
            ],
            Op::DescribeAddonVersions => &[Server, ResourceNotFound, InvalidParameter],
            Op::UpdateAddon => &[
                InvalidParameter,
                InvalidRequest,
                ResourceNotFound,
                ResourceInUse,
                Client,
                Server,
            ],
            Op::ListInsights
            | Op::DescribeInsight
            | Op::StartInsightsRefresh
            | Op::DescribeInsightsRefresh => {
                &[Server, ResourceNotFound, InvalidRequest, InvalidParameter]
            }
            Op::CreateCluster => &[
                ResourceInUse,
                ResourceLimitExceeded,
                InvalidParameter,
                Client,
                Server,
                ServiceUnavailable,
                UnsupportedAvailabilityZone,
            ],
            Op::DeleteCluster => &[
                ResourceInUse,
                ResourceNotFound,
                Client,
                Server,
                ServiceUnavailable,
                InvalidRequest,
            ],
            Op::CreateNodegroup => &[
                ResourceInUse,
                ResourceLimitExceeded,
                InvalidRequest,
                InvalidParameter,
                Client,
                Server,
                ServiceUnavailable,
            ],
            Op::DeleteNodegroup => &[
                ResourceInUse,
                ResourceNotFound,
                InvalidParameter,
                Client,
                Server,
                ServiceUnavailable,
            ],
            Op::CreateAddon => &[
                InvalidParameter,
                InvalidRequest,
                ResourceNotFound,
                ResourceInUse,
                Client,
                Server,
            ],
            Op::DeleteAddon => &[
                InvalidParameter,
                InvalidRequest,
                ResourceNotFound,
                Client,
                Server,
            ],
            Op::ListAccessEntries | Op::AssociateAccessPolicy => {
                &[Server, ResourceNotFound, InvalidRequest, InvalidParameter]
            }
            Op::ListFargateProfiles => &[InvalidParameter, ResourceNotFound, Client, Server],
            Op::DescribeAccessEntry | Op::ListAssociatedAccessPolicies => {
                &[Server, ResourceNotFound, InvalidRequest]
            }
            Op::CreateAccessEntry => &[
                Server,
                ResourceNotFound,
                InvalidRequest,
                InvalidParameter,
                ResourceLimitExceeded,
                ResourceInUse,
            ],
        }
    }

    /// Whether the operation writes (its request record then names the version asked for).
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Op::UpdateClusterVersion
                | Op::UpdateNodegroupVersion
                | Op::UpdateAddon
                | Op::CancelUpdate
                | Op::CreateCluster
                | Op::DeleteCluster
                | Op::CreateNodegroup
                | Op::DeleteNodegroup
                | Op::CreateAddon
                | Op::DeleteAddon
                | Op::CreateAccessEntry
                | Op::AssociateAccessPolicy
        )
    }

    /// The error kind actually sent for `wanted`: itself when modelled, else the closest one the
    /// operation declares, so SDK clients still get a typed error with the same status class.
    pub fn modelled(self, wanted: ErrorKind) -> ErrorKind {
        let errors = self.errors();
        if errors.contains(&wanted) {
            return wanted;
        }
        let fallbacks: &[ErrorKind] = match wanted {
            Throttling => &[ServiceUnavailable, Server],
            ServiceUnavailable => &[Server],
            Server => &[ServiceUnavailable],
            ResourceNotFound => &[InvalidParameter, Client],
            ResourceLimitExceeded | UnsupportedAvailabilityZone => {
                &[InvalidParameter, InvalidRequest, Client, Server]
            }
            _ => &[InvalidParameter, InvalidRequest, Client, Server],
        };
        fallbacks
            .iter()
            .copied()
            .find(|k| errors.contains(k))
            .unwrap_or(Server)
    }

    /// The error kind for an injected API fault (`throttle`, `unavailable`, `internal`), chosen
    /// among the operation's modelled errors.
    pub fn injected(self, status: u16) -> ErrorKind {
        match status {
            429 => self.modelled(Throttling),
            503 => self.modelled(ServiceUnavailable),
            _ => self.modelled(Server),
        }
    }

    /// The HTTP answer for an error of this operation.
    pub fn answer(self, mut error: EksError, request_id: &str) -> Response {
        error.kind = self.modelled(error.kind);
        let status =
            StatusCode::from_u16(error.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(error.body())).into_response();
        let headers = response.headers_mut();
        headers.insert(ERROR_TYPE, HeaderValue::from_static(error.kind.type_name()));
        if let Ok(id) = HeaderValue::from_str(request_id) {
            headers.insert(REQUEST_ID, id);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Op; 30] = [
        Op::ListClusters,
        Op::DescribeCluster,
        Op::DescribeClusterVersions,
        Op::UpdateClusterVersion,
        Op::DescribeUpdate,
        Op::ListUpdates,
        Op::CancelUpdate,
        Op::ListNodegroups,
        Op::DescribeNodegroup,
        Op::UpdateNodegroupVersion,
        Op::ListAddons,
        Op::DescribeAddon,
        Op::DescribeAddonVersions,
        Op::UpdateAddon,
        Op::ListInsights,
        Op::DescribeInsight,
        Op::StartInsightsRefresh,
        Op::DescribeInsightsRefresh,
        Op::CreateCluster,
        Op::DeleteCluster,
        Op::CreateNodegroup,
        Op::DeleteNodegroup,
        Op::CreateAddon,
        Op::DeleteAddon,
        Op::ListAccessEntries,
        Op::DescribeAccessEntry,
        Op::CreateAccessEntry,
        Op::AssociateAccessPolicy,
        Op::ListAssociatedAccessPolicies,
        Op::ListFargateProfiles,
    ];

    #[test]
    fn every_answer_is_a_modelled_error() {
        let kinds = [
            InvalidParameter,
            InvalidRequest,
            Client,
            InvalidState,
            ResourceInUse,
            ResourceNotFound,
            Throttling,
            Server,
            ServiceUnavailable,
            ResourceLimitExceeded,
            UnsupportedAvailabilityZone,
        ];
        for op in ALL {
            for kind in kinds {
                assert!(op.errors().contains(&op.modelled(kind)), "{op:?} {kind:?}");
            }
            for status in [429, 500, 503] {
                assert!(op.errors().contains(&op.injected(status)));
            }
        }
    }

    #[test]
    fn throttling_only_where_modelled() {
        assert_eq!(Op::UpdateClusterVersion.injected(429), Throttling);
        assert_eq!(Op::DescribeCluster.injected(429), ServiceUnavailable);
        assert_eq!(Op::DescribeUpdate.injected(429), Server);
        assert_eq!(Op::DescribeUpdate.injected(503), Server);
    }

    #[test]
    fn new_shapes_carry_their_members() {
        let e = EksError::new(ResourceLimitExceeded, "x")
            .cluster("c")
            .nodegroup("n")
            .addon("a");
        assert_eq!(
            e.body(),
            json!({"__type": "ResourceLimitExceededException", "message": "x", "clusterName": "c", "nodegroupName": "n"})
        );
        assert_eq!(ResourceLimitExceeded.status(), 400);
        assert_eq!(
            Op::CreateCluster.modelled(ResourceLimitExceeded),
            ResourceLimitExceeded
        );
        assert_eq!(
            Op::DeleteCluster.modelled(ResourceLimitExceeded),
            InvalidRequest
        );
    }

    #[test]
    fn body_carries_only_the_shapes_members() {
        let e = EksError::new(InvalidState, "x").cluster("c").nodegroup("n");
        assert_eq!(
            e.body(),
            json!({"__type": "InvalidStateException", "message": "x", "clusterName": "c"})
        );
    }
}
