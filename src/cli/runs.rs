//! `eks-upgrade runs` and `eks-upgrade status RUN_ID`.

use crate::cli::args::StateArgs;
use crate::cli::inputs;
use crate::cli::run::{Output, print_json};
use crate::cli::session;
use crate::ui::Ui;
use eks_upgrade_core::engine::report;
use eks_upgrade_core::exit::ExitStatus;
use eks_upgrade_core::journal::store::Listed;
use eks_upgrade_core::journal::{RunResult, RunState};

#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// `text` for people, `json` for machines.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The run to show.
    pub run_id: String,
    #[command(flatten)]
    pub state: StateArgs,
    /// `text` (the Markdown report) for people, `json` (the JSON report) for machines.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

fn state_word(state: &RunState, result: Option<&str>) -> String {
    match (state, result) {
        (RunState::Done, Some(r)) => r.to_string(),
        (RunState::Done, None) => "done".into(),
        (s, _) => format!("unfinished ({})", state_name(s)),
    }
}

/// A state by the word the journal uses for it (`upgrade`, hop included), never its `Debug`.
fn state_name(state: &RunState) -> String {
    let value = serde_json::to_value(state).unwrap_or_default();
    let word = value["state"].as_str().unwrap_or("unknown").to_string();
    match value["hop"].as_u64() {
        Some(hop) => format!("{word}, hop {hop}"),
        None => word,
    }
}

async fn store(
    ui: &Ui,
    state: &StateArgs,
) -> Result<eks_upgrade_core::journal::store::JournalStore, ExitStatus> {
    inputs::check(ui, &[&|| inputs::check_state(state)])?;
    let sdk = if state.state.is_some() {
        Some(
            eks_upgrade_core::cloud::connect::load_sdk(None, None)
                .await
                .map_err(|e| session::connect_failed(ui, &e))?,
        )
    } else {
        None
    };
    session::open_store(ui, state, sdk.as_ref())
}

pub fn runs(ui: &Ui, args: RunsArgs) -> ExitStatus {
    let rt = match session::runtime(ui) {
        Ok(r) => r,
        Err(s) => return s,
    };
    rt.block_on(async {
        let store = match store(ui, &args.state).await {
            Ok(s) => s,
            Err(s) => return s,
        };
        let runs = match store.list().await {
            Ok(r) => r,
            Err(e) => {
                let message = e.to_string();
                ui.error(&message);
                if let Some(hint) = session::journal_hint(&message) {
                    ui.hint(hint);
                }
                return ExitStatus::Usage;
            }
        };
        match args.output {
            Output::Json => return print_json(ui, &runs),
            Output::Text if runs.is_empty() => ui.info(format!("No runs in {}.", store.describe())),
            Output::Text => print!("{}", table(&runs)),
        }
        if runs.iter().any(|r| matches!(r, Listed::Damaged(_))) {
            ui.hint(format!(
                "a damaged journal stops new runs of its cluster (exit 5) until a person checks the cluster and acknowledges it: `run --acknowledge RUN_ID` or `{}=RUN_ID`",
                super::damage::ACKNOWLEDGED
            ));
        }
        ExitStatus::Success
    })
}

/// The text listing: one line per journal, and below the table, what is wrong with each
/// damaged one and where it is.
fn table(runs: &[Listed]) -> String {
    let mut out = format!(
        "{:<26} {:<14} {:<20} {:<6} STATE\n",
        "RUN", "WORKFLOW", "CLUSTER", "EXIT"
    );
    let mut damaged = String::new();
    for entry in runs {
        let line = match entry {
            Listed::Run(r) => format!(
                "{:<26} {:<14} {:<20} {:<6} {}",
                r.run_id,
                r.workflow,
                format!("{} ({})", r.cluster, r.region),
                r.exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
                state_word(&r.state, r.result.map(RunResult::as_str))
            ),
            Listed::Damaged(d) => {
                damaged.push_str(&format!("\n{}: {}\n", d.run_id, d.damaged));
                format!(
                    "{:<26} {:<14} {:<20} {:<6} damaged (below)",
                    d.run_id,
                    "?",
                    format!(
                        "{} ({})",
                        d.cluster.as_deref().unwrap_or("?"),
                        d.region.as_deref().unwrap_or("?")
                    ),
                    "-"
                )
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    out + &damaged
}

pub fn status(ui: &Ui, args: StatusArgs) -> ExitStatus {
    let rt = match session::runtime(ui) {
        Ok(r) => r,
        Err(s) => return s,
    };
    rt.block_on(async {
        if let Err(s) = inputs::check(ui, &[&|| inputs::check_run_id(&args.run_id)]) {
            return s;
        }
        let store = match store(ui, &args.state).await {
            Ok(s) => s,
            Err(s) => return s,
        };
        let journal = match store.load(&args.run_id).await {
            Ok(j) => j,
            Err(e) => return super::damage::load_failed(ui, &e, &args.run_id),
        };
        let r = report::build(&journal, None);
        match args.output {
            Output::Json => return print_json(ui, &r),
            Output::Text => print!("{}", report::markdown(&r)),
        }
        ExitStatus::Success
    })
}
