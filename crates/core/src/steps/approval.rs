//! `approval`: a person confirms, or `--yes` / `auto: true` approved in advance. Without a
//! terminal and without either, the step fails: a scheduled run must never hang on a prompt.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kind::{BuildCx, Kind, Placement, PlanCx};
use super::{StepCtx, StepError, StepResult};
use crate::cloud::eks::EksError;
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::journal::Fact;
use crate::types::Phase;

/// Who approved at a prompt.
pub const APPROVED_BY: Fact<String> = Fact::new("approvedBy");

/// The question asked unless the step says.
pub const DEFAULT_MESSAGE: &str = "Continue with the upgrade?";

/// Options for a confirmation.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawApproval {
    /// The question to ask.
    pub message: Option<String>,
    /// Approve without asking, also when unattended. Default: `false`.
    pub auto: Option<bool>,
}

/// A validated `approval` step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub message: String,
    pub auto: bool,
}

pub struct ApprovalKind;

impl Kind for ApprovalKind {
    type Raw = RawApproval;
    type Model = Approval;

    const DOC: &'static str = "Asks a person to confirm, or requires `--yes` when unattended.";
    const TITLE: &'static str = "Approval";
    const PLACEMENT: Placement = Placement {
        sections: &[Phase::Prepare, Phase::Upgrade, Phase::Finish],
        why: "recovery in `onFailure` must never wait for a person",
    };
    const MUTATES: bool = false;
    const EXAMPLE: &'static str = "{ message: Go on? }";

    fn build(
        raw: &Spanned<RawApproval>,
        _: &mut Validator<'_>,
        _: &BuildCx<'_>,
    ) -> Option<Approval> {
        Some(Approval {
            message: raw
                .value
                .message
                .clone()
                .unwrap_or_else(|| DEFAULT_MESSAGE.to_string()),
            auto: raw.value.auto.unwrap_or(false),
        })
    }

    async fn plan(step: &Approval, _: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        Ok(if step.auto {
            vec!["approved by the workflow".into()]
        } else {
            vec![format!("asks: “{}” (or `--yes`)", step.message)]
        })
    }

    async fn run(step: &Approval, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }
}

async fn run(step: &Approval, ctx: &StepCtx<'_>) -> StepResult {
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
            ctx.record(&APPROVED_BY, &"terminal".to_string()).await?;
            Ok("approved".into())
        }
        Ok(false) => Err(StepError::Failed("declined at the prompt".into())),
        Err(e) => Err(StepError::Cause(Box::new(e))),
    }
}
