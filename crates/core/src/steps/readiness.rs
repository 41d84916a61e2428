//! Rollback readiness as the tool reads it before a control-plane rollback: EKS's
//! ROLLBACK_READINESS insights, refreshed first (they are otherwise refreshed on EKS's own
//! schedule and would not yet show the node groups and add-ons recovery just moved back), each
//! ERROR and WARNING shown with what it names, and the whole list journaled for the report.
//! EKS refuses a rollback while any of them is ERROR, unless `force`.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};

use super::nodegroups::rollout;
use super::{Context, StepCtx, StepError};
use crate::cloud::insights::{self, InsightInfo};
use crate::journal::Fact;
use crate::types::Version;

/// The insights read before the rollback: the report's account of why EKS would or would not
/// take it.
pub const READINESS: Fact<Vec<InsightInfo>> = Fact::new("readiness");
/// Fargate pods deleted after the rollback so that they start again at its version.
pub const RESTARTED_FARGATE_PODS: Fact<Vec<String>> = Fact::new("restartedFargatePods");

/// How long to wait for EKS to refresh the insights before reading them as they are.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(120);

/// The insights that are not passing.
pub struct Readiness {
    pub insights: Vec<InsightInfo>,
}

impl Readiness {
    /// The insights EKS would refuse the rollback for.
    pub fn errors(&self) -> Vec<&InsightInfo> {
        self.insights
            .iter()
            .filter(|i| i.status == "ERROR")
            .collect()
    }

    /// `NAMESPACE/NAME` of the pods the ERROR insights name, when those pods are all they name
    /// and they come from the kubelet-skew check: the Fargate pods a rollback may restart.
    pub fn only_fargate_pods(&self) -> Option<Vec<String>> {
        let errors = self.errors();
        let mut pods = Vec::new();
        for i in &errors {
            if !i.name.to_ascii_lowercase().contains("kubelet") {
                return None;
            }
            for r in i.resources.iter().filter(|r| r.status == "ERROR") {
                let (namespace, name) = r.pod()?;
                pods.push(format!("{namespace}/{name}"));
            }
        }
        (!errors.is_empty() && !pods.is_empty()).then_some(pods)
    }
}

/// One line about an insight: its name, EKS's reason, what it names and what to do.
pub fn describe(i: &InsightInfo) -> String {
    let mut line = format!(
        "{} {}: {}",
        i.status,
        i.name,
        i.reason.trim_end_matches('.')
    );
    let named: Vec<String> = i
        .resources
        .iter()
        .filter(|r| r.status == "ERROR" || r.status == "WARNING")
        .map(|r| r.describe())
        .collect();
    if !named.is_empty() {
        let shown: Vec<&str> = named.iter().take(5).map(String::as_str).collect();
        line.push_str(&format!(
            " ({}{})",
            shown.join(", "),
            if named.len() > 5 {
                format!(" and {} more", named.len() - 5)
            } else {
                String::new()
            }
        ));
    }
    if !i.details.is_empty() {
        line.push_str(&format!("; {}", i.details.join("; ")));
    }
    if !i.recommendation.is_empty() {
        line.push_str(&format!("; {}", i.recommendation.trim_end_matches('.')));
    }
    line
}

/// Refreshes and reads the rollback-readiness insights, shows every ERROR and WARNING, and
/// journals them.
pub async fn read(ctx: &StepCtx<'_>) -> Result<Readiness, StepError> {
    let cluster = ctx.cluster();
    ctx.progress("refreshing EKS rollback-readiness insights", None, None);
    let refreshed = insights::refresh(&ctx.conn.eks, cluster, REFRESH_TIMEOUT).await?;
    if !refreshed {
        ctx.warn("EKS did not finish refreshing its insights; reading them as they are");
    }
    let found =
        insights::failing(&ctx.conn.eks, cluster, insights::Kind::RollbackReadiness).await?;
    for i in &found {
        ctx.warn(&format!("rollback readiness: {}", describe(i)));
    }
    ctx.record(&READINESS, &found).await?;
    Ok(Readiness { insights: found })
}

/// Deletes the pods on Fargate nodes whose kubelet is newer than `version`; their controllers
/// start them again, and Fargate gives the new ones the control plane's version. Returns
/// `NAMESPACE/NAME` of each pod deleted.
pub async fn restart_fargate_pods(
    ctx: &StepCtx<'_>,
    version: Version,
) -> Result<Vec<String>, StepError> {
    let left = rollout::unmanaged_nodes(ctx.conn.kube.clone(), |v| v > version)
        .await
        .context(|| "cannot list the nodes".into())?;
    let nodes: BTreeSet<&str> = left.fargate.iter().map(String::as_str).collect();
    if nodes.is_empty() {
        return Ok(Vec::new());
    }
    let pods: Api<Pod> = Api::all(ctx.conn.kube.clone());
    let mut deleted = Vec::new();
    for pod in pods
        .list(&ListParams::default())
        .await
        .context(|| "cannot list the pods".into())?
        .items
    {
        let on = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
        if !on.is_some_and(|n| nodes.contains(n)) {
            continue;
        }
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(ctx.conn.kube.clone(), &namespace);
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => deleted.push(format!("{namespace}/{name}")),
            // Gone already: its controller or a person got there first.
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(StepError::Call {
                    context: format!("cannot delete Fargate pod `{namespace}/{name}`"),
                    source: Box::new(e),
                });
            }
        }
    }
    ctx.record(&RESTARTED_FARGATE_PODS, &deleted).await?;
    Ok(deleted)
}
