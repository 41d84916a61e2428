//! `run --sandbox`, `check --sandbox` and `demo`: the sandbox starts in this process, and the run
//! (or the check) itself happens in a child process of the same binary with the sandbox's endpoints and credentials in its
//! environment — exactly the production path, with nothing in the tool knowing it is a sandbox.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cli::run::RunCmdArgs;
use crate::ui::Ui;
use eks_upgrade_core::exit::ExitStatus;
use eks_upgrade_sandbox::{Options, Sandbox, Scenario};

/// What the child process runs.
pub struct ChildRun<'a> {
    /// `run` or `check`.
    pub command: &'a str,
    pub workflow: &'a Path,
    pub args: Vec<String>,
}

/// Starts the sandbox for `scenario`, runs `child` against it, and returns the child's exit code.
pub fn run_child(
    ui: &Ui,
    scenario: Scenario,
    child: ChildRun<'_>,
    state_dir: Option<PathBuf>,
) -> Result<i32, ExitStatus> {
    let rt = super::session::runtime(ui)?;
    rt.block_on(async {
        let cluster = scenario.spec.cluster.clone();
        let speed = scenario.spec.speed;
        let sandbox = Sandbox::start(scenario, Options::default())
            .await
            .map_err(|e| {
                ui.error(format!("the sandbox did not start: {e}"));
                ExitStatus::Usage
            })?;
        let state_dir = state_dir.unwrap_or_else(|| sandbox.dir.join("state"));
        let exe = std::env::current_exe().map_err(|e| {
            ui.error(format!("cannot find this program's own path: {e}"));
            ExitStatus::Usage
        })?;
        let mut cmd = Command::new(exe);
        cmd.arg(child.command).arg(child.workflow);
        cmd.args(["--cluster", &cluster.name, "--region", &cluster.region]);
        if child.command == "run" {
            cmd.args(["--time-scale", &speed.to_string()]);
            cmd.arg("--state-dir").arg(&state_dir);
        }
        // `-v` carries over; `RUST_LOG` does by itself, as part of the environment.
        for _ in 0..super::logging::verbosity() {
            cmd.arg("-v");
        }
        cmd.args(&child.args);
        // The sandbox's environment includes `AWS_EC2_METADATA_DISABLED=true`: the child has
        // the sandbox's credentials and must never look for others at the metadata address.
        for (k, v) in sandbox.env() {
            cmd.env(k, v);
        }
        // The child must not pick up a profile or shared credentials that would win over the
        // sandbox's.
        cmd.env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN");
        let mut process = cmd.spawn().map_err(|e| {
            ui.error(format!("cannot start the run: {e}"));
            ExitStatus::Usage
        })?;
        // Ctrl-C reaches the child too (same process group); this side just waits for it to
        // journal and exit, then stops the sandbox.
        let wait = tokio::task::spawn_blocking(move || process.wait());
        let mut wait = std::pin::pin!(wait);
        let status = loop {
            tokio::select! {
                s = &mut wait => break s,
                _ = tokio::signal::ctrl_c() => continue,
            }
        };
        match status {
            Ok(Ok(s)) => Ok(s.code().unwrap_or(ExitStatus::Interrupted.code().into())),
            _ => {
                ui.error("lost track of the run's process");
                Err(ExitStatus::NeedsHuman)
            }
        }
    })
}

/// Arguments of `run` that carry over to the child.
fn child_args(args: &RunCmdArgs) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(t) = &args.target {
        out.extend(["--target".into(), t.clone()]);
    }
    if args.face.yes {
        out.push("--yes".into());
    }
    if args.face.non_interactive {
        out.push("--non-interactive".into());
    }
    if args.face.log_format == crate::ui::reporter::LogFormat::Json {
        out.extend(["--log-format".into(), "json".into()]);
    }
    for r in &args.run.report {
        out.push("--report".into());
        out.push(r.display().to_string());
    }
    if args.run.ignore_window {
        out.push("--ignore-window".into());
    }
    if let Some(s) = &args.state.state {
        out.extend(["--state".into(), s.clone()]);
    }
    out
}

pub fn run(ui: &Ui, args: &RunCmdArgs, scenario: Option<&Path>) -> ExitStatus {
    let scenario = match super::sandbox::load_scenario(ui, scenario) {
        Ok(s) => s,
        Err(status) => return status,
    };
    let child = ChildRun {
        command: "run",
        workflow: &args.workflow,
        args: child_args(args),
    };
    match run_child(ui, scenario, child, args.state.state_dir.clone()) {
        Ok(code) => crate::cli::run::exit_of(u8::try_from(code).unwrap_or(5)),
        Err(s) => s,
    }
}

/// `check WORKFLOW --sandbox [SCENARIO]`: the pre-flight checks against a sandbox started for
/// them, as `run --sandbox` runs a workflow; it changes nothing there either.
pub fn check(ui: &Ui, workflow: &Path, scenario: Option<&Path>, args: Vec<String>) -> ExitStatus {
    let scenario = match super::sandbox::load_scenario(ui, scenario) {
        Ok(s) => s,
        Err(status) => return status,
    };
    let child = ChildRun {
        command: "check",
        workflow,
        args,
    };
    match run_child(ui, scenario, child, None) {
        Ok(code) => crate::cli::run::exit_of(u8::try_from(code).unwrap_or(5)),
        Err(s) => s,
    }
}
