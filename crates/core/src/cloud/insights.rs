//! EKS upgrade insights: ListInsights for the hop versions, DescribeInsight for what each one
//! found (deprecated-API clients with their user agents, incompatible add-ons).

use aws_sdk_eks::types::{Category, InsightStatusValue, InsightsFilter};
use serde::Serialize;

use super::eks::{EksError, eks_error};
use crate::types::Version;

/// An insight that is not passing, with the details DescribeInsight adds.
#[derive(Debug, Clone, Serialize)]
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
}

/// Which insights to read.
#[derive(Debug, Clone, Copy)]
pub enum Kind<'a> {
    /// Upgrade readiness for these Kubernetes versions.
    UpgradeReadiness(&'a [Version]),
    /// Misconfiguration, whatever the version.
    Misconfiguration,
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
        });
    }
    Ok(out)
}
