//! `eks-upgrade sandbox [--scenario FILE]`

#[cfg(feature = "sandbox")]
use std::io::Write;
use std::path::PathBuf;

use crate::ui::Ui;
use eks_upgrade_core::exit::ExitStatus;
#[cfg(feature = "sandbox")]
use eks_upgrade_sandbox::{Options, Sandbox, Scenario};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  eval \"$(eks-upgrade sandbox --scenario examples/sandbox/healthy.yaml &)\"\n  \
Prints `export NAME=VALUE` lines on stdout, then `# sandbox ready`, and serves until interrupted."
)]
pub struct Args {
    /// The scenario to seed the sandbox with. Default: a healthy cluster `demo` at 1.33.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,

    /// Keep S3 data, the kubeconfig and the AWS config in this directory instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Append a JSON line for every request the sandbox serves to this file.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
}

/// Loads the scenario named on the command line, or the built-in one.
#[cfg(feature = "sandbox")]
pub fn load_scenario(ui: &Ui, path: Option<&std::path::Path>) -> Result<Scenario, ExitStatus> {
    match path {
        None => Ok(Scenario::default_scenario()),
        Some(p) => Scenario::load(p).map_err(|e| {
            ui.diagnostic(&eks_upgrade_core::workflow::render(
                &e,
                ui.diagnostic_style(),
            ));
            ExitStatus::Usage
        }),
    }
}

#[cfg(not(feature = "sandbox"))]
pub fn run(ui: &Ui, _: Args) -> ExitStatus {
    super::no_sandbox(ui, "sandbox")
}

#[cfg(feature = "sandbox")]
pub fn run(ui: &Ui, args: Args) -> ExitStatus {
    let scenario = match load_scenario(ui, args.scenario.as_deref()) {
        Ok(s) => s,
        Err(status) => return status,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            ui.error(format!("cannot start the async runtime: {e}"));
            return ExitStatus::Usage;
        }
    };
    runtime.block_on(async {
        let name = scenario.metadata.name.clone();
        let sandbox = match Sandbox::start(
            scenario,
            Options {
                dir: args.dir,
                record: args.record,
            },
        )
        .await
        {
            Ok(s) => s,
            Err(e) => {
                ui.error(format!("the sandbox did not start: {e}"));
                return ExitStatus::Usage;
            }
        };
        let mut out = std::io::stdout().lock();
        for (key, value) in sandbox.env() {
            let _ = writeln!(out, "export {key}={}", shell_quote(&value));
        }
        let _ = writeln!(out, "# sandbox ready");
        let _ = out.flush();
        drop(out);
        let cluster = &sandbox.world.scenario.spec.cluster;
        ui.info(format!(
            "Sandbox `{name}` is serving cluster `{}` ({}, Kubernetes {}). Press Ctrl-C to stop.",
            cluster.name, cluster.region, cluster.version
        ));
        ui.info(format!("  EKS        {}", sandbox.endpoints.eks));
        ui.info(format!("  EC2        {}", sandbox.endpoints.ec2));
        ui.info(format!("  S3         {}", sandbox.endpoints.s3));
        ui.info(format!("  KMS        {}", sandbox.endpoints.kms));
        ui.info(format!("  Kubernetes {}", sandbox.endpoints.kubernetes));
        wait_for_signal().await;
        ui.info("Sandbox stopped.");
        ExitStatus::Success
    })
}

/// Waits for SIGINT or SIGTERM: a person's Ctrl-C or a scheduler's stop.
#[cfg(feature = "sandbox")]
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Quotes a value for a POSIX shell when it needs it.
#[cfg(feature = "sandbox")]
fn shell_quote(value: &str) -> String {
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/:._-=,@+".contains(c))
    {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', "'\\''"))
    }
}
