//! `createGreen`: builds the green cluster of a blue/green run as a copy of blue at the target
//! version — the cluster (blue's role, network, endpoint access, logging, authentication mode,
//! encryption, support policy and tags plus the run's), blue's STANDARD access entries, one
//! managed node group per blue group and one add-on per blue add-on at the version EKS installs
//! by default for the target — and waits until all of it is `ACTIVE`. Blue is only read.
//!
//! Every create carries a client request token journaled before the call, and green is
//! recorded (run fact `GREEN`) as soon as EKS accepted it: a run killed at any point resumes
//! onto the same cluster, and recovery names it even when a later wait fails. A cluster of
//! green's name that this run did not create is never used.

use std::collections::BTreeSet;
use std::time::Instant;

use aws_sdk_eks::types::Nodegroup;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::green::{GREEN, GreenCluster};
use super::kind::{BuildCx, Kind, Placement, PlanCx, Role, TimeScale};
use super::wait_green::{self, GREEN_PLACEMENT, Waited};
use super::{StepCtx, StepError, StepResult};
use crate::cloud::connect::Connection;
use crate::cloud::eks::{self, EksError, eks_error};
use crate::cloud::green_copy::{self, CopyError, RUN_TAG};
use crate::cloud::{eks_create, nodes};
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::DurationText;
use crate::journal::Fact;
use crate::types::{HumanDuration, Version};

/// The CreateCluster token, journaled before the call: a retry returns the same cluster.
pub const GREEN_TOKEN: Fact<String> = Fact::new("greenToken");
/// Each node group's CreateNodegroup token (`nodegroupToken:general`).
pub const NODEGROUP_TOKEN: Fact<String> = Fact::new("nodegroupToken");
/// Each add-on's CreateAddon token, journaled before the call (`addonRequested:vpc-cni`).
pub const ADDON_REQUESTED: Fact<String> = Fact::new("addonRequested");
/// The access entries green had before the run added any: its creator's, which are left as
/// EKS made them.
pub const ACCESS_PRESENT: Fact<Vec<String>> = Fact::new("accessPresent");
/// What blue runs that green does not get (Karpenter, Fargate, self-managed capacity).
pub const NOT_COPIED: Fact<Vec<String>> = Fact::new("notCopied");

/// Defaults of the step's options.
pub mod defaults {
    use std::time::Duration;

    pub const TIMEOUT: Duration = Duration::from_secs(40 * 60);
}

/// Options for creating green.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCreateGreen {
    /// How long green (cluster, node groups and add-ons) may take to become ACTIVE. Default:
    /// `40m`.
    pub timeout: Option<Spanned<DurationText>>,
}

/// A validated `createGreen` step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateGreen {
    /// `spec.green.name`; `None` means `<blue>-<major>-<minor>`.
    pub green_name: Option<String>,
    pub timeout: HumanDuration,
    pub interval: HumanDuration,
}

pub struct CreateGreenKind;

impl Kind for CreateGreenKind {
    type Raw = RawCreateGreen;
    type Model = CreateGreen;

    const DOC: &'static str = "Creates the green cluster at the target version as a copy of blue (cluster settings, access entries, managed node groups, add-ons) and waits until it is ACTIVE.";
    const TITLE: &'static str = "Create green";
    const PLACEMENT: Placement = GREEN_PLACEMENT;
    const MUTATES: bool = true;
    const ROLES: &'static [Role] = &[Role::ProvidesGreen];
    const EXAMPLE: &'static str = "{ timeout: 40m }";

    fn build(
        raw: &Spanned<RawCreateGreen>,
        v: &mut Validator<'_>,
        cx: &BuildCx<'_>,
    ) -> Option<CreateGreen> {
        Some(CreateGreen {
            green_name: cx.blue_green.and_then(|b| b.green_name.clone()),
            timeout: v.positive("timeout", raw.value.timeout.as_ref(), defaults::TIMEOUT),
            interval: HumanDuration(wait_green::defaults::INTERVAL),
        })
    }

    async fn plan(step: &CreateGreen, cx: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        plan(step, cx).await
    }

    async fn run(step: &CreateGreen, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }

    fn scale_time(step: &mut CreateGreen, scale: &TimeScale) {
        scale.timeout(&mut step.timeout);
        scale.apply(&mut step.interval, 100);
    }

    fn typical_minutes(_: &CreateGreen) -> u64 {
        25
    }
}

