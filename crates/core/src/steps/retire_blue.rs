//! `retireBlue`: what becomes of blue once every request goes to green and the run succeeded.
//! By default blue is kept — it is the fastest way back for as long as it runs — and the step
//! prints, and records for the report, exactly the commands a person runs to delete it later.
//! `retire: delete` deletes it (node groups, then the cluster, then its weight-0 DNS set) and
//! must follow an `approval` step: it is the one change of a blue/green run that cannot be
//! undone. Either way the step first proves from Route 53 that blue takes no traffic.

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::blue_green::Traffic;
use super::green::{self, RECORD_TYPE, shell_quote};
use super::kind::{BuildCx, Kind, Placement, PlanCx, Role, TimeScale};
use super::traffic;
use super::{Context, StepCtx, StepError, StepResult};
use crate::cloud::eks::{self, EksError};
use crate::cloud::{eks_create, route53};
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::DurationText;
use crate::journal::Fact;
use crate::types::{HumanDuration, Phase};

/// What was decided, and the commands that delete blue (run by the step, or left to a person).
pub const RETIRE: Fact<Retirement> = Fact::new("retire");
/// When the deletion of a resource of blue was asked for (`nodegroup:NAME`, `cluster`, `dns`).
pub const DELETED: Fact<String> = Fact::new("deleted");

/// Keep blue or delete it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Retire {
    /// Keep blue running with no traffic, and print the commands that delete it (default).
    Keep,
    /// Delete blue's node groups, blue itself and its DNS set. Needs an `approval` step before
    /// it in `finish`.
    Delete,
}

/// Options for retiring blue.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRetireBlue {
    /// `keep` (default) or `delete`.
    pub retire: Option<Retire>,
    /// How long deleting may take. Default: `40m`.
    pub timeout: Option<Spanned<DurationText>>,
}

/// A validated `retireBlue` step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetireBlue {
    pub retire: Retire,
    pub timeout: HumanDuration,
    /// `spec.traffic`: the record whose blue set goes with blue.
    pub traffic: Option<Traffic>,
}

/// The decision and the commands, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retirement {
    pub decision: Retire,
    pub blue: String,
    pub commands: Vec<String>,
}

pub struct RetireBlueKind;

impl Kind for RetireBlueKind {
    type Raw = RawRetireBlue;
    type Model = RetireBlue;

    const DOC: &'static str = "Keeps blue with no traffic and prints the commands that delete it (`retire: keep`, the\ndefault), or deletes it (`retire: delete`, after an `approval` step).";
    const TITLE: &'static str = "Retire blue";
    const PLACEMENT: Placement = Placement {
        sections: &[Phase::Finish],
        why: "blue is retired only after the run succeeded and traffic moved to green",
    };
    const MUTATES: bool = true;
    const ROLES: &'static [Role] = &[Role::RetiresBlue];
    const EXAMPLE: &'static str = "{ retire: keep }";

    fn build(
        raw: &Spanned<RawRetireBlue>,
        v: &mut Validator<'_>,
        cx: &BuildCx<'_>,
    ) -> Option<RetireBlue> {
        Some(RetireBlue {
            retire: raw.value.retire.unwrap_or(Retire::Keep),
            timeout: v.positive(
                "timeout",
                raw.value.timeout.as_ref(),
                Duration::from_secs(40 * 60),
            ),
            traffic: cx.blue_green.and_then(|b| b.traffic.clone()),
        })
    }

    fn needs_approval(step: &RetireBlue) -> bool {
        step.retire == Retire::Delete
    }

    async fn plan(step: &RetireBlue, cx: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        let blue = &cx.conn.cluster.name;
        let groups: Vec<String> = cx
            .projection
            .nodegroups
            .iter()
            .map(|n| format!("`{}`", n.name))
            .collect();
        let groups = if groups.is_empty() {
            "no node groups".to_string()
        } else {
            format!("node groups {}", groups.join(", "))
        };
        let dns = step
            .traffic
            .as_ref()
            .map(|t| {
                format!(
                    ", then its set `{}` of `{}`",
                    t.blue_set,
                    route53::fqdn(&t.record)
                )
            })
            .unwrap_or_default();
        Ok(vec![match step.retire {
            Retire::Keep => format!(
                "keeps blue `{blue}` running with no traffic and prints the commands that delete it ({groups}, the cluster{dns})"
            ),
            Retire::Delete => {
                format!("after approval, deletes blue `{blue}`: {groups}, the cluster{dns}")
            }
        }])
    }

