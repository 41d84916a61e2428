//! `eks-upgrade completions SHELL`

use clap::CommandFactory;
use clap_complete::Shell;

use eks_upgrade_core::exit::ExitStatus;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example: eks-upgrade completions bash > ~/.local/share/bash-completion/completions/eks-upgrade"
)]
pub struct Args {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: Args) -> ExitStatus {
    let mut command = super::Cli::command();
    clap_complete::generate(
        args.shell,
        &mut command,
        "eks-upgrade",
        &mut std::io::stdout(),
    );
    ExitStatus::Success
}
