//! The EKS calls the tool makes, as small functions over `aws-sdk-eks`: version catalogue, node
//! groups, add-ons, updates, insights. Errors keep the operation name and the SDK's full message.

use std::time::Duration;

use aws_sdk_eks::types::{UpdateStatus, VersionStatus};
use serde::Serialize;

use crate::types::Version;

/// An EKS call that failed: the operation, what EKS said (its error code and request id, for
/// callers that react to a kind of refusal and for AWS support), and the SDK's error as the
/// cause. Shown as the operation and EKS's own sentence (`crate::errors`), never the SDK's
/// `Debug` output.
#[derive(Debug, thiserror::Error)]
#[error("EKS `{operation}` failed: {message}")]
pub struct EksError {
    pub operation: &'static str,
    /// The error code (`ResourceInUseException`, …) when EKS answered with one.
    pub code: Option<Box<str>>,
    /// The request id EKS gave the call, when it answered.
    pub request_id: Option<Box<str>>,
    /// What went wrong, in one line: EKS's code and message, or why no answer came. (Boxed
    /// strings keep step errors, which carry this, small.)
    pub message: Box<str>,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl EksError {
    /// A failure EKS did not report but the tool found in its answer.
    pub fn answer(operation: &'static str, what: &str) -> Self {
        EksError {
            operation,
            code: None,
            request_id: None,
            message: what.into(),
            source: what.into(),
        }
    }

    /// Whether EKS answered with this error code.
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

pub(crate) fn eks_error<
    E: aws_sdk_eks::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
>(
    operation: &'static str,
    e: aws_sdk_eks::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> EksError {
    let failure = crate::errors::aws("EKS", operation, &e);
    EksError {
        operation,
        code: failure.code.map(Into::into),
        request_id: failure.request_id.map(Into::into),
        message: failure.message.into(),
        source: Box::new(e),
    }
}

/// A version EKS offers.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferedVersion {
    pub version: Version,
    /// `STANDARD_SUPPORT`, `EXTENDED_SUPPORT` or `UNSUPPORTED`.
    pub status: String,
    pub end_of_standard_support: Option<String>,
    /// When EKS released the version: AMIs for it exist only from this day on.
    #[serde(skip)]
    pub release_date: Option<chrono::NaiveDate>,
}

pub async fn offered_versions(eks: &aws_sdk_eks::Client) -> Result<Vec<OfferedVersion>, EksError> {
    let mut out = Vec::new();
    let mut pages = eks.describe_cluster_versions().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| eks_error("DescribeClusterVersions", e))?;
        for v in page.cluster_versions() {
            let Some(version) = v.cluster_version().and_then(|s| s.parse::<Version>().ok()) else {
                continue;
            };
            let status = v
                .version_status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            if v.version_status() == Some(&VersionStatus::Unsupported) {
                continue;
            }
            out.push(OfferedVersion {
                version,
                status,
                end_of_standard_support: v.end_of_standard_support_date().map(|d| d.to_string()),
                release_date: v
                    .release_date()
                    .and_then(|d| chrono::DateTime::from_timestamp(d.secs(), 0))
                    .map(|t| t.date_naive()),
            });
        }
    }
    out.sort_by_key(|v| v.version);
    Ok(out)
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodegroupInfo {
    pub name: String,
    pub version: Option<Version>,
    pub release_version: Option<String>,
    pub status: String,
    pub desired_size: i32,
    pub ami_type: Option<String>,
    pub health_issues: Vec<String>,
    /// The group's subnets, for the free-address check.
    #[serde(skip)]
    pub subnets: Vec<String>,
    /// `updateConfig`: how many nodes (or what percentage) an update replaces at a time.
    #[serde(skip)]
    pub max_unavailable: Option<i32>,
    #[serde(skip)]
    pub max_unavailable_percentage: Option<i32>,
}

pub async fn nodegroups(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
) -> Result<Vec<NodegroupInfo>, EksError> {
    let mut names = Vec::new();
    let mut pages = eks
        .list_nodegroups()
        .cluster_name(cluster)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        names.extend(
            page.map_err(|e| eks_error("ListNodegroups", e))?
                .nodegroups()
                .iter()
                .cloned(),
        );
    }
    let mut out = Vec::new();
    for name in names {
        out.push(nodegroup(eks, cluster, &name).await?);
    }
    Ok(out)
}

