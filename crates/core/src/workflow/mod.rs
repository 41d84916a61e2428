//! The workflow document: loading a file through the stages of `crate::format`, the
//! document-level types ([`raw`] as written, [`model`] validated), the rules about the workflow
//! as a whole ([`validate`]), and the schema ([`schema`]). Steps are declared by their kinds in
//! `crate::steps`.

pub mod model;
pub mod mutants;
pub mod raw;
pub mod schema;
pub mod validate;

use std::path::Path;
use std::sync::{Arc, OnceLock};

pub use crate::format::{LoadError, Problem, Style, render};
pub use crate::steps::{Step, StepKind};
pub use crate::types::Phase;
pub use model::{Strategy, Target, Workflow};

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
fn semantic_problems(path: &Path, text: &str, fields: &[(node::Span, node::Span)]) -> Vec<Problem> {
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
    validate::validate(&raw, path, text)
        .err()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::mutants::{self, SEED, SHIPPED, Verdict, XorShift};

    /// Thousands of mangled copies of every shipped workflow, from a fixed seed: loading and
    /// rendering never panic, every failure carries problems, and each problem is shown with
    /// the file's name, and its line where it has a place. (`cargo bench --bench
    /// fuzz_workflows` runs the same for as long as asked.)
    #[test]
    fn mangled_workflows_never_panic_and_name_the_file() {
        const PER_FILE: usize = 750;
        let mut rng = XorShift::new(SEED);
        let mut refused = 0;
        for (name, original) in SHIPPED {
            let name = format!("mangled-{name}");
            for round in 0..PER_FILE {
                let bytes = mutants::mutate(original.as_bytes(), &mut rng);
                match mutants::check(&name, bytes) {
                    Ok(Verdict::Refused { .. }) => refused += 1,
                    Ok(_) => {}
                    Err(why) => panic!("{name}, round {round}: {why}"),
                }
            }
        }
        // The mutations must reach the loader's refusals, or the test proves nothing.
        assert!(
            refused > SHIPPED.len() * PER_FILE / 3,
            "only {refused} mutants were refused"
        );
    }
}
