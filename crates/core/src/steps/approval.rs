//! `approval`: a person confirms, or `--yes` / `auto: true` approved in advance. Without a
//! terminal and without either, the step fails: a scheduled run must never hang on a prompt.

use super::{StepCtx, StepError, StepResult};
use crate::workflow::model::Approval;

pub async fn run(step: &Approval, ctx: &StepCtx<'_>) -> StepResult {
    if step.auto {
        return Ok("approved by the workflow (`auto: true`)".into());
    }
    if ctx.approved {
        return Ok("approved in advance with `--yes`".into());
    }
    if !ctx.reporter.interactive() {
        return Err(StepError::Failed(format!(
            "`{}` needs a person to approve, and there is no terminal; pass `--yes` to approve in advance",
            ctx.key.id
        )));
    }
    match ctx.reporter.confirm(&step.message) {
        Ok(true) => {
            ctx.record("approvedBy", &"terminal").await?;
            Ok("approved".into())
        }
        Ok(false) => Err(StepError::Failed("declined at the prompt".into())),
        Err(e) => Err(StepError::Failed(e.to_string())),
    }
}
