//! `waitGreen`: waits until green can take work — the cluster, its node groups and its add-ons
//! `ACTIVE`, every node `Ready` at the target, the API server answering with the target version
//! and the Velero server available (the platform stack installs it; the restore needs it). Also
//! the polls `createGreen` and `adoptGreen` wait with: EKS's own states, read every interval
//! until the step's deadline.

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kind::{BuildCx, Kind, Placement, PlanCx, Role, TimeScale};
use super::{Context, StepCtx, StepError, StepResult};
use crate::cloud::eks::{self, EksError};
use crate::cloud::eks_create;
use crate::cloud::nodes;
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::DurationText;
use crate::types::version::minor_of;
use crate::types::{HumanDuration, Phase, Version};

/// Defaults of the step's options.
pub mod defaults {
    use std::time::Duration;

    pub const TIMEOUT: Duration = Duration::from_secs(30 * 60);
    /// How often EKS and green's API are read while waiting.
    pub const INTERVAL: Duration = Duration::from_secs(15);
}

/// Where the green steps may appear: once, in `upgrade` (the run has one hop, the target).
pub const GREEN_PLACEMENT: Placement = Placement {
    sections: &[Phase::Upgrade],
    why: "green is built and checked in `upgrade`, before traffic moves",
};

/// Options for the wait.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawWaitGreen {
    /// How long green may take to be ready. Default: `30m`.
    pub timeout: Option<Spanned<DurationText>>,
}

/// A validated `waitGreen` step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitGreen {
    /// `spec.green.name`, for plans (the run reads the recorded green).
    pub green_name: Option<String>,
    pub timeout: HumanDuration,
    pub interval: HumanDuration,
}

pub struct WaitGreenKind;

impl Kind for WaitGreenKind {
    type Raw = RawWaitGreen;
    type Model = WaitGreen;

    const DOC: &'static str = "Waits until the green cluster is ready: cluster, node groups and add-ons ACTIVE, nodes Ready at the target, Velero available.";
    const TITLE: &'static str = "Wait for green";
    const PLACEMENT: Placement = GREEN_PLACEMENT;
    const MUTATES: bool = false;
    const ROLES: &'static [Role] = &[Role::WaitsForGreen];
    const EXAMPLE: &'static str = "{ timeout: 30m }";

    fn build(
        raw: &Spanned<RawWaitGreen>,
        v: &mut Validator<'_>,
        cx: &BuildCx<'_>,
    ) -> Option<WaitGreen> {
        Some(WaitGreen {
            green_name: cx.blue_green.and_then(|b| b.green_name.clone()),
            timeout: v.positive("timeout", raw.value.timeout.as_ref(), defaults::TIMEOUT),
            interval: HumanDuration(defaults::INTERVAL),
        })
    }

    async fn plan(step: &WaitGreen, cx: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        let target = cx.hop.unwrap_or(cx.before);
        let name = super::blue_green::green_name(
            step.green_name.as_deref(),
            &cx.conn.cluster.name,
            target,
        );
        Ok(vec![format!(
            "waits up to {} for green `{name}`: cluster, node groups and add-ons ACTIVE, nodes Ready at {target}, Velero available in `{}`",
            step.timeout, cx.velero.namespace
        )])
    }

    async fn run(step: &WaitGreen, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }

    fn scale_time(step: &mut WaitGreen, scale: &TimeScale) {
        scale.timeout(&mut step.timeout);
        scale.apply(&mut step.interval, 100);
    }

    fn typical_minutes(_: &WaitGreen) -> u64 {
        5
    }
}

/// How a wait ended: what it waited for, or what it was still waiting for at the deadline.
pub(super) enum Waited<T> {
    Done(T),
    TimedOut(String),
}

