//! `preflight`: runs the check catalog for every hop and stops the run when findings reach the
//! workflow's `failOn`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kind::{BuildCx, Kind, Placement, PlanCx};
use super::{StepCtx, StepError, StepResult};
use crate::checks::{self, CheckOverride, FailOn, Finding, OverrideSeverity, Policy, Severity};
use crate::cloud::eks::EksError;
use crate::format::Validator;
use crate::format::lint::did_you_mean;
use crate::format::spanned::Spanned;
use crate::journal::Fact;
use crate::types::Phase;

/// The findings, after the workflow's ignores and overrides.
pub const FINDINGS: Fact<Vec<Finding>> = Fact::new("findings");

/// Pre-flight options.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPreflight {
    /// Stop on `error` findings (default) or on `warning` ones too.
    pub fail_on: Option<FailOn>,
    /// Check codes to skip entirely.
    #[serde(default)]
    pub ignore: Vec<Spanned<String>>,
    /// Per-object exceptions: known findings that should count differently.
    #[serde(default)]
    pub overrides: Vec<Spanned<RawOverride>>,
}

/// Changes the severity of one check's findings for matching objects.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawOverride {
    /// The check code.
    pub check: Spanned<String>,
    /// Namespace of the objects; omit for any namespace.
    pub namespace: Option<String>,
    /// Name of the object; omit for any name.
    pub name: Option<String>,
    /// The severity to use instead, or `ignore`.
    pub severity: OverrideSeverity,
    /// Why the exception exists; shown in reports.
    pub reason: Option<String>,
}

pub struct PreflightKind;

impl Kind for PreflightKind {
    type Raw = RawPreflight;
    type Model = Policy;

    const DOC: &'static str = "Runs the pre-flight check catalog for every hop's target.";
    const TITLE: &'static str = "Pre-flight checks";
    const PLACEMENT: Placement = Placement {
        sections: &[Phase::Prepare],
        why: "pre-flight checks run before anything changes",
    };
    const MUTATES: bool = false;
    const EXAMPLE: &'static str = "{ failOn: error }";

    fn build(
        raw: &Spanned<RawPreflight>,
        v: &mut Validator<'_>,
        _: &BuildCx<'_>,
    ) -> Option<Policy> {
        let p = &raw.value;
        let codes = p
            .ignore
            .iter()
            .chain(p.overrides.iter().map(|o| &o.value.check));
        for code in codes {
            known_check(v, code);
        }
        Some(Policy {
            fail_on: p.fail_on.unwrap_or(FailOn::Error),
            ignore: p.ignore.iter().map(|c| c.value.clone()).collect(),
            overrides: p
                .overrides
                .iter()
                .map(|o| CheckOverride {
                    check: o.value.check.value.clone(),
                    namespace: o.value.namespace.clone(),
                    name: o.value.name.clone(),
                    severity: o.value.severity,
                    reason: o.value.reason.clone(),
                })
                .collect(),
        })
    }

    async fn plan(step: &Policy, _: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        Ok(vec![format!(
            "reads EKS and the cluster; stops the run on findings at `{}` or above",
            if step.fail_on == FailOn::Error {
                "error"
            } else {
                "warning"
            }
        )])
    }

    async fn run(step: &Policy, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }
}

/// A check code in `ignore` or `overrides` must exist: a typo would silently keep a finding
/// the operator meant to accept, or hide the one they meant to keep.
fn known_check(v: &mut Validator, code: &Spanned<String>) {
    let codes = checks::CATALOG.iter().map(|(c, _)| *c);
    if codes.clone().any(|c| c == code.value) {
        return;
    }
    let help = match did_you_mean(&code.value, codes) {
        Some(s) => {
            format!("did you mean `{s}`? `eks-upgrade check --list-checks` lists every code")
        }
        None => format!(
            "use one of the check codes: {}",
            checks::CATALOG
                .iter()
                .map(|(c, _)| *c)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    v.problem(
        code.loc,
        format!("unknown check code `{}`", code.value),
        "no such check",
        help,
    );
}

async fn run(step: &Policy, ctx: &StepCtx<'_>) -> StepResult {
    // Every minor on the way, not only the hops: a blue/green run jumps straight to the
    // target, but what a minor in between removed is gone at the target too.
    let hops = ctx
        .journal
        .read(|j| match (j.start_version, j.hops.last()) {
            (Some(start), Some(last)) => start.path_to(*last),
            _ => j.hops.clone(),
        })
        .await;
    let facts = checks::gather(ctx.conn, ctx.velero, ctx.coverage, &hops).await?;
    let findings = checks::apply_policy(checks::run_all(&facts).await, step);
    ctx.record(&FINDINGS, &findings).await?;
    for f in &findings {
        let line = format!("{} {}: {} — {}", f.code, f.object, f.message, f.remedy);
        if f.severity == Severity::Warning {
            ctx.warn(&line);
        }
    }
    let blocking = checks::blocking(&findings, step.fail_on);
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    if blocking.is_empty() {
        Ok(format!("{errors} errors, {warnings} warnings"))
    } else {
        let shown: Vec<String> = blocking
            .iter()
            .take(5)
            .map(|f| format!("{} {}: {}", f.code, f.object, f.message))
            .collect();
        // What to do about each, as the warnings above carry theirs: a stopped run is where the
        // operator most needs the remedy.
        let mut hints = String::new();
        for f in blocking.iter().take(5) {
            let line = format!("\nhint: {} {}: {}", f.code, f.object, f.remedy);
            if !f.remedy.is_empty() && !hints.contains(&line) {
                hints.push_str(&line);
            }
        }
        Err(StepError::Failed(format!(
            "{} findings stop the run: {}{}{hints}",
            blocking.len(),
            shown.join("; "),
            if blocking.len() > 5 { "; …" } else { "" }
        )))
    }
}