/// Every managed node group of a cluster, as DescribeNodegroup returns it.
async fn described_nodegroups(
    client: &aws_sdk_eks::Client,
    cluster: &str,
) -> Result<Vec<Nodegroup>, EksError> {
    let mut out = Vec::new();
    for g in eks::nodegroups(client, cluster).await? {
        let described = client
            .describe_nodegroup()
            .cluster_name(cluster)
            .nodegroup_name(&g.name)
            .send()
            .await
            .map_err(|e| eks_error("DescribeNodegroup", e))?;
        if let Some(n) = described.nodegroup {
            out.push(n);
        }
    }
    Ok(out)
}

/// What runs blue's workloads besides managed node groups (and Auto Mode, which green gets
/// with the cluster): it is not copied, and a person must provide it on green.
async fn not_copied(conn: &Connection) -> Result<Vec<String>, String> {
    let mut found = BTreeSet::new();
    let inventory = nodes::inventory(conn.kube.clone())
        .await
        .map_err(|e| format!("cannot list blue's nodes: {}", crate::errors::kube(&e)))?;
    for n in inventory {
        match n.manager {
            nodes::Manager::Nodegroup(_) | nodes::Manager::AutoMode(_) => {}
            // Fargate is named below, by profile.
            nodes::Manager::Fargate => {}
            other => {
                found.insert(other.to_string());
            }
        }
    }
    let profiles = eks_create::fargate_profiles(&conn.eks, &conn.cluster.name)
        .await
        .map_err(|e| crate::errors::chain(&e))?;
    for p in profiles {
        found.insert(format!("Fargate profile `{p}`"));
    }
    Ok(found.into_iter().collect())
}

fn copy_failed(e: &CopyError) -> StepError {
    let mut message = format!("green cannot be a copy of blue: {e}");
    if let Some(h) = e.hint() {
        message.push_str(&format!("\nhint: {h}"));
    }
    StepError::Failed(message)
}

/// Whether this run created the cluster: it carries the run's tag.
fn ours(c: &aws_sdk_eks::types::Cluster, run_id: &str) -> bool {
    c.tags()
        .and_then(|t| t.get(RUN_TAG))
        .is_some_and(|r| r == run_id)
}

fn not_ours(name: &str) -> StepError {
    StepError::Failed(format!(
        "a cluster named `{name}` exists, and this run did not create it; nothing was changed\nhint: use `adoptGreen` to take it as green, or another `spec.green.name`"
    ))
}

/// `3 × m6i.large, AL2023_x86_64_STANDARD`: what a node group request makes.
fn describe_group(r: &green_copy::NodegroupRequest) -> String {
    let mut parts = vec![format!(
        "{} × {}",
        r.desired_size.unwrap_or(0),
        if r.instance_types.is_empty() {
            "launch template's type".to_string()
        } else {
            r.instance_types.join("/")
        }
    )];
    if let Some(ami) = &r.ami_type {
        parts.push(ami.clone());
    }
    if let Some(c) = &r.capacity_type {
        parts.push(c.clone());
    }
    parts.join(", ")
}

