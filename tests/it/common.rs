//! A fluent builder for running the real `eks-upgrade` binary in a scratch directory.
//!
//! ```ignore
//! Test::new()
//!     .file("w.yaml", "apiVersion: ...")
//!     .args(["validate", "w.yaml"])
//!     .run()
//!     .code(2)
//!     .stderr_contains("unknown field");
//! ```

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use wait_timeout::ChildExt;

/// The repository root, for the shipped workflows.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct Test {
    dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    timeout: Duration,
}

pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Test {
    pub fn new() -> Self {
        Test {
            dir: tempfile::tempdir().expect("create a scratch directory"),
            args: Vec::new(),
            env: Vec::new(),
            // Generous: a hang must fail the test, but timing is measured in benchmarks.
            timeout: Duration::from_secs(60),
        }
    }

    pub fn file(self, name: &str, contents: impl AsRef<[u8]>) -> Self {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent directory");
        }
        std::fs::write(&path, contents).expect("write test file");
        self
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn run(self) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_eks-upgrade"));
        command
            .args(&self.args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("CLICOLOR_FORCE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start eks-upgrade");
        // Drain the pipes on threads so a chatty child cannot block on a full pipe.
        let mut stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let out = std::thread::spawn(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut stdout, &mut s).ok();
            s
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut stderr, &mut s).ok();
            s
        });
        let status = match child
            .wait_timeout(self.timeout)
            .expect("wait for eks-upgrade")
        {
            Some(status) => status,
            None => {
                child.kill().ok();
                panic!(
                    "eks-upgrade {:?} did not finish within {:?}",
                    self.args, self.timeout
                );
            }
        };
        Output {
            code: status.code(),
            stdout: out.join().expect("stdout reader"),
            stderr: err.join().expect("stderr reader"),
        }
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

/// A sandbox running in this test process, with the runtime that drives it.
pub struct TestSandbox {
    pub sandbox: eks_upgrade_sandbox::Sandbox,
    pub runtime: tokio::runtime::Runtime,
}

impl TestSandbox {
    /// Starts a sandbox from scenario YAML, or the default scenario with `None`.
    pub fn start(scenario: Option<&str>) -> TestSandbox {
        let scenario = match scenario {
            Some(text) => eks_upgrade_sandbox::Scenario::parse(
                std::path::Path::new("test-scenario.yaml"),
                text,
            )
            .unwrap_or_else(|e| {
                panic!(
                    "{}",
                    eks_upgrade_core::workflow::render(
                        &e,
                        eks_upgrade_core::workflow::Style::Plain
                    )
                )
            }),
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
