//! End to end: the real `eks-upgrade` binary against a sandbox running in another process
//! (`eks-upgrade sandbox`), exactly as an operator or a CronJob would use them. The sandbox's
//! request record proves what the tool did and did not do.

mod backup;
mod extras;
mod interactive;
mod resume;
mod runs;
mod upgrade;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::repo;

pub const BIN: &str = env!("CARGO_BIN_EXE_eks-upgrade");

/// A sandbox in its own process, stopped when dropped.
pub struct External {
    child: Child,
    pub env: Vec<(String, String)>,
    pub record: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Drop for External {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl External {
    /// Starts `eks-upgrade sandbox` with scenario text and waits for `# sandbox ready`.
    pub fn start(scenario: &str) -> External {
        let dir = tempfile::tempdir().expect("scratch dir");
        let path = dir.path().join("scenario.yaml");
        std::fs::write(&path, scenario).expect("write scenario");
        let record = dir.path().join("record.jsonl");
        let mut child = Command::new(BIN)
            .args(["sandbox", "--scenario"])
            .arg(&path)
            .arg("--record")
            .arg(&record)
            .arg("--dir")
            .arg(dir.path().join("sandbox"))
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the sandbox");
        let stdout = child.stdout.take().expect("stdout");
        let mut env = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("sandbox output");
            if line == "# sandbox ready" {
                break;
            }
            if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
                env.push((k.to_string(), v.trim_matches('\'').to_string()));
            }
        }
        assert!(
            env.iter().any(|(k, _)| k == "AWS_ENDPOINT_URL_EKS"),
            "the sandbox printed no endpoints"
        );
        External {
            child,
            env,
            record,
            dir,
        }
    }

    /// A scenario file of the repository with its `speed` and timings adjusted.
    pub fn from_example(name: &str) -> External {
        let text =
            std::fs::read_to_string(repo().join("examples/sandbox").join(name)).expect("scenario");
        External::start(&text)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `eks-upgrade` with the sandbox's environment and the test's state directory.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("NO_COLOR", "1")
            .env("EKS_UPGRADE_STATE_DIR", self.state_dir())
            .env_remove("AWS_PROFILE")
            .current_dir(repo())
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// `eks-upgrade run WORKFLOW` unattended against the cluster `demo`, time-scaled to the
    /// sandbox and regardless of the window, plus `extra` arguments. Output is left to the
    /// caller.
    pub fn run_command(&self, workflow: &Path, extra: &[&str]) -> Command {
        let mut args = vec![
            "run",
            workflow.to_str().unwrap_or(""),
            "--cluster",
            "demo",
            "--yes",
            "--time-scale",
            "600",
            "--ignore-window",
        ];
        args.extend_from_slice(extra);
        self.command(&args)
    }

    /// Runs a workflow unattended, time-scaled to the sandbox, and waits for it.
    pub fn run(&self, workflow: &Path, extra: &[&str]) -> Outcome {
        self.run_with_env(workflow, extra, &[])
    }

    /// [`External::run`] with some of the sandbox's environment replaced.
    pub fn run_with_env(&self, workflow: &Path, extra: &[&str], env: &[(&str, &str)]) -> Outcome {
        let mut command = self.run_command(workflow, extra);
        for (k, v) in env {
            command.env(k, v);
        }
        wait(
            command
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start the run"),
        )
    }

    /// The request record, as JSON values.
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// How many successful requests of an operation the sandbox served.
    pub fn count(&self, service: &str, operation: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| {
                r["service"] == service
                    && r["operation"]
                        .as_str()
                        .is_some_and(|o| o.starts_with(operation))
                    && r["status"].as_u64().is_some_and(|s| s < 300)
            })
            .count()
    }

    /// The path of the only run's journal. A process killed mid-write leaves its temporary file
    /// (`.tmpXXXX`) beside the journals; only `*.json` files are journals.
    pub fn journal_path(&self) -> Option<PathBuf> {
        std::fs::read_dir(self.state_dir().join("runs"))
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "json"))
    }

    /// The journal of the only run in the state directory.
    pub fn journal(&self) -> Value {
        let path = self.journal_path().expect("a journal");
        serde_json::from_str(&std::fs::read_to_string(path).expect("read journal"))
            .expect("journal JSON")
    }

    /// The control-plane version, asked of the sandbox with the real AWS CLI.
    pub fn cluster_version(&self, cluster: &str) -> String {
        let mut cmd = Command::new("aws");
        cmd.args([
            "eks",
            "describe-cluster",
            "--name",
            cluster,
            "--query",
            "cluster.version",
            "--output",
            "text",
        ]);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("the aws CLI is installed");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn wait(child: Child) -> Outcome {
    let out = child.wait_with_output().expect("wait for eks-upgrade");
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

impl Outcome {
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(expected),
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// A workflow file for tests: the shipped in-place workflow with edits.
pub fn workflow(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let text =
        std::fs::read_to_string(repo().join("workflows/in-place.yaml")).expect("in-place.yaml");
    let path = dir.join(name);
    std::fs::write(&path, edit(text)).expect("write workflow");
    path
}

/// Polls until `check` holds or `timeout` passes.
pub fn until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

/// Replaces run ids, update ids, times and durations, so snapshots hold still.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut l = line.to_string();
        for (pattern, replacement) in [
            (r"\d{8}t\d{6}z-[0-9a-f]{6}", "RUN"),
            (
                r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                "UUID",
            ),
            (
                r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
                "TIME",
            ),
            (r"\d+\.\d+s\b", "N.Ns"),
            (r"\(\d+s\)", "(Ns)"),
            (r"\d+ checks", "N checks"),
            (r"after \d+s", "after Ns"),
            (r"/tmp/[^\s`']+", "TMP"),
        ] {
            l = regex_lite::Regex::new(pattern)
                .map(|r| r.replace_all(&l, replacement).into_owned())
                .unwrap_or(l);
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}
