//! EKS cluster insights: upgrade readiness for every hop's version, and misconfiguration. EKS
//! computes them from its own telemetry (deprecated-API requests over 30 days with the clients'
//! user agents, add-on versions, node skew), so they see what no scan of the cluster can; ERROR
//! becomes an error finding and WARNING a warning.

use super::{Facts, Finding, Severity};
use crate::cloud::insights;

pub async fn check(facts: &Facts<'_>) -> Vec<Finding> {
    if facts.hops.is_empty() {
        return Vec::new();
    }
    let cluster = facts.conn.cluster.name.as_str();
    let readiness = insights::failing(
        &facts.conn.eks,
        cluster,
        insights::Kind::UpgradeReadiness(facts.hops),
    );
    let misconfiguration =
        insights::failing(&facts.conn.eks, cluster, insights::Kind::Misconfiguration);
    let (readiness, misconfiguration) = tokio::join!(readiness, misconfiguration);
    let mut out = Vec::new();
    for (what, found) in [
        ("upgrade-readiness", readiness),
        ("misconfiguration", misconfiguration),
    ] {
        out.extend(findings(cluster, what, found));
    }
    out
}

fn findings(
    cluster: &str,
    what: &str,
    found: Result<Vec<insights::InsightInfo>, crate::cloud::eks::EksError>,
) -> Vec<Finding> {
    match found {
        Ok(found) => found
            .into_iter()
            .map(|i| {
                let severity = if i.status == "ERROR" {
                    Severity::Error
                } else {
                    Severity::Warning
                };
                let mut message = if i.kubernetes_version.is_empty() {
                    format!("{}: {}", i.status, i.reason)
                } else {
                    format!("{} for {}: {}", i.status, i.kubernetes_version, i.reason)
                };
                if !i.details.is_empty() {
                    message.push_str(&format!(" ({})", i.details.join("; ")));
                }
                let remedy = if i.recommendation.is_empty() {
                    format!(
                        "see `aws eks describe-insight --cluster-name {cluster} --id {}`",
                        i.id
                    )
                } else {
                    i.recommendation.clone()
                };
                Finding::new(
                    "EKS010",
                    severity,
                    format!("insight \"{}\"", i.name),
                    message,
                    remedy,
                )
                .at(None, &i.name)
            })
            .collect(),
        // Without the permission, the tool's own checks still run: a warning, and how to grant
        // it. Any other failure (EKS erring or throttling past the SDK's retries, no answer) means
        // EKS's verdict on this cluster is unknown, so the run stops before any change.
        Err(e) if e.is("AccessDeniedException") => vec![Finding::new(
            "EKS010",
            Severity::Warning,
            format!("cluster {cluster}"),
            format!("cannot read EKS {what} insights: {e}"),
            "grant `eks:ListInsights` and `eks:DescribeInsight`",
        )],
        Err(e) => vec![Finding::new(
            "EKS010",
            Severity::Error,
            format!("cluster {cluster}"),
            format!("cannot read EKS {what} insights: {e}"),
            "EKS did not answer; nothing was changed, so run again later",
        )],
    }
}
