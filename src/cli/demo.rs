//! `eks-upgrade demo`: the whole story in the sandbox in under a minute — backup, verification
//! in S3, the upgrade, a workload that breaks, the failed health check, the restore and the
//! rollback, and the report.

#[cfg(feature = "sandbox")]
use std::io::IsTerminal;

#[cfg(feature = "sandbox")]
use crate::cli::sandboxed::{ChildRun, run_child};
use crate::ui::Ui;
use eks_upgrade_core::exit::ExitStatus;
#[cfg(feature = "sandbox")]
use eks_upgrade_sandbox::Scenario;

#[cfg(feature = "sandbox")]
const WORKFLOW: &str = include_str!("../../workflows/in-place.yaml");
#[cfg(feature = "sandbox")]
const SCENARIO: &str = include_str!("../../examples/sandbox/breaks-after-upgrade.yaml");

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Approve without asking, even in a terminal.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Also write the report to FILE (`.json` or `.md`).
    #[arg(long, value_name = "FILE")]
    pub report: Vec<std::path::PathBuf>,
}

#[cfg(not(feature = "sandbox"))]
pub fn run(ui: &Ui, _: Args) -> ExitStatus {
    super::no_sandbox(ui, "demo")
}

#[cfg(feature = "sandbox")]
pub fn run(ui: &Ui, args: Args) -> ExitStatus {
    let scenario = match Scenario::parse(
        std::path::Path::new("examples/sandbox/breaks-after-upgrade.yaml"),
        SCENARIO,
    ) {
        Ok(s) => s,
        Err(e) => {
            ui.diagnostic(&eks_upgrade_core::workflow::render(
                &e,
                ui.diagnostic_style(),
            ));
            return ExitStatus::Usage;
        }
    };
    let dir = match tempfile::Builder::new()
        .prefix("eks-upgrade-demo-")
        .tempdir()
    {
        Ok(d) => d,
        Err(e) => {
            ui.error(format!("cannot create a scratch directory: {e}"));
            return ExitStatus::Usage;
        }
    };
    let workflow = dir.path().join("in-place.yaml");
    if let Err(e) = std::fs::write(&workflow, WORKFLOW) {
        ui.error(format!("cannot write the demo workflow: {e}"));
        return ExitStatus::Usage;
    }
    let markdown = dir.path().join("report.md");
    let interactive =
        !args.yes && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    // The shipped workflow keeps its weekend window; the demo runs now, by a person's choice.
    let mut child_args = vec![
        "--report".to_string(),
        markdown.display().to_string(),
        "--ignore-window".to_string(),
    ];
    for r in &args.report {
        child_args.push("--report".into());
        child_args.push(r.display().to_string());
    }
    if !interactive {
        child_args.push("--yes".into());
    }
    ui.info("Demo: upgrading the sandbox cluster `demo` from 1.33 to 1.34 with workflows/in-place.yaml.");
    ui.info("The scenario breaks Deployment shop/web once its nodes run 1.34.\n");
    let code = match run_child(
        ui,
        scenario,
        ChildRun {
            command: "run",
            workflow: &workflow,
            args: child_args,
        },
        Some(dir.path().join("state")),
    ) {
        Ok(c) => c,
        Err(s) => return s,
    };
    if let Ok(report) = std::fs::read_to_string(&markdown) {
        ui.info(format!("\n{report}"));
    }
    if code == i32::from(ExitStatus::Restored.code()) {
        ui.info(format!(
            "{} the health check after the node group failed, the verified backup was restored, the hop was reversed in the order EKS accepts (node group, then kube-proxy, then the control plane), and every component is back at 1.33, healthy and supported. A real run would have exited {}.",
            ui.good("The story played out as scripted:"),
            ExitStatus::Restored.code()
        ));
        ExitStatus::Success
    } else {
        ui.error(format!(
            "the demo ended with exit code {code}, not {} as scripted",
            ExitStatus::Restored.code()
        ));
        crate::cli::run::exit_of(u8::try_from(code).unwrap_or(5))
    }
}
