//! The helper every part of the format validates through: it collects problems with their
//! locations (nothing stops at the first), and parses and defaults the values that step kinds
//! and the document share (durations, names).

use std::str::FromStr;

use super::diagnostic::{Locator, Problem};
use super::spanned::{Loc, Spanned};
use super::text::DurationText;
use crate::types::HumanDuration;

pub struct Validator<'a> {
    locator: Locator<'a>,
    problems: Vec<Problem>,
}

impl Validator<'_> {
    pub fn problem(
        &mut self,
        loc: Loc,
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<String>,
    ) {
        let span = self.locator.span(loc);
        self.problems
            .push(Problem::new(message).at(span).label(label).help(help));
    }

    pub fn duration(
        &mut self,
        field: &str,
        value: Option<&Spanned<DurationText>>,
        default: std::time::Duration,
    ) -> HumanDuration {
        let Some(text) = value else {
            return HumanDuration(default);
        };
        match HumanDuration::from_str(&text.value.0) {
            Ok(d) => d,
            Err(e) => {
                self.problem(
                    text.loc,
                    format!("`{field}`: {e}"),
                    "not a duration",
                    e.help(),
                );
                HumanDuration(default)
            }
        }
    }

    /// A duration that must be longer than zero (timeouts, intervals).
    pub fn positive(
        &mut self,
        field: &str,
        value: Option<&Spanned<DurationText>>,
        default: std::time::Duration,
    ) -> HumanDuration {
        let d = self.duration(field, value, default);
        if d.0.is_zero()
            && let Some(text) = value
        {
            self.problem(
                text.loc,
                format!("`{field}` must be longer than zero"),
                "zero",
                format!(
                    "use a positive duration, such as `{}`",
                    HumanDuration(default)
                ),
            );
        }
        d
    }

    pub fn dns_label(&mut self, what: &str, value: &Spanned<String>) -> bool {
        let s = value.value.as_str();
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if !ok {
            self.problem(
                value.loc,
                format!("{what} `{s}` is not a valid name"),
                "invalid name",
                "use lowercase letters, digits and `-`, starting and ending with a letter or digit, at most 63 characters",
            );
        }
        ok
    }
}

impl<'a> Validator<'a> {
    /// A validator for problems in `text`.
    pub fn new(text: &'a str) -> Self {
        Validator {
            locator: Locator::new(text),
            problems: Vec::new(),
        }
    }

    /// The 1-based line a location is on, for messages that point at another place.
    pub fn line_of(&self, loc: Loc) -> usize {
        self.locator.line_col(self.locator.span(loc).offset).0
    }

    /// Whether any problem has been found so far.
    pub fn has_problems(&self) -> bool {
        !self.problems.is_empty()
    }

    /// The problems found, in source order.
    pub fn into_problems(mut self) -> Vec<Problem> {
        self.problems
            .sort_by_key(|p| p.span.map_or(0, |s| s.offset));
        self.problems
    }
}
