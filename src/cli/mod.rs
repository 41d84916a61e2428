//! The command line: raw arguments are parsed here and turned into calls into the library.
//! Each subcommand lives in its own file.

pub mod args;
mod backup;
mod backup_restore;
mod check;
mod completions;
mod damage;
mod demo;
mod drive;
pub mod inputs;
pub mod logging;
pub mod run;
mod runs;
pub mod sandbox;
#[cfg(feature = "sandbox")]
mod sandboxed;
mod schema;
pub mod session;
mod validate;

use clap::{Parser, Subcommand};

use crate::ui::reporter::LogFormat;
use crate::ui::{ColorChoice, Ui};
use eks_upgrade_core::exit::{EXIT_CODES_HELP, ExitStatus};

/// Upgrade Amazon EKS clusters safely: pre-flight checks, a verified Velero backup, one minor
/// version at a time, health checks, and a restore when they fail.
#[derive(Debug, Parser)]
#[command(name = "eks-upgrade", version, after_help = EXIT_CODES_HELP, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// When to use colour: `auto` follows the terminal and `NO_COLOR`.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Debug logs on stderr, credentials redacted: `-v` info, `-vv` debug of the AWS SDK, kube and
    /// hyper, `-vvv` trace. `RUST_LOG` (such as `kube=debug`) wins over `-v`.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a workflow against a cluster: plan, backup, verify, upgrade, check, recover.
    Run(run::RunCmdArgs),
    /// Show the hops and every step with what it would change; changes nothing.
    Plan(run::PlanArgs),
    /// Run the workflow's pre-flight checks alone: a table, or `--output json`; changes nothing.
    Check(check::Args),
    /// Continue an interrupted or crashed run from its journal.
    Resume(run::ResumeArgs),
    /// Velero backups outside a workflow: create, verify in S3, restore.
    Backup(backup::Args),
    /// List past and current runs from the journal store.
    Runs(runs::RunsArgs),
    /// Show one run: its steps, outcome and report.
    Status(runs::StatusArgs),
    /// A complete guided run in the sandbox, including a failed health check and its restore.
    Demo(demo::Args),
    /// Check workflow files offline and report every problem with its location.
    Validate(validate::Args),
    /// Print the JSON Schema of the workflow format.
    Schema(schema::Args),
    /// Start the sandbox (emulated EKS, Kubernetes, Velero and S3) and print how to use it.
    Sandbox(sandbox::Args),
    /// Print a shell completion script.
    Completions(completions::Args),
}

/// Parses the process arguments and runs the command.
pub fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` arrive here as "errors" that print to stdout and exit 0.
            let status = if e.use_stderr() {
                ExitStatus::Usage
            } else {
                ExitStatus::Success
            };
            if e.use_stderr() && asks_for_json_logs(std::env::args_os()) {
                // A scheduler asked for JSON lines; even a malformed command line keeps to it.
                let text = e.render().to_string();
                let message = text.trim().trim_start_matches("error:").trim();
                Ui::new(ColorChoice::Never).json_lines().error(message);
            } else {
                let _ = e.print();
            }
            return status.into();
        }
    };
    run(cli).into()
}

/// Whether the raw arguments ask for `--log-format json`, for errors met before they parse.
fn asks_for_json_logs(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    let args: Vec<std::ffi::OsString> = args.into_iter().collect();
    args.iter().enumerate().any(|(i, a)| {
        a == "--log-format=json"
            || (a == "--log-format" && args.get(i + 1).is_some_and(|v| v == "json"))
    })
}

/// What the sandbox commands do in a build without the emulator (the container image).
#[cfg(not(feature = "sandbox"))]
fn no_sandbox(ui: &Ui, command: &str) -> ExitStatus {
    ui.error(format!(
        "`{command}` needs the sandbox, and this build of eks-upgrade was made without it (the `sandbox` feature)"
    ));
    ui.hint(
        "build with the default features, as `cargo run --release -- demo` in the repository does",
    );
    ExitStatus::Usage
}

pub fn run(cli: Cli) -> ExitStatus {
    let ui = Ui::new(cli.color);
    // Only `run` and `resume` have `--log-format`; with `json` there, every stderr line is JSON.
    let log_format = match &cli.command {
        Command::Run(args) => args.face.log_format,
        Command::Resume(args) => args.face.log_format,
        _ => LogFormat::Text,
    };
    logging::init(cli.verbose, log_format);
    // Then the tool's own messages (`error:`, `hint:`, `Report written …`) are JSON lines too.
    let ui = match log_format {
        LogFormat::Json => ui.json_lines(),
        LogFormat::Text => ui,
    };
    match cli.command {
        Command::Run(args) => run::run(&ui, args),
        Command::Plan(args) => run::plan(&ui, args),
        Command::Check(args) => check::run(&ui, args),
        Command::Resume(args) => run::resume(&ui, args),
        Command::Backup(args) => backup::run(&ui, args),
        Command::Runs(args) => runs::runs(&ui, args),
        Command::Status(args) => runs::status(&ui, args),
        Command::Demo(args) => demo::run(&ui, args),
        Command::Validate(args) => validate::run(&ui, args),
        Command::Schema(args) => schema::run(&ui, args),
        Command::Sandbox(args) => sandbox::run(&ui, args),
        Command::Completions(args) => completions::run(args),
    }
}