async fn plan(step: &CreateGreen, cx: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
    let conn = cx.conn;
    let blue_name = conn.cluster.name.as_str();
    let target = cx.hop.unwrap_or(cx.before);
    let name = super::blue_green::green_name(step.green_name.as_deref(), blue_name, target);
    let mut lines = Vec::new();
    let Some(blue) = eks_create::describe(&conn.eks, blue_name).await? else {
        return Ok(vec![format!("blue `{blue_name}` cannot be described")]);
    };
    let existing = eks_create::describe(&conn.eks, &name).await?;
    let (green_groups, green_addons) = match &existing {
        Some(c) => {
            lines.push(format!(
                "green `{name}`: exists already (Kubernetes {}, {}); the run goes on only if it created it, else use `adoptGreen`",
                c.version().unwrap_or("?"),
                c.status().map_or("?", |s| s.as_str())
            ));
            (
                eks::nodegroups(&conn.eks, &name).await.unwrap_or_default(),
                eks::addons(&conn.eks, &name).await.unwrap_or_default(),
            )
        }
        None => {
            match green_copy::cluster_request(&blue, &name, target, "RUN", "") {
                Ok(r) => {
                    let vpc = blue
                        .resources_vpc_config()
                        .and_then(|v| v.vpc_id())
                        .unwrap_or("blue's VPC");
                    lines.push(format!(
                        "green `{name}`: CreateCluster {target} in {vpc} (subnets {}), with blue's role, endpoint access, logging and tags",
                        r.subnet_ids.join(", ")
                    ));
                }
                Err(e) => lines.push(format!("green `{name}`: cannot be created: {e}")),
            }
            (Vec::new(), Vec::new())
        }
    };
    for g in described_nodegroups(&conn.eks, blue_name).await? {
        let group = g.nodegroup_name().unwrap_or("?");
        if green_groups.iter().any(|h| h.name == group) {
            lines.push(format!("green: node group `{group}` exists already"));
            continue;
        }
        match green_copy::nodegroup_request(&g, target, "RUN", blue_name, "") {
            Ok(r) => lines.push(format!(
                "green: CreateNodegroup {group} ({})",
                describe_group(&r)
            )),
            Err(e) => lines.push(format!(
                "green: node group `{group}` cannot be copied: {e}{}",
                e.hint().map(|h| format!(" ({h})")).unwrap_or_default()
            )),
        }
    }
    for a in eks::addons(&conn.eks, blue_name).await? {
        if green_addons.iter().any(|h| h.name == a.name) {
            lines.push(format!("green: add-on `{}` exists already", a.name));
            continue;
        }
        let kept = if a
            .configuration_values
            .as_deref()
            .is_some_and(|c| !c.trim().is_empty())
        {
            ", configuration kept"
        } else {
            ""
        };
        match eks_create::default_addon_version(&conn.eks, &a.name, target).await {
            Ok(Some(v)) => lines.push(format!(
                "green: CreateAddon {} {v} (default for {target}{kept})",
                a.name
            )),
            Ok(None) => lines.push(format!(
                "green: add-on `{}` is not copied: EKS offers no version of it for {target}",
                a.name
            )),
            Err(e) => lines.push(format!(
                "green: CreateAddon {} (its default version for {target} cannot be read: {})",
                a.name,
                crate::errors::chain(&e)
            )),
        }
    }
    match not_copied(conn).await {
        Ok(n) if n.is_empty() => {}
        Ok(n) => lines.push(format!(
            "not copied (provide them on green yourself): {}",
            n.join(", ")
        )),
        Err(e) => lines.push(format!("what else runs blue's pods is unknown: {e}")),
    }
    Ok(lines)
}

/// The token of a create, journaled before its first use.
async fn token(ctx: &StepCtx<'_>, fact: &Fact<String>) -> Result<String, StepError> {
    if let Some(t) = ctx.fact(fact).await {
        return Ok(t);
    }
    let t = uuid::Uuid::new_v4().to_string();
    ctx.record(fact, &t).await?;
    Ok(t)
}

async fn record_green(
    ctx: &StepCtx<'_>,
    name: &str,
    arn: &str,
    version: Version,
) -> Result<(), StepError> {
    let green = GreenCluster {
        name: name.to_string(),
        arn: arn.to_string(),
        version,
        created: true,
    };
    if ctx.journal.run_fact(&GREEN).await.as_ref() != Some(&green) {
        ctx.journal.record_run_fact(&GREEN, &green).await?;
    }
    Ok(())
}

