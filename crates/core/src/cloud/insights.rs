//! EKS insights: upgrade readiness for the hop versions, misconfiguration, and rollback
//! readiness before a version rollback — ListInsights, then DescribeInsight for what each one
//! found (deprecated-API clients with their user agents, incompatible add-ons, the node groups,
//! nodes and pods it names).

use std::time::Duration;

use aws_sdk_eks::types::{Category, InsightStatusValue, InsightsFilter, InsightsRefreshStatus};
use serde::{Deserialize, Serialize};

use super::eks::{EksError, eks_error};
use crate::types::Version;

/// An insight that is not passing, with the details DescribeInsight adds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InsightInfo {
    pub id: String,
    pub name: String,
    pub kubernetes_version: String,
    /// `ERROR`, `WARNING` or `UNKNOWN`.
    pub status: String,
    pub reason: String,
    pub recommendation: String,
    /// What the insight names: deprecated APIs with the clients that call them, add-ons.
    pub details: Vec<String>,
    /// The objects the insight found at fault, by ARN (node groups, add-ons) or Kubernetes
    /// resource URI (nodes, pods, objects).
    #[serde(default)]
    pub resources: Vec<InsightResource>,
}

/// One object an insight names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InsightResource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_resource_uri: Option<String>,
    pub status: String,
    pub reason: String,
}

impl InsightResource {
    /// `Fargate pod NS/NAME`, `node group NAME`, `add-on NAME`, `node NAME`, or the raw
    /// reference.
    pub fn describe(&self) -> String {
        if let Some(arn) = &self.arn {
            let tail: Vec<&str> = arn.rsplit(':').next().unwrap_or(arn).split('/').collect();
            return match tail.as_slice() {
                ["nodegroup", _, name, ..] => format!("node group `{name}`"),
                ["addon", _, name, ..] => format!("add-on `{name}`"),
                _ => format!("`{arn}`"),
            };
        }
        match &self.kubernetes_resource_uri {
            Some(uri) => format!("`{uri}`"),
            None => "an unnamed object".to_string(),
        }
    }

    /// The pod's `NAMESPACE/NAME` when the resource is a pod.
    pub fn pod(&self) -> Option<(&str, &str)> {
        let rest = self
            .kubernetes_resource_uri
            .as_deref()?
            .strip_prefix("/api/v1/namespaces/")?;
        let (namespace, name) = rest.split_once("/pods/")?;
        Some((namespace, name))
    }

    /// Whether the resource is a managed node group.
    pub fn is_nodegroup(&self) -> bool {
        self.arn
            .as_deref()
            .is_some_and(|a| a.contains(":nodegroup/"))
    }
}

/// Which insights to read.
#[derive(Debug, Clone, Copy)]
pub enum Kind<'a> {
    /// Upgrade readiness for these Kubernetes versions.
    UpgradeReadiness(&'a [Version]),
    /// Misconfiguration, whatever the version.
    Misconfiguration,
    /// Whether a version rollback would be accepted (EKS lists these for the version a
    /// rollback returns to, while a rollback is possible).
    RollbackReadiness,
}

/// Asks EKS to refresh the cluster's insights and waits, up to `timeout`, for it to finish.
/// Insights are otherwise refreshed on EKS's own schedule, so they may not yet reflect what the
/// run just changed (node groups and add-ons moved back). Returns whether the refresh finished.
pub async fn refresh(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    timeout: Duration,
) -> Result<bool, EksError> {
    eks.start_insights_refresh()
        .cluster_name(cluster)
        .send()
        .await
        .map_err(|e| eks_error("StartInsightsRefresh", e))?;
    let started = std::time::Instant::now();
    let mut delay = Duration::from_millis(200);
    loop {
        let out = eks
            .describe_insights_refresh()
            .cluster_name(cluster)
            .send()
            .await
            .map_err(|e| eks_error("DescribeInsightsRefresh", e))?;
        match out.status() {
            Some(InsightsRefreshStatus::Completed) => return Ok(true),
            Some(InsightsRefreshStatus::Failed) => return Ok(false),
            _ if started.elapsed() + delay > timeout => return Ok(false),
            _ => {}
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// Insights of `kind` whose status is ERROR or WARNING.
pub async fn failing(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    kind: Kind<'_>,
) -> Result<Vec<InsightInfo>, EksError> {
    let filter = InsightsFilter::builder()
        .statuses(InsightStatusValue::Error)
        .statuses(InsightStatusValue::Warning);
    let filter = match kind {
        Kind::UpgradeReadiness(versions) => filter
            .categories(Category::UpgradeReadiness)
            .set_kubernetes_versions(Some(versions.iter().map(|v| v.to_string()).collect())),
        Kind::Misconfiguration => filter.categories(Category::Misconfiguration),
        Kind::RollbackReadiness => filter.categories(Category::RollbackReadiness),
    }
    .build();
    let mut summaries = Vec::new();
    let mut pages = eks
        .list_insights()
        .cluster_name(cluster)
        .filter(filter)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        summaries.extend(
            page.map_err(|e| eks_error("ListInsights", e))?
                .insights()
                .iter()
                .cloned(),
        );
    }
    let mut out = Vec::new();
    for s in summaries {
        let id = s.id().unwrap_or_default().to_string();
        let described = eks
            .describe_insight()
            .cluster_name(cluster)
            .id(&id)
            .send()
            .await
            .map_err(|e| eks_error("DescribeInsight", e))?;
        let insight = described.insight();
        let mut details = Vec::new();
        if let Some(summary) = insight.and_then(|i| i.category_specific_summary()) {
            for d in summary.deprecation_details() {
                let agents: Vec<String> = d
                    .client_stats()
                    .iter()
                    .map(|c| {
                        format!(
                            "{} ({} requests in 30 days)",
                            c.user_agent().unwrap_or("unknown client"),
                            c.number_of_requests_last30_days()
                        )
                    })
                    .collect();
                details.push(format!(
                    "{} → {}{}",
                    d.usage().unwrap_or(""),
                    d.replaced_with().unwrap_or("(no replacement)"),
                    if agents.is_empty() {
                        String::new()
                    } else {
                        format!(", called by {}", agents.join(", "))
                    }
                ));
            }
            for a in summary.addon_compatibility_details() {
                details.push(format!(
                    "add-on {}: compatible versions {}",
                    a.name().unwrap_or(""),
                    a.compatible_versions().join(", ")
                ));
            }
        }
        out.push(InsightInfo {
            id,
            name: s.name().unwrap_or_default().to_string(),
            kubernetes_version: s.kubernetes_version().unwrap_or_default().to_string(),
            status: s
                .insight_status()
                .and_then(|st| st.status())
                .map(|st| st.as_str().to_string())
                .unwrap_or_default(),
            reason: s
                .insight_status()
                .and_then(|st| st.reason())
                .unwrap_or_default()
                .to_string(),
            recommendation: insight
                .and_then(|i| i.recommendation())
                .unwrap_or_default()
                .to_string(),
            details,
            resources: insight
                .map(|i| {
                    i.resources()
                        .iter()
                        .map(|r| InsightResource {
                            arn: r.arn().map(str::to_string),
                            kubernetes_resource_uri: r
                                .kubernetes_resource_uri()
                                .map(str::to_string),
                            status: r
                                .insight_status()
                                .and_then(|st| st.status())
                                .map(|st| st.as_str().to_string())
                                .unwrap_or_default(),
                            reason: r
                                .insight_status()
                                .and_then(|st| st.reason())
                                .unwrap_or_default()
                                .to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    Ok(out)
}
