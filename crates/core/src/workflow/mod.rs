//! The workflow file format.
//!
//! Loading runs in stages, each reporting everything it finds:
//! 1. [`source`]: read the file with size, type and encoding checks;
//! 2. [`node`]: parse YAML into a located tree, under budgets against hostile input;
//! 3. [`lint`]: check the tree against the schema generated from [`raw`];
//! 4. deserialize into the [`raw`] types (locations kept);
//! 5. [`validate`]: build the [`model`] the engine runs.

pub mod diagnostic;
pub mod lint;
pub mod model;
pub mod node;
pub mod raw;
pub mod schema;
pub mod source;
pub mod spanned;
pub mod validate;

use std::path::Path;
use std::sync::{Arc, OnceLock};

pub use diagnostic::{LoadError, Problem, Style, render};
pub use model::{Phase, Step, StepKind, Target, Workflow};

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

fn schema_json() -> &'static serde_json::Value {
    static SCHEMA: OnceLock<serde_json::Value> = OnceLock::new();
    SCHEMA.get_or_init(schema::schema)
}

/// Loads and validates a workflow file.
pub fn load(path: &Path) -> Result<Workflow, LoadError> {
    let text = source::read(path)?;
    parse(path, text)
}

/// Validates workflow text that was read from `path`.
pub fn parse(path: &Path, text: Arc<str>) -> Result<Workflow, LoadError> {
    let invalid = |problems: Vec<Problem>| LoadError::Invalid {
        path: path.to_path_buf(),
        text: text.clone(),
        problems,
    };
    let tree =
        node::parse(&text, parse_options()).map_err(|e| invalid(vec![yaml_problem(&e, &text)]))?;
    if matches!(tree.value, node::Value::Null) {
        return Err(invalid(vec![Problem::new("the workflow file is empty").help(
            "start from a shipped workflow such as `workflows/in-place.yaml`; `eks-upgrade schema` prints the format",
        )]));
    }
    let problems = lint::lint(&tree, schema_json());
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let raw: raw::RawWorkflow = serde_saphyr::from_str_with_options(&text, parse_options())
        .map_err(|e| invalid(vec![yaml_problem(&e, &text)]))?;
    validate::validate(&raw, path, &text).map_err(invalid)
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
            raw.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator; the test must be reproducible without extra crates.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Thousands of mangled copies of a real workflow: loading and rendering must never panic,
    /// and every failure must carry at least one problem.
    #[test]
    fn mangled_workflows_never_panic() {
        let original = include_str!("../../../../workflows/in-place.yaml")
            .as_bytes()
            .to_vec();
        let alphabet: &[u8] = b" \t\n:-[]{},&*!|>'\"#%@`?01aZ\xc3\xa9";
        let mut rng = XorShift(0x5eed_1234_abcd_ef01);
        for round in 0..2000 {
            let mut bytes = original.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len());
                match rng.below(4) {
                    0 => {
                        let len = rng.below(40).min(bytes.len() - at);
                        bytes.drain(at..at + len);
                    }
                    1 => bytes.insert(at, alphabet[rng.below(alphabet.len())]),
                    2 => {
                        let len = rng.below(80).min(bytes.len() - at);
                        let copy: Vec<u8> = bytes[at..at + len].to_vec();
                        let to = rng.below(bytes.len());
                        bytes.splice(to..to, copy);
                    }
                    _ => bytes[at] = alphabet[rng.below(alphabet.len())],
                }
                if bytes.is_empty() {
                    break;
                }
            }
            let Ok(text) = String::from_utf8(bytes) else {
                continue;
            };
            match parse(Path::new("mangled.yaml"), text.into()) {
                Ok(_) => {}
                Err(e) => {
                    if let LoadError::Invalid { problems, .. } = &e {
                        assert!(
                            !problems.is_empty(),
                            "round {round}: an error without problems"
                        );
                    }
                    let rendered = render(&e, Style::Plain);
                    assert!(!rendered.is_empty(), "round {round}: nothing rendered");
                }
            }
        }
    }
}