async fn run(step: &CreateGreen, ctx: &StepCtx<'_>) -> StepResult {
    let started = Instant::now();
    let deadline = started + step.timeout.0;
    let interval = step.interval.0;
    let target = ctx.hop()?;
    let eks_client = &ctx.conn.eks;
    let blue_name = ctx.cluster();
    let name = super::blue_green::green_name(step.green_name.as_deref(), blue_name, target);
    let in_flight = |what: &str| {
        StepError::InFlight(format!(
            "green `{name}` is not ready after {}: {what}; EKS goes on creating it, and `eks-upgrade resume` waits for it again",
            step.timeout
        ))
    };

    ctx.progress(&format!("reading blue `{blue_name}`"), None, None);
    let blue = eks_create::describe(eks_client, blue_name)
        .await?
        .ok_or_else(|| StepError::Failed(format!("blue `{blue_name}` no longer exists")))?;
    let blue_groups = described_nodegroups(eks_client, blue_name).await?;
    let blue_addons = eks::addons(eks_client, blue_name).await?;
    // Everything is checked before green exists: a group that cannot be copied must not leave
    // half a green behind.
    green_copy::cluster_request(&blue, &name, target, ctx.run_id, "")
        .map_err(|e| copy_failed(&e))?;
    for g in &blue_groups {
        green_copy::nodegroup_request(g, target, ctx.run_id, blue_name, "")
            .map_err(|e| copy_failed(&e))?;
    }
    let missing = match not_copied(ctx.conn).await {
        Ok(n) => n,
        Err(e) => {
            ctx.warn(&format!("cannot tell what else runs blue's pods: {e}"));
            Vec::new()
        }
    };
    if !missing.is_empty() {
        ctx.warn(&format!(
            "not copied to green `{name}`: {}; provide them with your infrastructure code before traffic moves",
            missing.join(", ")
        ));
    }
    ctx.record(&NOT_COPIED, &missing).await?;

    // The cluster: ours from an earlier attempt, or created now.
    let cluster_token = token(ctx, &GREEN_TOKEN).await?;
    let arn = match eks_create::describe(eks_client, &name).await? {
        Some(c) if ours(&c, ctx.run_id) => {
            ctx.progress(&format!("re-attached to green `{name}`"), None, None);
            c.arn().unwrap_or_default().to_string()
        }
        Some(_) => return Err(not_ours(&name)),
        None => {
            let request =
                green_copy::cluster_request(&blue, &name, target, ctx.run_id, &cluster_token)
                    .map_err(|e| copy_failed(&e))?;
            ctx.progress(&format!("CreateCluster `{name}` at {target}"), None, None);
            match eks_create::create_cluster(eks_client, &request).await {
                Ok(created) => created.arn,
                Err(e) if e.is("ResourceInUseException") => {
                    // Made meanwhile by someone else, or by the same token (then it is ours).
                    match eks_create::describe(eks_client, &name).await? {
                        Some(c) if ours(&c, ctx.run_id) => c.arn().unwrap_or_default().to_string(),
                        _ => return Err(not_ours(&name)),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    record_green(ctx, &name, &arn, target).await?;

    match wait_green::cluster_active(ctx, &name, deadline, interval).await? {
        Waited::Done(_) => {}
        Waited::TimedOut(w) => return Err(in_flight(&w)),
    }

    // Access entries: blue's STANDARD ones, except what EKS gave green's creator.
    let present = match ctx.fact(&ACCESS_PRESENT).await {
        Some(p) => p,
        None => {
            let p: Vec<String> = eks_create::access_entries(eks_client, &name)
                .await?
                .iter()
                .filter_map(|(e, _)| e.principal_arn().map(str::to_string))
                .collect();
            ctx.record(&ACCESS_PRESENT, &p).await?;
            p
        }
    };
    let blue_entries = eks_create::access_entries(eks_client, blue_name).await?;
    let mut entries = 0;
    for r in green_copy::access_entry_requests(&blue_entries, None) {
        if present
            .iter()
            .any(|p| green_copy::is_caller(&r.principal_arn, p))
        {
            continue;
        }
        eks_create::create_access_entry(eks_client, &name, &r).await?;
        for p in &r.policies {
            eks_create::associate_access_policy(eks_client, &name, &r.principal_arn, p).await?;
        }
        entries += 1;
    }

    // Node groups and add-ons, each with its own token.
    let have_groups: Vec<String> = eks::nodegroups(eks_client, &name)
        .await?
        .into_iter()
        .map(|g| g.name)
        .collect();
    let mut groups = Vec::new();
    for g in &blue_groups {
        let group = g.nodegroup_name().unwrap_or_default().to_string();
        groups.push(group.clone());
        if have_groups.contains(&group) {
            continue;
        }
        let t = token(ctx, &NODEGROUP_TOKEN.of(&group)).await?;
        let request = green_copy::nodegroup_request(g, target, ctx.run_id, blue_name, &t)
            .map_err(|e| copy_failed(&e))?;
        ctx.progress(
            &format!("CreateNodegroup `{group}` on `{name}`"),
            None,
            None,
        );
        match eks_create::create_nodegroup(eks_client, &name, &request).await {
            Ok(()) => {}
            Err(e) if e.is("ResourceInUseException") => {}
            Err(e) => return Err(e.into()),
        }
    }
    let have_addons: Vec<String> = eks::addons(eks_client, &name)
        .await?
        .into_iter()
        .map(|a| a.name)
        .collect();
    let mut addons = Vec::new();
    for a in &blue_addons {
        if have_addons.contains(&a.name) {
            addons.push(a.name.clone());
            continue;
        }
        let Some(version) = eks_create::default_addon_version(eks_client, &a.name, target).await?
        else {
            ctx.warn(&format!(
                "add-on `{}` is not copied to green `{name}`: EKS offers no version of it for {target}",
                a.name
            ));
            continue;
        };
        addons.push(a.name.clone());
        if let Some(role) = &a.service_account_role_arn {
            ctx.warn(&format!(
                "add-on `{}` keeps role `{role}` on green: its trust policy must name green's OIDC issuer too",
                a.name
            ));
        }
        let t = token(ctx, &ADDON_REQUESTED.of(&a.name)).await?;
        let request = green_copy::addon_request(a, Some(&version));
        ctx.progress(
            &format!("CreateAddon `{}` {version} on `{name}`", a.name),
            None,
            None,
        );
        match eks_create::create_addon(eks_client, &name, &request, &t).await {
            Ok(()) => {}
            Err(e) if e.is("ResourceInUseException") => {}
            Err(e) => return Err(e.into()),
        }
    }
    match wait_green::parts_active(ctx, &name, &groups, &addons, deadline, interval).await? {
        Waited::Done(()) => {}
        Waited::TimedOut(w) => return Err(in_flight(&w)),
    }
    let mut summary = format!(
        "green `{name}` created at {target}: {} node groups, {} add-ons, {entries} access entries copied from blue `{blue_name}`",
        groups.len(),
        addons.len()
    );
    if !missing.is_empty() {
        summary.push_str(&format!("; not copied: {}", missing.join(", ")));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn request(types: &[&str], ami: Option<&str>) -> green_copy::NodegroupRequest {
        green_copy::NodegroupRequest {
            name: "general".into(),
            version: Some(Version::new(1, 35)),
            node_role: "arn:aws:iam::1:role/node".into(),
            subnets: vec!["subnet-a".into()],
            instance_types: types.iter().map(|t| t.to_string()).collect(),
            ami_type: ami.map(str::to_string),
            capacity_type: Some("ON_DEMAND".into()),
            min_size: Some(1),
            max_size: Some(5),
            desired_size: Some(3),
            disk_size: None,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            max_unavailable: None,
            max_unavailable_percentage: None,
            launch_template: None,
            ssh_key: None,
            remote_access_security_groups: Vec::new(),
            tags: BTreeMap::new(),
            client_request_token: String::new(),
        }
    }

    #[test]
    fn a_planned_group_says_its_size_types_and_ami() {
        assert_eq!(
            describe_group(&request(&["m6i.large"], Some("AL2023_x86_64_STANDARD"))),
            "3 × m6i.large, AL2023_x86_64_STANDARD, ON_DEMAND"
        );
        assert_eq!(
            describe_group(&request(&[], None)),
            "3 × launch template's type, ON_DEMAND"
        );
    }

    #[test]
    fn only_a_cluster_with_this_runs_tag_is_ours() {
        let tagged = |run: &str| {
            aws_sdk_eks::types::Cluster::builder()
                .name("demo-1-35")
                .tags(RUN_TAG, run)
                .build()
        };
        assert!(ours(&tagged("r1"), "r1"));
        assert!(!ours(&tagged("r2"), "r1"));
        assert!(!ours(
            &aws_sdk_eks::types::Cluster::builder().name("x").build(),
            "r1"
        ));
    }

    #[test]
    fn someone_elses_cluster_is_refused_with_the_way_out() {
        let message = not_ours("demo-1-35").to_string();
        assert!(
            message.starts_with("a cluster named `demo-1-35` exists"),
            "{message}"
        );
        assert!(
            message.contains("\nhint: use `adoptGreen`") && message.contains("`spec.green.name`"),
            "{message}"
        );
    }

    #[test]
    fn a_copy_error_keeps_its_hint() {
        let e = CopyError::Al2Ami {
            nodegroup: "general".into(),
            ami_type: "AL2_x86_64".into(),
            version: Version::new(1, 35),
            instead: "AL2023_x86_64_STANDARD",
        };
        let message = copy_failed(&e).to_string();
        assert!(message.contains("AL2_x86_64"), "{message}");
        assert!(message.contains("\nhint: "), "{message}");
    }
}