    async fn run(step: &RetireBlue, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }

    fn scale_time(step: &mut RetireBlue, scale: &TimeScale) {
        scale.timeout(&mut step.timeout);
    }

    fn typical_minutes(step: &RetireBlue) -> u64 {
        match step.retire {
            Retire::Keep => 0,
            Retire::Delete => 20,
        }
    }
}

/// Blue's DNS set as Route 53 has it now, once blue takes no traffic.
struct BlueSet {
    zone_id: String,
    record: String,
    set: Option<route53::Weighted>,
}

async fn run(step: &RetireBlue, ctx: &StepCtx<'_>) -> StepResult {
    let green = ctx.green_cluster().await?;
    let blue = ctx.cluster().to_string();
    let region = ctx.conn.cluster.region.clone();
    let dns = match &step.traffic {
        Some(t) => Some(blue_set(ctx, t).await?),
        None => None,
    };
    let groups: Vec<String> = eks::nodegroups(&ctx.conn.eks, &blue)
        .await?
        .into_iter()
        .map(|n| n.name)
        .collect();
    let commands = commands(&blue, &region, &groups, dns.as_ref());
    let retirement = Retirement {
        decision: step.retire,
        blue: blue.clone(),
        commands: commands.clone(),
    };
    ctx.record(&RETIRE, &retirement).await?;
    if step.retire == Retire::Keep {
        for c in &commands {
            ctx.log(c);
        }
        return Ok(format!(
            "blue `{blue}` is kept with no traffic (green `{}` serves every request); the {} commands that delete it are in the report",
            green.name,
            commands.len()
        ));
    }
    delete(step, ctx, &blue, &groups, dns.as_ref()).await?;
    Ok(format!(
        "blue `{blue}` is deleted; green `{}` serves every request",
        green.name
    ))
}

/// Reads the weights and refuses to retire a blue that still takes requests.
async fn blue_set(ctx: &StepCtx<'_>, t: &Traffic) -> Result<BlueSet, StepError> {
    let (zone_id, sets) = traffic::read_sets(ctx.conn, t).await.cause()?;
    let weights: green::Weights = traffic::split_of(&sets, t).into();
    if weights.blue.unwrap_or(0) > 0 || weights.green.unwrap_or(0) == 0 {
        return Err(StepError::Failed(format!(
            "blue still takes requests: `{}` is at {weights}; blue is kept, and nothing was deleted",
            route53::fqdn(&t.record)
        )));
    }
    Ok(BlueSet {
        zone_id,
        record: t.record.clone(),
        set: sets.into_iter().find(|s| s.set_identifier == t.blue_set),
    })
}

/// The commands that delete blue, in the order EKS allows: node groups (and their wait) before
/// the cluster, the DNS set last.
fn commands(blue: &str, region: &str, groups: &[String], dns: Option<&BlueSet>) -> Vec<String> {
    let mut out = Vec::new();
    for g in groups {
        out.push(format!(
            "aws eks delete-nodegroup --region {region} --cluster-name {blue} --nodegroup-name {g}"
        ));
    }
    for g in groups {
        out.push(format!("aws eks wait nodegroup-deleted --region {region} --cluster-name {blue} --nodegroup-name {g}"));
    }
    out.push(format!(
        "aws eks delete-cluster --region {region} --name {blue}"
    ));
    out.push(format!(
        "aws eks wait cluster-deleted --region {region} --name {blue}"
    ));
    if let Some(BlueSet {
        zone_id,
        record,
        set: Some(set),
    }) = dns
    {
        let batch = serde_json::json!({
            "Comment": format!("eks-upgrade: retire blue {blue}"),
            "Changes": [green::change_json("DELETE", record, set, set.weight)]
        });
        out.push(format!(
            "aws route53 change-resource-record-sets --hosted-zone-id {zone_id} --change-batch {}",
            shell_quote(&batch.to_string())
        ));
    }
    out
}

