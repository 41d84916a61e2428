//! Options shared by the commands that talk to a cluster, and their validation into the values
//! the library takes.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::ui::reporter::LogFormat;

/// Which cluster, and how to reach it.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// The EKS cluster name. Default: `spec.cluster.name` of the workflow.
    #[arg(long, env = "EKS_UPGRADE_CLUSTER", value_name = "NAME")]
    pub cluster: Option<String>,
    /// The AWS region. Default: the workflow's, then the AWS configuration's.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// The AWS profile to use. Default: the standard credential chain.
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Use this kubeconfig context instead of building the Kubernetes client from EKS. It must
    /// point at the cluster's EKS endpoint with its CA, or the tool refuses to act.
    #[arg(long, value_name = "CONTEXT")]
    pub kube_context: Option<String>,
}

/// Where journals live.
#[derive(Debug, Clone, clap::Args)]
pub struct StateArgs {
    /// The local state directory. Default: `$XDG_STATE_HOME/eks-upgrade`.
    #[arg(long, value_name = "DIR", env = "EKS_UPGRADE_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Keep journals in S3 instead, for pods without a disk: `s3://BUCKET/PREFIX`.
    #[arg(long, value_name = "URL", env = "EKS_UPGRADE_STATE")]
    pub state: Option<String>,
}

/// How a run talks to people or schedulers.
#[derive(Debug, Clone, clap::Args)]
pub struct FaceArgs {
    /// Approve every approval step in advance. Required for unattended runs.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Never prompt, even in a terminal.
    #[arg(long)]
    pub non_interactive: bool,
    /// Log line format when unattended.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub log_format: LogFormat,
}

impl FaceArgs {
    /// Interactive when stdin and stdout are terminals, unless `--yes` or `--non-interactive`.
    pub fn interactive(&self) -> bool {
        !self.yes
            && !self.non_interactive
            && self.log_format == LogFormat::Text
            && std::io::stdin().is_terminal()
            && std::io::stdout().is_terminal()
    }
}

/// Options of `run` and `resume` beyond the face.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Write the report to FILE: JSON for `.json`, Markdown for `.md`. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub report: Vec<PathBuf>,
    /// Run the workflow's waits FACTOR times faster (a finite number, at least 1): for
    /// rehearsals against the sandbox, whose clock runs faster too; its exports set
    /// `EKS_UPGRADE_TIME_SCALE`.
    #[arg(
        long,
        value_name = "FACTOR",
        default_value_t = 1.0,
        env = "EKS_UPGRADE_TIME_SCALE",
        allow_negative_numbers = true
    )]
    pub time_scale: f64,
    /// Start even outside the workflow's maintenance window: a person decided to run now.
    /// Interactive runs never check the window.
    #[arg(long)]
    pub ignore_window: bool,
}
