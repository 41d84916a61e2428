//! The test harness: one fluent way to run the real `eks-upgrade` binary ([`Test`]), one way to
//! wait on any child process ([`Running`], whose deadline kills it), one way to wait for a
//! condition ([`poll`]), and a sandbox running inside the test process ([`TestSandbox`]).
//!
//! Every wait has a deadline. The deadlines are generous: a hang must fail the test instead of
//! hanging the suite, but timing is measured in benchmarks, never here.
//!
//! ```ignore
//! Test::new()
//!     .file("w.yaml", "apiVersion: ...")
//!     .args(["validate", "w.yaml"])
//!     .run()
//!     .code(2)
//!     .stderr_contains("unknown field");
//! ```

mod process;

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub use process::{Running, Timed};

/// How long a child process may run unless its test says otherwise. A run takes seconds alone
/// and several times that on a loaded machine; only a hang comes near this.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a poll waits for its condition unless its test says otherwise.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(300);

/// Between two looks at a polled condition: well inside the briefest state a test waits to see
/// (a cluster `UPDATING` for about a second), and rare enough not to load a shared machine.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The repository root, for the shipped workflows.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A run of the `eks-upgrade` binary being put together: arguments, files in a scratch
/// directory (the working directory unless [`Test::current_dir`] says otherwise), environment
/// and a timeout.
pub struct Test {
    dir: tempfile::TempDir,
    cwd: Option<PathBuf>,
    args: Vec<OsString>,
    /// In order: a value to set, or `None` to remove the variable.
    env: Vec<(OsString, Option<OsString>)>,
    timeout: Duration,
}

/// What a finished child process left: its exit code (`None` when a signal ended it) and its
/// output.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Test {
    pub fn new() -> Self {
        Test {
            dir: tempfile::tempdir().expect("create a scratch directory"),
            cwd: None,
            args: Vec::new(),
            env: Vec::new(),
            timeout: RUN_TIMEOUT,
        }
    }

    /// Writes a file into the scratch directory.
    pub fn file(self, name: &str, contents: impl AsRef<[u8]>) -> Self {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent directory");
        }
        std::fs::write(&path, contents).expect("write test file");
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    pub fn envs<I, K, V>(self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        vars.into_iter().fold(self, |t, (k, v)| t.env(k, v))
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Runs in `dir` instead of the scratch directory.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// How long the run may take before it is killed and the test fails.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The command this test runs, with its standard streams left alone: for a pseudo-terminal,
    /// which sets its own. Everything else goes through [`Test::run`] or [`Test::spawn`].
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_eks-upgrade"));
        command
            .args(&self.args)
            .current_dir(self.cwd.as_deref().unwrap_or(self.dir.path()))
            .env("NO_COLOR", "1")
            .env_remove("CLICOLOR_FORCE")
            // A developer's `RUST_LOG` would add debug lines to every snapshot; tests that want
            // logs set it themselves.
            .env_remove("RUST_LOG")
            // No test may reach a real instance metadata service for credentials.
            .env("AWS_EC2_METADATA_DISABLED", "true");
        for (k, v) in &self.env {
            match v {
                Some(v) => command.env(k, v),
                None => command.env_remove(k),
            };
        }
        command
    }

    /// Starts the binary; the scratch directory lives as long as the returned [`Running`].
    pub fn spawn(self) -> Running {
        self.command()
            .spawn_timed()
            .expect("start eks-upgrade")
            .within(self.timeout)
            .keeping(self.dir)
    }

    /// Runs the binary to its end.
    pub fn run(self) -> Output {
        self.spawn().wait()
    }
}

impl Output {
    #[track_caller]
    pub fn code(self, expected: i32) -> Self {
        assert_eq!(
            self.code,
            Some(expected),
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stderr_contains(self, needle: &str) -> Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn no_panic(self) -> Self {
        assert!(
            !self.stderr.contains("panicked") && self.code != Some(101),
            "eks-upgrade panicked:\n{}",
            self.stderr
        );
        self
    }
}

/// What a polled condition returns: `true`, `Some(value)` or `Ok(value)` when it holds; an
/// `Err` says what was seen instead, for the message if the poll times out.
pub trait Ready {
    type Value;
    fn ready(self) -> Result<Self::Value, Option<String>>;
}

impl Ready for bool {
    type Value = ();
    fn ready(self) -> Result<(), Option<String>> {
        if self { Ok(()) } else { Err(None) }
    }
}

impl<T> Ready for Option<T> {
    type Value = T;
    fn ready(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T, E: fmt::Display> Ready for Result<T, E> {
    type Value = T;
    fn ready(self) -> Result<T, Option<String>> {
        self.map_err(|e| Some(e.to_string()))
    }
}

/// The bookkeeping of one poll, shared by [`poll`] and [`poll_async`].
struct Poll<'a> {
    what: &'a str,
    timeout: Duration,
    started: Instant,
    seen: Option<String>,
}

impl Poll<'_> {
    /// The condition's value if it holds; `None` to look again; a panic past the timeout.
    #[track_caller]
    fn look<R: Ready>(&mut self, result: R) -> Option<R::Value> {
        match result.ready() {
            Ok(value) => Some(value),
            Err(seen) => {
                self.seen = seen.or(self.seen.take());
                if self.started.elapsed() >= self.timeout {
                    match &self.seen {
                        Some(seen) => panic!(
                            "timed out after {:?} waiting for {}; last seen:\n{seen}",
                            self.timeout, self.what
                        ),
                        None => {
                            panic!(
                                "timed out after {:?} waiting for {}",
                                self.timeout, self.what
                            )
                        }
                    }
                }
                None
            }
        }
    }
}

/// Looks at `check` until it holds and returns its value; fails the test, naming `what` it
/// waited for, if it does not hold within `timeout`.
#[track_caller]
pub fn poll<R: Ready>(what: &str, timeout: Duration, mut check: impl FnMut() -> R) -> R::Value {
    let mut poll = Poll {
        what,
        timeout,
        started: Instant::now(),
        seen: None,
    };
    loop {
        if let Some(value) = poll.look(check()) {
            return value;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// [`poll`] inside async code, for conditions that are themselves async (an SDK call).
pub async fn poll_async<R: Ready>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> R,
) -> R::Value {
    let mut poll = Poll {
        what,
        timeout,
        started: Instant::now(),
        seen: None,
    };
    loop {
        if let Some(value) = poll.look(check().await) {
            return value;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// A sandbox running in this test process, with the runtime that drives it.
pub struct TestSandbox {
    pub sandbox: eks_upgrade_sandbox::Sandbox,
    pub runtime: tokio::runtime::Runtime,
}

impl TestSandbox {
    /// Starts a sandbox from scenario YAML, or the default scenario with `None`.
    pub fn start(scenario: Option<&str>) -> TestSandbox {
        let scenario = match scenario {
            Some(text) => {
                eks_upgrade_sandbox::Scenario::parse(Path::new("test-scenario.yaml"), text)
                    .unwrap_or_else(|e| {
                        panic!(
                            "{}",
                            eks_upgrade_core::workflow::render(
                                &e,
                                eks_upgrade_core::workflow::Style::Plain
                            )
                        )
                    })
            }
            None => eks_upgrade_sandbox::Scenario::default_scenario(),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let sandbox = runtime
            .block_on(eks_upgrade_sandbox::Sandbox::start(
                scenario,
                Default::default(),
            ))
            .expect("the sandbox starts");
        TestSandbox { sandbox, runtime }
    }

    /// The environment that points real clients (CLIs and SDKs) at this sandbox.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        self.sandbox.env()
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }
}
