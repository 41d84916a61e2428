//! Process exit codes: the contract with schedulers, CI systems and operators.

/// How a command ended. The numbers are documented in the README and in `--help`, and never
/// change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything asked for was done.
    Success,
    /// The command line or a workflow file is wrong, or the AWS profile or credentials it needs
    /// are missing; nothing was attempted.
    Usage,
    /// Stopped before changing anything: pre-flight, backup, verification, window or lock.
    Stopped,
    /// The upgrade failed, the cluster was restored and is healthy again.
    Restored,
    /// The upgrade failed and recovery did not complete: a person is needed.
    NeedsHuman,
    /// Interrupted by a signal; the run can be resumed.
    Interrupted,
}

impl ExitStatus {
    pub const fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Usage => 2,
            ExitStatus::Stopped => 3,
            ExitStatus::Restored => 4,
            ExitStatus::NeedsHuman => 5,
            ExitStatus::Interrupted => 130,
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        std::process::ExitCode::from(status.code())
    }
}

/// The exit-code table, as shown at the end of `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    success
  2    usage or workflow error, or no such profile or no credentials; nothing was attempted
  3    stopped before changing anything (pre-flight, backup, verification, window, lock);
       blue/green: stopped before traffic moved, blue and DNS untouched
  4    upgrade failed; the cluster was restored and is healthy;
       blue/green: traffic was switched back to blue in one change, blue healthy
  5    upgrade failed and restore/rollback did not complete: a human is needed
  130  interrupted; the run can be resumed";
