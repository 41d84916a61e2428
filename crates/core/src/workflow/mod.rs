//! The workflow document: loading a file through the stages of `crate::format`, the
//! document-level types ([`raw`] as written, [`model`] validated), the rules about the workflow
//! as a whole ([`validate`]), and the schema ([`schema`]). Steps are declared by their kinds in
//! `crate::steps`.

pub mod model;
pub mod raw;
pub mod schema;
pub mod validate;

use std::path::Path;
use std::sync::{Arc, OnceLock};

pub use crate::format::{LoadError, Problem, Style, render};
pub use crate::steps::{Step, StepKind};
pub use crate::types::Phase;
pub use model::{Target, Workflow};

use crate::format::{lint, node, parse_options, source, yaml_problem};

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
    let linted = lint::lint_detailed(&tree, schema_json());
    if linted.problems.is_empty() {
        let raw: raw::RawWorkflow = serde_saphyr::from_str_with_options(&text, parse_options())
            .map_err(|e| invalid(vec![yaml_problem(&e, &text)]))?;
        return validate::validate(&raw, path, &text).map_err(invalid);
    }
    // One unknown field must not hide every other problem: without the unknown fields, the
    // rest of the file may still be checked, and its problems reported with them.
    let mut problems = linted.problems;
    if !linted.other_problems {
        problems.extend(semantic_problems(path, &text, &linted.unknown_fields));
        problems.sort_by_key(|p| p.span.map_or(0, |s| s.offset));
    }
    Err(invalid(problems))
}

/// The problems of validation proper in `text` without `fields`, located in `text`; none when
/// the file does not hold together without them.
fn semantic_problems(
    path: &Path,
    text: &str,
    fields: &[(node::Span, node::Span)],
) -> Vec<Problem> {
    let stripped = lint::without_fields(text, fields);
    let Ok(tree) = node::parse(&stripped, parse_options()) else {
        return Vec::new();
    };
    if !lint::lint(&tree, schema_json()).is_empty() {
        return Vec::new();
    }
    let Ok(raw) =
        serde_saphyr::from_str_with_options::<raw::RawWorkflow>(&stripped, parse_options())
    else {
        return Vec::new();
    };
    // Lines and columns are the same in both texts; the original is the one shown.
    validate::validate(&raw, path, text).err().unwrap_or_default()
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
