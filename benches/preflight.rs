//! Benchmark: `eks-upgrade check` (the pre-flight catalog) on a sandbox cluster of about 50,000
//! objects and 2,000 Helm releases (`examples/sandbox/scale.yaml`), next to
//! `kubectl get pods,deployments,secrets -A -o json` against the same sandbox as the reference
//! for reading alone.
//!
//! ```text
//! cargo bench --bench preflight -- [--runs 3]
//! ```
//!
//! Both run as child processes under `/usr/bin/time`, so elapsed time and peak resident memory
//! are each program's own; the sandbox runs in a third process.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_eks-upgrade");

fn runs() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

/// Runs `cmd` under `/usr/bin/time` and returns (seconds, peak RSS in MiB, exit code).
fn timed(cmd: Command, env: &[(String, String)]) -> (f64, f64, Option<i32>) {
    let mut time = Command::new("/usr/bin/time");
    time.arg("-f").arg("TIME %e %M").arg(cmd.get_program());
    time.args(cmd.get_args());
    for (k, v) in env {
        time.env(k, v);
    }
    let out = time
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run /usr/bin/time");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("TIME "))
        .unwrap_or("TIME 0 0");
    let mut parts = line.split_whitespace().skip(1);
    let secs = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let kib: f64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    (secs, kib / 1024.0, out.status.code())
}

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("scratch dir");
    let started = std::time::Instant::now();
    let mut sandbox = Command::new(BIN)
        .args(["sandbox", "--scenario"])
        .arg(root.join("examples/sandbox/scale.yaml"))
        .arg("--dir")
        .arg(dir.path().join("sandbox"))
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the sandbox");
    let stdout = sandbox.stdout.take().expect("sandbox stdout");
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
    println!(
        "sandbox with examples/sandbox/scale.yaml ready in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let workflow = root.join("workflows/check-only.yaml");
    for run in 1..=runs() {
        let mut check = Command::new(BIN);
        check.arg("check").arg(&workflow).args([
            "--cluster",
            "demo",
            "--target",
            "1.33",
            "--output",
            "json",
        ]);
        let (secs, mib, code) = timed(check, &env);
        println!(
            "run {run}: eks-upgrade check: {secs:.2}s, peak RSS {mib:.1} MiB (exit {code:?}; 3 = findings, as scripted)"
        );
        let mut kubectl = Command::new("kubectl");
        kubectl.args(["get", "pods,deployments,secrets", "-A", "-o", "json"]);
        let (secs, mib, code) = timed(kubectl, &env);
        println!(
            "run {run}: kubectl get pods,deployments,secrets -A -o json: {secs:.2}s, peak RSS {mib:.1} MiB (exit {code:?})"
        );
    }
    let _ = sandbox.kill();
    let _ = sandbox.wait();
}
