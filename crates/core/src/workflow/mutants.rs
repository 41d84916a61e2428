//! Mutants of workflow files for robustness tests: the loader is fed thousands of damaged
//! copies of the shipped workflows (bytes deleted, inserted, duplicated or replaced with YAML's
//! special characters) and must answer each with problems that name the file, never a panic.
//!
//! Deterministic on stable Rust without a fuzzing crate: a fixed seed gives the same mutants on
//! every machine, so a failure found in CI is reproduced by its seed and round alone. Used by
//! the bounded test in this module's parent, the integration test through the binary, and the
//! long run `cargo bench --bench fuzz_workflows`.

use std::path::Path;

use super::{LoadError, Style, parse, render};
use crate::format::diagnostic::Locator;

/// The shipped workflows, by file name.
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "in-place.yaml",
        include_str!("../../../../workflows/in-place.yaml"),
    ),
    (
        "multi-hop.yaml",
        include_str!("../../../../workflows/multi-hop.yaml"),
    ),
    (
        "eksctl.yaml",
        include_str!("../../../../workflows/eksctl.yaml"),
    ),
    (
        "check-only.yaml",
        include_str!("../../../../workflows/check-only.yaml"),
    ),
];

/// The seed of the bounded test and the default of the long run.
pub const SEED: u64 = 0x5eed_1234_abcd_ef01;

/// The generator lives with the shared value types; velero's JSON tests use it too.
pub use crate::types::xorshift::XorShift;

/// The characters that change YAML's structure, plus a letter, digits and a two-byte one.
const ALPHABET: &[u8] = b" \t\n:-[]{},&*!|>'\"#%@`?01aZ\xc3\xa9";

/// One to four random edits of `original`.
pub fn mutate(original: &[u8], rng: &mut XorShift) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for _ in 0..1 + rng.below(4) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.below(bytes.len());
        match rng.below(4) {
            0 => {
                let len = rng.below(40).min(bytes.len() - at);
                bytes.drain(at..at + len);
            }
            1 => bytes.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
            2 => {
                let len = rng.below(80).min(bytes.len() - at);
                let copy: Vec<u8> = bytes[at..at + len].to_vec();
                let to = rng.below(bytes.len());
                bytes.splice(to..to, copy);
            }
            _ => bytes[at] = ALPHABET[rng.below(ALPHABET.len())],
        }
    }
    bytes
}

/// What loading one mutant gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The mutant is still a valid workflow (a comment or a value changed harmlessly).
    Valid,
    /// Refused, and every problem names the file (and its line and column when it has a place).
    Refused { problems: usize },
    /// The mutant is not UTF-8; the loader's reading stage refuses those before parsing.
    NotText,
}

/// Loads `bytes` as the workflow `name` and checks the answer: an error must carry problems,
/// and its rendering must name the file for each of them, with `file:line:` for those that
/// have a place. `Err` says what is wrong with the answer.
pub fn check(name: &str, bytes: Vec<u8>) -> Result<Verdict, String> {
    let Ok(text) = String::from_utf8(bytes) else {
        return Ok(Verdict::NotText);
    };
    let e = match parse(Path::new(name), text.into()) {
        Ok(_) => return Ok(Verdict::Valid),
        Err(e) => e,
    };
    let rendered = render(&e, Style::Plain);
    let LoadError::Invalid { text, problems, .. } = &e else {
        return if rendered.contains(name) {
            Ok(Verdict::Refused { problems: 1 })
        } else {
            Err(format!("the error does not name `{name}`:\n{rendered}"))
        };
    };
    if problems.is_empty() {
        return Err("an error without problems".into());
    }
    let locator = Locator::new(text);
    for p in problems {
        let located = match p.span {
            Some(span) => {
                let (line, _) = locator.line_col(span.offset);
                format!("{name}:{line}:")
            }
            None => format!("(in {name})"),
        };
        if !rendered.contains(&located) {
            return Err(format!(
                "problem `{}` is not shown with `{located}`:\n{rendered}",
                p.message
            ));
        }
    }
    Ok(Verdict::Refused {
        problems: problems.len(),
    })
}
