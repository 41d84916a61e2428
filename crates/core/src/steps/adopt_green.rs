//! `adoptGreen`: takes a cluster made outside the run (by infrastructure code, eksctl or a
//! person) as the green cluster: `spec.green.name` must exist at the target version, and the
//! step waits until EKS says `ACTIVE`. Nothing is created or changed; the run records green
//! (run fact `GREEN`, `created: false`) so that the later green steps, recovery and the report
//! know which cluster it is, and that the run did not make it.

use std::time::Instant;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::green::{GREEN, GreenCluster};
use super::kind::{BuildCx, Kind, Placement, PlanCx, Role, TimeScale};
use super::wait_green::{self, GREEN_PLACEMENT, Waited};
use super::{StepCtx, StepError, StepResult};
use crate::cloud::eks::{self, EksError};
use crate::cloud::eks_create;
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::DurationText;
use crate::types::HumanDuration;
use crate::types::version::minor_of;

/// Defaults of the step's options.
pub mod defaults {
    use std::time::Duration;

    pub const TIMEOUT: Duration = Duration::from_secs(30 * 60);
}

/// Options for adopting green.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawAdoptGreen {
    /// How long a green that is still being created may take to become ACTIVE. Default: `30m`.
    pub timeout: Option<Spanned<DurationText>>,
}

/// A validated `adoptGreen` step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdoptGreen {
    /// `spec.green.name`: the cluster to adopt.
    pub green_name: String,
    pub timeout: HumanDuration,
    pub interval: HumanDuration,
}

pub struct AdoptGreenKind;

impl Kind for AdoptGreenKind {
    type Raw = RawAdoptGreen;
    type Model = AdoptGreen;

    const DOC: &'static str = "Takes the cluster named by `spec.green.name`, made outside the run at the target version, as the green cluster.";
    const TITLE: &'static str = "Adopt green";
    const PLACEMENT: Placement = GREEN_PLACEMENT;
    const MUTATES: bool = false;
    const ROLES: &'static [Role] = &[Role::ProvidesGreen];
    const EXAMPLE: &'static str = "{ timeout: 30m }";

    fn build(
        raw: &Spanned<RawAdoptGreen>,
        v: &mut Validator<'_>,
        cx: &BuildCx<'_>,
    ) -> Option<AdoptGreen> {
        let timeout = v.positive("timeout", raw.value.timeout.as_ref(), defaults::TIMEOUT);
        // Built even without a name (the problem is reported here), so that the steps after it
        // are not also told that no step provides green.
        let name = cx.blue_green.and_then(|b| b.green_name.clone());
        if name.is_none() {
            v.problem(
                raw.loc,
                "`adoptGreen` needs the name of the cluster to adopt",
                "no `spec.green.name`",
                "name the cluster made for the target version in `spec.green: { name: … }`, or use `createGreen` to have the run make it",
            );
        }
        Some(AdoptGreen {
            green_name: name.unwrap_or_default(),
            timeout,
            interval: HumanDuration(wait_green::defaults::INTERVAL),
        })
    }

    async fn plan(step: &AdoptGreen, cx: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        let name = &step.green_name;
        let target = cx.hop.unwrap_or(cx.before);
        Ok(match eks_create::describe(&cx.conn.eks, name).await? {
            None => vec![format!(
                "green `{name}` does not exist yet: the run stops at this step unless it is made first, at {target}"
            )],
            Some(c) => {
                let version = c.version().unwrap_or("?");
                let status = c.status().map_or("?", |s| s.as_str());
                let groups = eks::nodegroups(&cx.conn.eks, name)
                    .await
                    .map(|g| g.len())
                    .unwrap_or(0);
                let mut line = format!(
                    "green `{name}`: adopted as it is (Kubernetes {version}, {status}, {groups} node groups); nothing is created"
                );
                if minor_of(version) != Some(target) {
                    line.push_str(&format!(
                        "; it is not at the target {target}, so the run stops here"
                    ));
                }
                vec![line]
            }
        })
    }

    async fn run(step: &AdoptGreen, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }

    fn scale_time(step: &mut AdoptGreen, scale: &TimeScale) {
        scale.timeout(&mut step.timeout);
        scale.apply(&mut step.interval, 100);
    }
}

async fn run(step: &AdoptGreen, ctx: &StepCtx<'_>) -> StepResult {
    let deadline = Instant::now() + step.timeout.0;
    let target = ctx.hop()?;
    let name = step.green_name.as_str();
    if name == ctx.cluster() {
        return Err(StepError::Failed(format!(
            "`spec.green.name` names blue `{name}` itself\nhint: name the cluster made for {target}"
        )));
    }
    let Some(c) = eks_create::describe(&ctx.conn.eks, name).await? else {
        return Err(StepError::Failed(format!(
            "no cluster named `{name}` to adopt in {}; nothing was changed\nhint: create it at {target} first (with your infrastructure code or eksctl), or use `createGreen`",
            ctx.conn.cluster.region
        )));
    };
    let version = c.version().unwrap_or_default().to_string();
    if minor_of(&version) != Some(target) {
        return Err(StepError::Failed(format!(
            "cluster `{name}` runs Kubernetes {version}, not the target {target}; it is not adopted\nhint: make green at {target}, or set `spec.target` to {version}"
        )));
    }
    let c = match wait_green::cluster_active(ctx, name, deadline, step.interval.0).await? {
        Waited::Done(c) => c,
        Waited::TimedOut(w) => {
            return Err(StepError::Failed(format!(
                "cluster `{name}` is not ACTIVE after {}: {w}",
                step.timeout
            )));
        }
    };
    let green = GreenCluster {
        name: name.to_string(),
        arn: c.arn().unwrap_or_default().to_string(),
        version: target,
        created: false,
    };
    ctx.journal.record_run_fact(&GREEN, &green).await?;
    let groups = eks::nodegroups(&ctx.conn.eks, name).await?.len();
    let addons = eks::addons(&ctx.conn.eks, name).await?.len();
    Ok(format!(
        "adopted `{name}` as green: Kubernetes {target}, ACTIVE, {groups} node groups, {addons} add-ons; the run did not create it and will not delete it"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::spanned::Loc;
    use crate::steps::blue_green::BlueGreen;

    fn build(green: Option<&str>) -> (Option<AdoptGreen>, Vec<String>) {
        let mut v = Validator::new("adoptGreen: {}\n");
        let velero = crate::velero::Settings {
            namespace: "velero".into(),
            storage_location: "default".into(),
        };
        let settings = green.map(|g| BlueGreen {
            green_name: Some(g.into()),
            traffic: None,
        });
        let raw = Spanned::new(
            RawAdoptGreen::default(),
            Loc {
                line: 1,
                column: 1,
                chars: 10,
            },
        );
        let built = AdoptGreenKind::build(
            &raw,
            &mut v,
            &BuildCx {
                velero: &velero,
                blue_green: settings.as_ref(),
                dir: std::path::Path::new("."),
            },
        );
        (
            built,
            v.into_problems().into_iter().map(|p| p.message).collect(),
        )
    }

    #[test]
    fn adopting_needs_green_named_in_the_file() {
        let (_, problems) = build(None);
        assert_eq!(
            problems,
            ["`adoptGreen` needs the name of the cluster to adopt"]
        );
        let (built, problems) = build(Some("demo-green"));
        assert!(problems.is_empty(), "{problems:?}");
        let built = built.expect("built");
        assert_eq!(built.green_name, "demo-green");
        assert_eq!(built.timeout.0, defaults::TIMEOUT);
    }
}
