//! `preflight`: runs the check catalog for every hop and stops the run when findings reach the
//! workflow's `failOn`.

use super::{StepCtx, StepError, StepResult};
use crate::checks::{self, Severity};
use crate::workflow::model::Preflight;

pub async fn run(step: &Preflight, ctx: &StepCtx<'_>) -> StepResult {
    let hops = ctx.journal.read(|j| j.hops.clone()).await;
    let facts = checks::gather(ctx.conn, ctx.workflow, &hops)
        .await
        .map_err(|e| StepError::Failed(e.to_string()))?;
    let findings = checks::apply_policy(checks::run_all(&facts).await, step);
    ctx.record("findings", &findings).await?;
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
        Err(StepError::Failed(format!(
            "{} findings stop the run: {}{}",
            blocking.len(),
            shown.join("; "),
            if blocking.len() > 5 { "; …" } else { "" }
        )))
    }
}
