//! `eks-upgrade validate FILE...`

use std::path::PathBuf;

use serde::Serialize;

use crate::ui::Ui;
use eks_upgrade_core::exit::ExitStatus;
use eks_upgrade_core::format::diagnostic::Locator;
use eks_upgrade_core::workflow::{self, LoadError, Phase, Workflow};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Output {
    /// Diagnostics for people, on stderr.
    #[default]
    Text,
    /// One JSON document on stdout, for editors and CI.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Workflow files to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// `text` for people, `json` for machines.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Serialize)]
struct FileReport {
    path: PathBuf,
    valid: bool,
    problems: Vec<ProblemReport>,
}

#[derive(Serialize)]
struct ProblemReport {
    message: String,
    line: Option<usize>,
    column: Option<usize>,
    help: Option<String>,
}

fn summary(w: &Workflow) -> String {
    let parts: Vec<String> = [
        Phase::Prepare,
        Phase::Upgrade,
        Phase::OnFailure,
        Phase::Finish,
    ]
    .into_iter()
    .filter(|p| !w.phase(*p).is_empty())
    .map(|p| format!("{} {}", w.phase(p).len(), p.key()))
    .collect();
    if parts.is_empty() {
        "no steps".to_string()
    } else {
        parts.join(", ")
    }
}

fn report(path: PathBuf, result: &Result<Workflow, LoadError>) -> FileReport {
    let problems = match result {
        Ok(_) => Vec::new(),
        Err(LoadError::Invalid { text, problems, .. }) => {
            let locator = Locator::new(text);
            problems
                .iter()
                .map(|p| {
                    let (line, column) = p.span.map(|s| locator.line_col(s.offset)).unzip();
                    ProblemReport {
                        message: p.message.clone(),
                        line,
                        column,
                        help: p.help.clone(),
                    }
                })
                .collect()
        }
        Err(other) => vec![ProblemReport {
            message: other.to_string(),
            line: None,
            column: None,
            help: None,
        }],
    };
    FileReport {
        path,
        valid: result.is_ok(),
        problems,
    }
}

pub fn run(ui: &Ui, args: Args) -> ExitStatus {
    let mut invalid = 0usize;
    let mut reports = Vec::new();
    for path in &args.files {
        let result = workflow::load(path);
        match (&result, args.output) {
            (Ok(w), Output::Text) => ui.info(format!(
                "{} `{}` ({})",
                ui.good("Valid"),
                path.display(),
                summary(w)
            )),
            (Err(e), Output::Text) => {
                ui.diagnostic(&workflow::render(e, ui.diagnostic_style()));
            }
            (_, Output::Json) => reports.push(report(path.clone(), &result)),
        }
        if result.is_err() {
            invalid += 1;
        }
    }
    if args.output == Output::Json {
        match serde_json::to_string_pretty(&reports) {
            Ok(json) => println!("{json}"),
            Err(e) => ui.error(format!("cannot encode the report: {e}")),
        }
    } else if invalid > 0 {
        ui.error(format!(
            "{invalid} of {} workflow {} invalid",
            args.files.len(),
            if args.files.len() == 1 {
                "file is"
            } else {
                "files are"
            }
        ));
    }
    if invalid == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Usage
    }
}
