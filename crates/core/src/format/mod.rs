//! The machinery of the workflow format, below everything that defines a part of it: reading a
//! file safely, parsing YAML into a located tree, the structural check against the schema,
//! values that keep their location, the problems found and how they are drawn, and the helper
//! that step kinds and the document use to check and default their values.
//!
//! Loading a workflow runs in stages, each reporting everything it finds:
//! 1. [`source`]: read the file with size, type and encoding checks;
//! 2. [`node`]: parse YAML into a located tree, under budgets against hostile input;
//! 3. [`lint`]: check the tree against the schema generated from the as-written types;
//! 4. deserialize into the as-written types (locations kept, [`spanned`]);
//! 5. validate into the model the engine runs ([`check::Validator`]).

pub mod check;
pub mod diagnostic;
pub mod lint;
pub mod node;
pub mod source;
pub mod spanned;
pub mod text;

pub use check::Validator;
pub use diagnostic::{LoadError, Problem, Style, render};
pub use spanned::{Loc, Spanned};

use diagnostic::Locator;
use node::Span;

/// Parser settings. Workflow files are small and flat, so the budgets are far below
/// serde-saphyr's defaults: an alias bomb or a deeply nested file is refused in milliseconds.
pub fn parse_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 32,
            flow_nesting_limit: 32,
            max_aliases: 256,
            max_anchors: 256,
            max_events: 200_000,
            max_nodes: 50_000,
            max_total_scalar_bytes: 1024 * 1024,
            max_documents: 1,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 10_000,
            max_replay_stack_depth: 16,
            max_alias_expansions_per_anchor: 64,
        },
        strict_booleans: true,
    }
}

/// A serde-saphyr error as a problem, in words about the file rather than about the parser, with
/// advice for the mistakes people actually make.
pub fn yaml_problem(err: &serde_saphyr::Error, text: &str) -> Problem {
    use serde_saphyr::budget::BudgetBreach;
    use serde_saphyr::{Error, MessageFormatter};

    let outer = err.without_snippet();
    // Errors met while replaying an alias come wrapped; the cause is what to explain.
    let inner = match outer {
        Error::AliasError { error, .. } => error.without_snippet(),
        other => other,
    };
    let raw = serde_saphyr::UserMessageFormatter
        .format_message(inner)
        .into_owned();
    let too_complex =
        "workflow files are small and flat; this one exceeds the parser's safety limits";
    let (message, help) = match inner {
        Error::AliasReplayLimitExceeded { .. }
        | Error::AliasExpansionLimitExceeded { .. }
        | Error::AliasReplayStackDepthExceeded { .. }
        | Error::AliasReplayCounterOverflow { .. }
        | Error::Budget {
            breach: BudgetBreach::Aliases { .. } | BudgetBreach::Anchors { .. },
            ..
        } => (
            "the file expands YAML aliases (`*name`) beyond the safety limit".to_string(),
            "write the values out; a workflow has no need for aliases that expand this far"
                .to_string(),
        ),
        Error::Budget {
            breach: BudgetBreach::Depth { .. },
            ..
        } => (
            "the file is nested too deeply".to_string(),
            format!("{too_complex} on nesting"),
        ),
        Error::Budget {
            breach: BudgetBreach::Documents { .. },
            ..
        }
        | Error::MultipleDocuments { .. } => (
            "the file holds more than one YAML document".to_string(),
            "a workflow file is one document; remove the extra `---` sections".to_string(),
        ),
        Error::Budget { breach, .. } => (
            format!("the file exceeds the parser's safety limits ({breach:?})"),
            too_complex.to_string(),
        ),
        Error::DuplicateMappingKey { key, .. } => (
            match key {
                Some(k) => format!("`{k}` appears twice in the same mapping"),
                None => "a key appears twice in the same mapping".to_string(),
            },
            "each key may appear once in a mapping; remove or merge the repeated one".to_string(),
        ),
        _ if raw.contains("recursion limit") => (
            "the file is nested too deeply".to_string(),
            format!("{too_complex} on nesting"),
        ),
        Error::SerdeMissingField { .. }
        | Error::SerdeUnknownField { .. }
        | Error::SerdeInvalidType { .. }
        | Error::SerdeInvalidValue { .. }
        | Error::SerdeUnknownVariant { .. } => (
            raw,
            "see the documented format of this file".to_string(),
        ),
        _ if raw.contains("tab") => (
            format!("invalid YAML: {raw}"),
            "YAML indentation must use spaces; replace the tabs with spaces".to_string(),
        ),
        _ => (
            format!("invalid YAML: {raw}"),
            "check the YAML syntax here; `eks-upgrade schema` prints the format".to_string(),
        ),
    };
    let mut problem = Problem::new(message).help(help);
    if let Some(loc) = outer.location().filter(|l| l.line() > 0)
        && !text.is_empty()
    {
        let span = Locator::new(text).span(spanned::Loc {
            line: loc.line(),
            column: loc.column(),
            chars: 1,
        });
        problem = problem
            .at(Span::new(span.offset.min(text.len() - 1), span.len))
            .label("here");
    }
    problem
}