/// Deletes blue: node groups, the cluster, then its DNS set. Each request is recorded before
/// it is sent, and a resumed run only waits for what it already asked.
async fn delete(
    step: &RetireBlue,
    ctx: &StepCtx<'_>,
    blue: &str,
    groups: &[String],
    dns: Option<&BlueSet>,
) -> Result<(), StepError> {
    let started = Instant::now();
    let eks = &ctx.conn.eks;
    for g in groups {
        let fact = DELETED.of(&format!("nodegroup:{g}"));
        if ctx.fact(&fact).await.is_none() {
            ctx.record(&fact, &crate::journal::now()).await?;
            match eks_create::delete_nodegroup(eks, blue, g).await {
                Err(e) if !e.is("ResourceNotFoundException") => return Err(e.into()),
                _ => {}
            }
        }
    }
    let interval = poll_interval(step);
    loop {
        let left = eks::nodegroups(eks, blue).await?;
        if left.is_empty() {
            break;
        }
        let names: Vec<&str> = left.iter().map(|n| n.name.as_str()).collect();
        ctx.progress(
            &format!(
                "deleting blue's node groups: {} left ({})",
                left.len(),
                names.join(", ")
            ),
            None,
            None,
        );
        wait(step, started, interval, || {
            format!("blue's node groups {} were not deleted", names.join(", "))
        })
        .await?;
    }
    let cluster = DELETED.of("cluster");
    if ctx.fact(&cluster).await.is_none() {
        ctx.record(&cluster, &crate::journal::now()).await?;
        eks_create::delete_cluster(eks, blue).await?;
    }
    while eks_create::describe(eks, blue).await?.is_some() {
        ctx.progress(&format!("deleting blue `{blue}`"), None, None);
        wait(step, started, interval, || {
            format!("blue `{blue}` was not deleted")
        })
        .await?;
    }
    if let Some(BlueSet {
        zone_id,
        record,
        set: Some(set),
    }) = dns
    {
        let fact = DELETED.of("dns");
        if ctx.fact(&fact).await.is_none() {
            ctx.record(&fact, &crate::journal::now()).await?;
            route53::delete_sets(
                &ctx.conn.route53,
                zone_id,
                record,
                RECORD_TYPE,
                std::slice::from_ref(set),
                &format!("eks-upgrade: retire blue {blue}"),
            )
            .await
            .context(|| {
                format!(
                    "blue `{blue}` is deleted, but its DNS set `{}` is not",
                    set.set_identifier
                )
            })?;
        }
    }
    Ok(())
}

fn poll_interval(step: &RetireBlue) -> Duration {
    (step.timeout.0 / 120).clamp(Duration::from_millis(200), Duration::from_secs(15))
}

async fn wait(
    step: &RetireBlue,
    started: Instant,
    interval: Duration,
    what: impl FnOnce() -> String,
) -> Result<(), StepError> {
    if started.elapsed() + interval > step.timeout.0 {
        return Err(StepError::InFlight(format!(
            "{} within {}; EKS goes on deleting",
            what(),
            step.timeout
        )));
    }
    tokio::time::sleep(interval).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commands_delete_groups_before_the_cluster_and_the_dns_set_last() {
        let dns = BlueSet {
            zone_id: "Z1".into(),
            record: "app.example.com".into(),
            set: Some(route53::Weighted {
                set_identifier: "blue".into(),
                weight: 0,
                ttl: 60,
                values: vec!["k8s-shop-web.elb.amazonaws.com".into()],
            }),
        };
        let c = commands("demo", "us-east-1", &["a".into(), "b".into()], Some(&dns));
        assert_eq!(c.len(), 7, "{c:#?}");
        assert!(
            c[0].starts_with("aws eks delete-nodegroup") && c[0].ends_with("--nodegroup-name a")
        );
        assert!(c[2].starts_with("aws eks wait nodegroup-deleted"));
        assert_eq!(
            c[4],
            "aws eks delete-cluster --region us-east-1 --name demo"
        );
        assert!(
            c[6].contains("--hosted-zone-id Z1 --change-batch '{"),
            "{}",
            c[6]
        );
        assert!(c[6].contains(r#""SetIdentifier":"blue""#) && c[6].contains(r#""Weight":0"#));
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