/// `CODE: message` for each of EKS's health issues of a cluster.
pub(super) fn cluster_issues(c: &aws_sdk_eks::types::Cluster) -> Vec<String> {
    c.health()
        .map(|h| {
            h.issues()
                .iter()
                .map(|i| {
                    format!(
                        "{}: {}",
                        i.code().map_or("Unknown", |c| c.as_str()),
                        i.message().unwrap_or("").trim_end_matches('.')
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Reads the cluster every `interval` until EKS says `ACTIVE`. `FAILED` (or a cluster that
/// vanished) fails the step with EKS's health issues.
pub(super) async fn cluster_active(
    ctx: &StepCtx<'_>,
    name: &str,
    deadline: Instant,
    interval: Duration,
) -> Result<Waited<aws_sdk_eks::types::Cluster>, StepError> {
    loop {
        let Some(c) = eks_create::describe(&ctx.conn.eks, name).await? else {
            return Err(StepError::Failed(format!(
                "green `{name}` no longer exists: someone deleted it while the run waited"
            )));
        };
        let status = c.status().map_or("", |s| s.as_str()).to_string();
        match status.as_str() {
            "ACTIVE" => return Ok(Waited::Done(c)),
            "FAILED" => {
                let issues = cluster_issues(&c);
                return Err(StepError::Failed(format!(
                    "EKS could not create green `{name}`: it ended `FAILED` ({})",
                    if issues.is_empty() {
                        "EKS gave no reason".to_string()
                    } else {
                        issues.join("; ")
                    }
                )));
            }
            "DELETING" => {
                return Err(StepError::Failed(format!(
                    "green `{name}` is being deleted: someone deleted it while the run waited"
                )));
            }
            _ => {}
        }
        let waiting = format!("green `{name}` is `{status}`");
        if Instant::now() + interval > deadline {
            return Ok(Waited::TimedOut(waiting));
        }
        ctx.progress(&waiting, None, None);
        tokio::time::sleep(interval).await;
    }
}

/// What is not yet `ACTIVE` among green's node groups and add-ons (and the names of those that
/// must exist), or why one of them will never be: `Err` for `CREATE_FAILED`.
pub(super) async fn parts_pending(
    ctx: &StepCtx<'_>,
    name: &str,
    groups: &[String],
    addons: &[String],
) -> Result<Vec<String>, StepError> {
    let mut pending = Vec::new();
    let have_groups = eks::nodegroups(&ctx.conn.eks, name).await?;
    for g in groups {
        if !have_groups.iter().any(|h| &h.name == g) {
            pending.push(format!("node group `{g}` does not exist yet"));
        }
    }
    for g in &have_groups {
        match g.status.as_str() {
            "ACTIVE" => {}
            "CREATE_FAILED" => {
                return Err(StepError::Failed(format!(
                    "node group `{}` of green `{name}` ended `CREATE_FAILED` ({})",
                    g.name,
                    issues_text(&g.health_issues)
                )));
            }
            other => pending.push(format!("node group `{}` is `{other}`", g.name)),
        }
    }
    let have_addons = eks::addons(&ctx.conn.eks, name).await?;
    for a in addons {
        if !have_addons.iter().any(|h| &h.name == a) {
            pending.push(format!("add-on `{a}` does not exist yet"));
        }
    }
    for a in &have_addons {
        match a.status.as_str() {
            "ACTIVE" => {}
            "CREATE_FAILED" => {
                return Err(StepError::Failed(format!(
                    "add-on `{}` of green `{name}` ended `CREATE_FAILED` ({})",
                    a.name,
                    issues_text(&a.health_issues)
                )));
            }
            other => pending.push(format!("add-on `{}` is `{other}`", a.name)),
        }
    }
    Ok(pending)
}

fn issues_text(issues: &[String]) -> String {
    if issues.is_empty() {
        "EKS gave no reason".to_string()
    } else {
        issues.join("; ")
    }
}

/// Reads green's node groups and add-ons every `interval` until all are `ACTIVE`.
pub(super) async fn parts_active(
    ctx: &StepCtx<'_>,
    name: &str,
    groups: &[String],
    addons: &[String],
    deadline: Instant,
    interval: Duration,
) -> Result<Waited<()>, StepError> {
    loop {
        let pending = parts_pending(ctx, name, groups, addons).await?;
        if pending.is_empty() {
            return Ok(Waited::Done(()));
        }
        let waiting = pending.join(", ");
        if Instant::now() + interval > deadline {
            return Ok(Waited::TimedOut(waiting));
        }
        ctx.progress(&format!("green `{name}`: {waiting}"), None, None);
        tokio::time::sleep(interval).await;
    }
}

/// What green's own API says is not ready yet: nodes not `Ready` or not at `target`, an API
/// server at another version, Velero not available. Empty when green can take work.
async fn api_pending(
    green: &crate::cloud::connect::Connection,
    target: Version,
    velero_namespace: &str,
    expect_nodes: bool,
) -> Vec<String> {
    let mut pending = Vec::new();
    match green.kube.apiserver_version().await {
        Ok(info) => match minor_of(&info.git_version) {
            Some(v) if v == target => {}
            Some(v) => pending.push(format!("the API server is at {v}, not {target}")),
            None => pending.push(format!(
                "the API server reports version `{}`",
                info.git_version
            )),
        },
        Err(e) => pending.push(format!(
            "the API server does not answer: {}",
            crate::errors::kube(&e)
        )),
    }
    match nodes::inventory(green.kube.clone()).await {
        Ok(nodes) => {
            if nodes.is_empty() && expect_nodes {
                pending.push("no node has joined yet".into());
            }
            let not_ready: Vec<&str> = nodes
                .iter()
                .filter(|n| !n.ready)
                .map(|n| n.name.as_str())
                .collect();
            if !not_ready.is_empty() {
                pending.push(format!("nodes not Ready: {}", not_ready.join(", ")));
            }
            let other: Vec<String> = nodes
                .iter()
                .filter(|n| n.version != Some(target))
                .map(|n| n.with_kubelet())
                .collect();
            if !other.is_empty() {
                pending.push(format!("nodes not at {target}: {}", other.join(", ")));
            }
        }
        Err(e) => pending.push(format!(
            "cannot list green's nodes: {}",
            crate::errors::kube(&e)
        )),
    }
    match crate::velero::server::replicas(green.kube.clone(), velero_namespace).await {
        Ok(Some(r)) => {
            let (have, want) = (r.available, r.wanted);
            if !r.ready() {
                pending.push(format!(
                    "the Velero server in `{velero_namespace}` is not available ({have}/{want} replicas)"
                ));
            }
        }
        Ok(None) => pending.push(format!(
            "no Velero server (Deployment `{velero_namespace}/velero`)"
        )),
        Err(e) => pending.push(format!(
            "cannot read the Velero Deployment: {}",
            crate::errors::kube(&e)
        )),
    }
    pending
}

async fn run(step: &WaitGreen, ctx: &StepCtx<'_>) -> StepResult {
    let started = Instant::now();
    let deadline = started + step.timeout.0;
    let interval = step.interval.0;
    let target = ctx.hop()?;
    let green = ctx.green_cluster().await?;
    let name = green.name.as_str();
    let late = |what: &str| {
        let mut message = format!("green `{name}` is not ready after {}: {what}", step.timeout);
        if what.contains("Velero") {
            message.push_str("\nhint: install Velero on green with your platform stack (same namespace as on blue, no BackupStorageLocation needed: the run attaches blue's)");
        }
        StepError::Failed(message)
    };
    let cluster = match cluster_active(ctx, name, deadline, interval).await? {
        Waited::Done(c) => c,
        Waited::TimedOut(w) => return Err(late(&w)),
    };
    if let Some(v) = cluster.version()
        && minor_of(v) != Some(target)
    {
        return Err(StepError::Failed(format!(
            "green `{name}` runs Kubernetes {v}, not the target {target}"
        )));
    }
    let groups: Vec<String> = eks::nodegroups(&ctx.conn.eks, name)
        .await?
        .into_iter()
        .map(|g| g.name)
        .collect();
    if let Waited::TimedOut(w) = parts_active(ctx, name, &[], &[], deadline, interval).await? {
        return Err(late(&w));
    }
    let conn = ctx.green().await?;
    loop {
        let pending = api_pending(conn, target, &ctx.velero.namespace, !groups.is_empty()).await;
        if pending.is_empty() {
            break;
        }
        let waiting = pending.join("; ");
        if Instant::now() + interval > deadline {
            return Err(late(&waiting));
        }
        ctx.progress(&format!("green `{name}`: {waiting}"), None, None);
        tokio::time::sleep(interval).await;
    }
    let nodes = nodes::inventory(conn.kube.clone())
        .await
        .context(|| format!("cannot list the nodes of green `{name}`"))?;
    Ok(format!(
        "green `{name}` is ready: Kubernetes {target}, {} node groups and their {} nodes Ready, add-ons ACTIVE, Velero available",
        groups.len(),
        nodes.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_eks::types::{Cluster, ClusterHealth, ClusterIssue, ClusterIssueCode};

    #[test]
    fn a_failed_cluster_is_explained_by_its_health_issues() {
        let c = Cluster::builder()
            .name("demo-1-35")
            .health(
                ClusterHealth::builder()
                    .issues(
                        ClusterIssue::builder()
                            .code(ClusterIssueCode::InsufficientFreeAddresses)
                            .message(
                                "One or more of the subnets has insufficient free IP addresses.",
                            )
                            .build(),
                    )
                    .build(),
            )
            .build();
        assert_eq!(
            cluster_issues(&c),
            [
                "InsufficientFreeAddresses: One or more of the subnets has insufficient free IP addresses"
            ]
        );
        assert!(cluster_issues(&Cluster::builder().build()).is_empty());
    }
}
