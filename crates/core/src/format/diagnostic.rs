//! Problems found in a workflow file, and how they are shown to people.
//!
//! Every problem carries the byte span it is about, a short label for the caret, and a `help`
//! line that says how to fix it. Rendering goes through miette so that the output looks like the
//! rest of the tool's diagnostics: `file:line:col`, the source line, a caret, `help:`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, ThemeCharacters,
    ThemeStyles,
};

use super::node::{LineIndex, Span};
use super::spanned::Loc;

/// One thing wrong with a workflow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    /// Where in the file, as a byte span. `None` for problems about the file as a whole.
    pub span: Option<Span>,
    /// Text next to the caret.
    pub label: Option<String>,
    pub help: Option<String>,
}

impl Problem {
    pub fn new(message: impl Into<String>) -> Self {
        Problem {
            message: message.into(),
            span: None,
            label: None,
            help: None,
        }
    }

    pub fn at(mut self, span: Span) -> Self {
        self.span = Some(span);
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Converts serde-saphyr [`Loc`]s to byte spans for one source text.
pub struct Locator<'a> {
    index: LineIndex<'a>,
    text: &'a str,
}

impl<'a> Locator<'a> {
    pub fn new(text: &'a str) -> Self {
        Locator {
            index: LineIndex::new(text),
            text,
        }
    }

    pub fn span(&self, loc: Loc) -> Span {
        let offset = self.index.offset(loc.line, loc.column);
        let rest = &self.text[offset.min(self.text.len())..];
        let chars = usize::try_from(loc.chars).unwrap_or(0).max(1);
        let len = rest
            .char_indices()
            .nth(chars)
            .map_or(rest.len(), |(i, _)| i);
        Span::new(offset, len.max(1))
    }

    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        self.index.line_col(offset)
    }
}

/// Why a workflow file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("`{}` does not exist", path.display())]
    NotFound { path: PathBuf },
    #[error("`{}` is a directory, not a workflow file", path.display())]
    IsDirectory { path: PathBuf },
    #[error("`{}` is {size} bytes; workflow files are limited to {limit} bytes", path.display())]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("`{}` is not a text file: {reason}", path.display())]
    NotText { path: PathBuf, reason: String },
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` has {} {}", path.display(), problems.len(), if problems.len() == 1 { "problem" } else { "problems" })]
    Invalid {
        path: PathBuf,
        text: Arc<str>,
        problems: Vec<Problem>,
    },
}

impl LoadError {
    pub fn path(&self) -> &Path {
        match self {
            LoadError::NotFound { path }
            | LoadError::IsDirectory { path }
            | LoadError::TooLarge { path, .. }
            | LoadError::NotText { path, .. }
            | LoadError::Io { path, .. }
            | LoadError::Invalid { path, .. } => path,
        }
    }

    fn help(&self) -> Option<String> {
        match self {
            LoadError::NotFound { .. } => Some(
                "check the path; the shipped workflows are in `workflows/`, such as `workflows/in-place.yaml`"
                    .into(),
            ),
            LoadError::IsDirectory { path } => Some(format!(
                "name the files, for example `{}/*.yaml`",
                path.display()
            )),
            LoadError::TooLarge { .. } => Some(
                "a workflow describes steps, not data; split it, or check that this is the file you meant"
                    .into(),
            ),
            LoadError::NotText { .. } => Some("workflow files are UTF-8 YAML text".into()),
            LoadError::Io { .. } => None,
            LoadError::Invalid { .. } => None,
        }
    }
}

/// How diagnostics are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Unicode box drawing and colour, for terminals.
    Fancy,
    /// Plain ASCII without colour, for logs, pipes and snapshots.
    Plain,
}

struct ProblemDiagnostic<'a> {
    problem: &'a Problem,
    source: &'a NamedSource<Arc<str>>,
}

impl fmt::Debug for ProblemDiagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProblemDiagnostic")
            .field("problem", self.problem)
            .finish()
    }
}

impl fmt::Display for ProblemDiagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem.message)
    }
}

impl std::error::Error for ProblemDiagnostic<'_> {}

impl Diagnostic for ProblemDiagnostic<'_> {
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.problem
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.problem
            .span
            .map(|_| self.source as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.problem.span?;
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            self.problem.label.clone(),
            span,
        ))))
    }
}

struct PlainDiagnostic<'a> {
    message: String,
    help: Option<String>,
    _marker: std::marker::PhantomData<&'a ()>,
}

impl fmt::Debug for PlainDiagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for PlainDiagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PlainDiagnostic<'_> {}

impl Diagnostic for PlainDiagnostic<'_> {
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
}

fn handler(style: Style) -> GraphicalReportHandler {
    let theme = match style {
        Style::Fancy => GraphicalTheme::unicode(),
        Style::Plain => GraphicalTheme {
            characters: ThemeCharacters::ascii(),
            styles: ThemeStyles::none(),
        },
    };
    GraphicalReportHandler::new_themed(theme)
        .with_context_lines(1)
        .with_width(100)
        .with_links(false)
}

fn render_one(handler: &GraphicalReportHandler, diagnostic: &dyn Diagnostic, out: &mut String) {
    if handler.render_report(out, diagnostic).is_err() {
        // Rendering into a String cannot fail short of a formatter bug; keep the message anyway.
        out.push_str(&diagnostic.to_string());
        out.push('\n');
    }
}

/// Lines longer than this are not shown as a snippet.
const MAX_SNIPPET_LINE: usize = 300;

fn line_len(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    end - start
}

/// Renders a load error: every problem with its location, source line, caret and help. Every
/// problem names the file: in its snippet's header, or after its message when it has none.
pub fn render(err: &LoadError, style: Style) -> String {
    let handler = handler(style);
    let mut out = String::new();
    match err {
        LoadError::Invalid {
            path,
            text,
            problems,
        } => {
            let name = path.display().to_string();
            let source = NamedSource::new(name.clone(), text.clone());
            let locator = Locator::new(text);
            for problem in problems {
                // A problem about the file as a whole has no snippet to carry the file's name.
                if problem.span.is_none() {
                    let named = Problem {
                        message: format!("{} (in {name})", problem.message),
                        ..problem.clone()
                    };
                    let diagnostic = ProblemDiagnostic {
                        problem: &named,
                        source: &source,
                    };
                    render_one(&handler, &diagnostic, &mut out);
                    continue;
                }
                match problem
                    .span
                    .filter(|s| line_len(text, s.offset) > MAX_SNIPPET_LINE)
                {
                    // A snippet of a megabyte-long line helps nobody; name the place instead.
                    Some(span) => {
                        let (line, col) = locator.line_col(span.offset);
                        let located = Problem {
                            message: format!("{} (at {name}:{line}:{col})", problem.message),
                            span: None,
                            ..problem.clone()
                        };
                        let diagnostic = ProblemDiagnostic {
                            problem: &located,
                            source: &source,
                        };
                        render_one(&handler, &diagnostic, &mut out);
                    }
                    None => render_one(
                        &handler,
                        &ProblemDiagnostic {
                            problem,
                            source: &source,
                        },
                        &mut out,
                    ),
                }
            }
        }
        other => {
            let diagnostic = PlainDiagnostic {
                message: other.to_string(),
                help: other.help(),
                _marker: std::marker::PhantomData,
            };
            render_one(&handler, &diagnostic, &mut out);
        }
    }
    out
}