pub async fn nodegroup(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    name: &str,
) -> Result<NodegroupInfo, EksError> {
    let resp = eks
        .describe_nodegroup()
        .cluster_name(cluster)
        .nodegroup_name(name)
        .send()
        .await
        .map_err(|e| eks_error("DescribeNodegroup", e))?;
    let ng = resp.nodegroup();
    Ok(NodegroupInfo {
        name: name.to_string(),
        version: ng.and_then(|n| n.version()).and_then(|v| v.parse().ok()),
        release_version: ng.and_then(|n| n.release_version()).map(str::to_string),
        status: ng
            .and_then(|n| n.status())
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        desired_size: ng
            .and_then(|n| n.scaling_config())
            .and_then(|s| s.desired_size())
            .unwrap_or(0),
        ami_type: ng
            .and_then(|n| n.ami_type())
            .map(|a| a.as_str().to_string()),
        health_issues: ng
            .and_then(|n| n.health())
            .map(|h| {
                h.issues()
                    .iter()
                    .map(|i| {
                        format!(
                            "{}: {}",
                            i.code().map(|c| c.as_str()).unwrap_or("?"),
                            i.message().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        subnets: ng.map(|n| n.subnets().to_vec()).unwrap_or_default(),
        max_unavailable: ng
            .and_then(|n| n.update_config())
            .and_then(|u| u.max_unavailable()),
        max_unavailable_percentage: ng
            .and_then(|n| n.update_config())
            .and_then(|u| u.max_unavailable_percentage()),
    })
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddonInfo {
    pub name: String,
    pub version: String,
    pub status: String,
    #[serde(skip)]
    pub configuration_values: Option<String>,
    pub service_account_role_arn: Option<String>,
    pub health_issues: Vec<String>,
}

pub async fn addons(eks: &aws_sdk_eks::Client, cluster: &str) -> Result<Vec<AddonInfo>, EksError> {
    let mut names = Vec::new();
    let mut pages = eks
        .list_addons()
        .cluster_name(cluster)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        names.extend(
            page.map_err(|e| eks_error("ListAddons", e))?
                .addons()
                .iter()
                .cloned(),
        );
    }
    let mut out = Vec::new();
    for name in names {
        out.push(addon(eks, cluster, &name).await?);
    }
    Ok(out)
}

pub async fn addon(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    name: &str,
) -> Result<AddonInfo, EksError> {
    let resp = eks
        .describe_addon()
        .cluster_name(cluster)
        .addon_name(name)
        .send()
        .await
        .map_err(|e| eks_error("DescribeAddon", e))?;
    let a = resp.addon();
    Ok(AddonInfo {
        name: name.to_string(),
        version: a
            .and_then(|a| a.addon_version())
            .unwrap_or_default()
            .to_string(),
        status: a
            .and_then(|a| a.status())
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        configuration_values: a.and_then(|a| a.configuration_values()).map(str::to_string),
        service_account_role_arn: a
            .and_then(|a| a.service_account_role_arn())
            .map(str::to_string),
        health_issues: a
            .and_then(|a| a.health())
            .map(|h| {
                h.issues()
                    .iter()
                    .map(|i| {
                        format!(
                            "{}: {}",
                            i.code().map(|c| c.as_str()).unwrap_or("?"),
                            i.message().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// An add-on version EKS offers for a Kubernetes version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddonVersion {
    pub version: String,
    pub default: bool,
}

/// Versions of `addon` compatible with `kubernetes`, newest first as EKS lists them.
pub async fn addon_versions(
    eks: &aws_sdk_eks::Client,
    addon: &str,
    kubernetes: Version,
) -> Result<Vec<AddonVersion>, EksError> {
    let mut out = Vec::new();
    let mut pages = eks
        .describe_addon_versions()
        .addon_name(addon)
        .kubernetes_version(kubernetes.to_string())
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for info in page
            .map_err(|e| eks_error("DescribeAddonVersions", e))?
            .addons()
        {
            for v in info.addon_versions() {
                let compatible: Vec<_> = v
                    .compatibilities()
                    .iter()
                    .filter(|c| c.cluster_version() == Some(kubernetes.to_string().as_str()))
                    .collect();
                if compatible.is_empty() {
                    continue;
                }
                out.push(AddonVersion {
                    version: v.addon_version().unwrap_or_default().to_string(),
                    default: compatible.iter().any(|c| c.default_version()),
                });
            }
        }
    }
    Ok(out)
}

/// An update as DescribeUpdate reports it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateState {
    pub id: String,
    pub status: String,
    pub kind: String,
    pub version: Option<String>,
    /// `ErrorCode: message [resources]` for each error.
    pub errors: Vec<String>,
}

impl UpdateState {
    pub fn finished(&self) -> bool {
        self.status != UpdateStatus::InProgress.as_str()
    }
    pub fn succeeded(&self) -> bool {
        self.status == UpdateStatus::Successful.as_str()
    }
}

pub fn update_state(u: &aws_sdk_eks::types::Update) -> UpdateState {
    UpdateState {
        id: u.id().unwrap_or_default().to_string(),
        status: u
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        kind: u
            .r#type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        version: u
            .params()
            .iter()
            .find(|p| p.r#type().map(|t| t.as_str()) == Some("Version"))
            .and_then(|p| p.value())
            .map(str::to_string),
        errors: u
            .errors()
            .iter()
            .map(|e| {
                let ids = e.resource_ids().join(", ");
                let code = e.error_code().map(|c| c.as_str()).unwrap_or("Unknown");
                let msg = e.error_message().unwrap_or("");
                if ids.is_empty() {
                    format!("{code}: {msg}")
                } else {
                    format!("{code}: {msg} [{ids}]")
                }
            })
            .collect(),
    }
}

/// Whose update: the cluster's, a node group's or an add-on's.
#[derive(Debug, Clone, Copy)]
pub enum UpdateOf<'a> {
    Cluster,
    Nodegroup(&'a str),
    Addon(&'a str),
}

pub async fn describe_update(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    id: &str,
    of: UpdateOf<'_>,
) -> Result<UpdateState, EksError> {
    let mut req = eks.describe_update().name(cluster).update_id(id);
    match of {
        UpdateOf::Cluster => {}
        UpdateOf::Nodegroup(n) => req = req.nodegroup_name(n),
        UpdateOf::Addon(a) => req = req.addon_name(a),
    }
    let resp = req
        .send()
        .await
        .map_err(|e| eks_error("DescribeUpdate", e))?;
    resp.update()
        .map(update_state)
        .ok_or_else(|| EksError::answer("DescribeUpdate", "the response has no update"))
}

/// Updates still in progress, for adopting one a crashed run started.
pub async fn in_progress_updates(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    of: UpdateOf<'_>,
) -> Result<Vec<UpdateState>, EksError> {
    let mut ids = Vec::new();
    let mut req = eks.list_updates().name(cluster);
    match of {
        UpdateOf::Cluster => {}
        UpdateOf::Nodegroup(n) => req = req.nodegroup_name(n),
        UpdateOf::Addon(a) => req = req.addon_name(a),
    }
    let mut pages = req.into_paginator().send();
    while let Some(page) = pages.next().await {
        ids.extend(
            page.map_err(|e| eks_error("ListUpdates", e))?
                .update_ids()
                .iter()
                .cloned(),
        );
    }
    let mut out = Vec::new();
    for id in ids {
        let u = describe_update(eks, cluster, &id, of).await?;
        if !u.finished() {
            out.push(u);
        }
    }
    Ok(out)
}

/// Polls DescribeUpdate with backoff (a quarter second, doubling up to 30 s) until the update
/// finishes.
/// The timeout is the caller's.
pub async fn wait_update(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    id: &str,
    of: UpdateOf<'_>,
    mut on_poll: impl FnMut(&UpdateState),
) -> Result<UpdateState, EksError> {
    let mut delay = Duration::from_millis(250);
    let mut transient = 0u32;
    loop {
        match describe_update(eks, cluster, id, of).await {
            Ok(state) => {
                transient = 0;
                on_poll(&state);
                if state.finished() {
                    return Ok(state);
                }
            }
            // A poll is read-only; a few failures in a row are worth riding out.
            Err(e) if transient < 5 => {
                transient += 1;
                let _ = e;
            }
            Err(e) => return Err(e),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}
