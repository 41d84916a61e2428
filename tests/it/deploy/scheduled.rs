//! `helpers/scheduled-run.sh`, the entry point of scheduled pods: it resumes this cluster's
//! unfinished run or starts a new one, and starts nothing after an exit 5.
//!
//! The decision tests put a stub `eks-upgrade` first on PATH that records its arguments and
//! prints a `runs --output json` made by the same serializer `eks-upgrade runs` uses. The last
//! test drives the real binary against the sandbox, journal in S3.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use eks_upgrade_core::journal::store::RunSummary;
use eks_upgrade_core::journal::{RunResult, RunState};

use crate::common::{POLL_TIMEOUT, Timed, poll, repo};
use crate::e2e::{External, running_with_fact, workflow};

const STATE: &str = "s3://state-bucket/eks-upgrade/state/prod";

fn summary(run_id: &str, cluster: &str, state: RunState, exit: Option<u8>) -> RunSummary {
    RunSummary {
        run_id: run_id.into(),
        workflow: "in-place".into(),
        cluster: cluster.into(),
        region: "eu-west-1".into(),
        result: exit.map(|c| {
            if c == 0 {
                RunResult::Succeeded
            } else {
                RunResult::Stopped
            }
        }),
        state,
        exit_code: exit,
        created_at: "2026-03-07T02:05:00.000Z".into(),
        updated_at: "2026-03-07T02:35:00.000Z".into(),
    }
}

struct Stubbed {
    dir: tempfile::TempDir,
}

struct Outcome {
    code: Option<i32>,
    stderr: String,
    /// The argument lists the stub was called with, one per call.
    calls: Vec<String>,
}

impl Stubbed {
    /// A stub `eks-upgrade` whose `runs` prints `runs` (newest first, as the real one sorts)
    /// and exits `runs_exit`, and whose other commands exit 0.
    fn new(runs: &[RunSummary], runs_exit: i32) -> Stubbed {
        let dir = tempfile::tempdir().expect("dir");
        let json = serde_json::to_string_pretty(runs).expect("runs JSON");
        std::fs::write(dir.path().join("runs.json"), json).expect("write runs");
        let stub = format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{log}'\ncase $1 in runs) cat '{runs}'; exit {runs_exit} ;; esac\nexit 0\n",
            log = dir.path().join("calls").display(),
            runs = dir.path().join("runs.json").display(),
        );
        let bin = dir.path().join("eks-upgrade");
        std::fs::write(&bin, stub).expect("write stub");
        make_executable(&bin);
        Stubbed { dir }
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Outcome {
        let out = helper(self.dir.path(), args, env)
            .output_timed()
            .expect("run the helper");
        Outcome {
            code: out.code,
            stderr: out.stderr,
            calls: std::fs::read_to_string(self.dir.path().join("calls"))
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect(),
        }
    }
}

fn make_executable(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

/// The helper with `bin` first on PATH.
fn helper(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new(repo().join("helpers/scheduled-run.sh"));
    cmd.args(args)
        .env("PATH", path)
        .env_remove("EKS_UPGRADE_CLUSTER")
        .env_remove("EKS_UPGRADE_STATE")
        .env_remove("EKS_UPGRADE_ACKNOWLEDGED_RUN")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

const RUN: &[&str] = &[
    "run",
    "/workflows/in-place.yaml",
    "--cluster",
    "prod",
    "--region",
    "eu-west-1",
    "--yes",
    "--log-format",
    "json",
    "--state",
    STATE,
    "--report",
    "/reports/report.json",
];

#[test]
fn without_an_unfinished_run_it_starts_a_new_one_with_the_arguments_as_given() {
    let stub = Stubbed::new(
        &[
            // Another cluster's unfinished run in the same store is not this cluster's.
            summary(
                "20260307t020500z-bbbbbb",
                "staging",
                RunState::Upgrade { hop: 1 },
                None,
            ),
            summary("20260228t020500z-aaaaaa", "prod", RunState::Done, Some(0)),
        ],
        0,
    );
    let out = stub.run(RUN, &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.calls[0], format!("runs --output json --state {STATE}"));
    assert_eq!(out.calls[1], RUN.join(" "));
    assert_eq!(out.calls.len(), 2);
}

#[test]
fn an_unfinished_run_of_this_cluster_is_resumed_without_the_options_resume_refuses() {
    let stub = Stubbed::new(
        &[
            summary(
                "20260307t020500z-cccccc",
                "prod",
                RunState::Upgrade { hop: 1 },
                None,
            ),
            summary("20260228t020500z-aaaaaa", "prod", RunState::Done, Some(0)),
        ],
        0,
    );
    let mut args = RUN.to_vec();
    args.extend(["--target", "1.34", "--region=eu-west-1"]);
    let out = stub.run(&args, &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.calls[1],
        format!(
            "resume 20260307t020500z-cccccc --yes --log-format json --state {STATE} --report /reports/report.json"
        )
    );
    assert!(
        out.stderr.contains("resuming run 20260307t020500z-cccccc"),
        "{}",
        out.stderr
    );

    // A run paused between hops (window closed, exit 3) is unfinished too.
    let paused = Stubbed::new(
        &[summary(
            "20260307t020500z-dddddd",
            "prod",
            RunState::Upgrade { hop: 2 },
            Some(3),
        )],
        0,
    );
    let out = paused.run(&["run", "w.yaml", "--cluster=prod", "--state", STATE], &[]);
    assert_eq!(
        out.calls[1],
        format!("resume 20260307t020500z-dddddd --state {STATE}")
    );
}

#[test]
fn after_an_exit_5_it_starts_nothing_until_a_person_acknowledges_the_run() {
    let runs = [
        summary("20260307t020500z-eeeeee", "prod", RunState::Done, Some(5)),
        summary("20260228t020500z-aaaaaa", "prod", RunState::Done, Some(0)),
    ];
    let stub = Stubbed::new(&runs, 0);
    let out = stub.run(RUN, &[]);
    assert_eq!(out.code, Some(5));
    assert_eq!(
        out.calls.len(),
        1,
        "only `runs` was called: {:?}",
        out.calls
    );
    assert!(
        out.stderr
            .contains("EKS_UPGRADE_ACKNOWLEDGED_RUN=20260307t020500z-eeeeee")
    );

    let acknowledged = Stubbed::new(&runs, 0);
    let out = acknowledged.run(
        RUN,
        &[("EKS_UPGRADE_ACKNOWLEDGED_RUN", "20260307t020500z-eeeeee")],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.calls[1].starts_with("run /workflows/in-place.yaml"),
        "{:?}",
        out.calls
    );
}

#[test]
fn it_refuses_to_guess_and_stops_when_the_store_cannot_be_read() {
    let stub = Stubbed::new(&[], 0);
    // No S3 store: a journal on the pod's disk would die with the pod.
    let out = stub.run(&["run", "w.yaml", "--cluster", "prod", "--yes"], &[]);
    assert_eq!(out.code, Some(2));
    let out = stub.run(&["run", "w.yaml", "--state", STATE], &[]);
    assert_eq!(out.code, Some(2), "no cluster named");
    assert!(out.calls.is_empty());
    // The variables the CLI reads work as well as the options.
    let out = stub.run(
        &["run", "w.yaml"],
        &[
            ("EKS_UPGRADE_CLUSTER", "prod"),
            ("EKS_UPGRADE_STATE", STATE),
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    let failing = Stubbed::new(&[], 3);
    let out = failing.run(RUN, &[]);
    assert_eq!(out.code, Some(3));
    assert_eq!(out.calls.len(), 1, "nothing started: {:?}", out.calls);
}

/// A directory holding `eks-upgrade`: the binary under test.
fn real_binary() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("dir");
    #[cfg(unix)]
    std::os::unix::fs::symlink(crate::e2e::BIN, dir.path().join("eks-upgrade")).expect("symlink");
    dir
}

#[test]
fn a_pod_stopped_mid_run_is_resumed_by_the_next_pod_through_the_helper() {
    let text = std::fs::read_to_string(repo().join("examples/sandbox/healthy.yaml"))
        .expect("healthy.yaml");
    let sb = External::start(&text.replace(
        "  speed: 600\n",
        "  speed: 600\n  timings: { controlPlaneUpdate: 50m }\n",
    ));
    let wf = workflow(sb.dir.path(), "in-place.yaml", |t| {
        t.replace(
            "upgradeControlPlane: { timeout: 60m }",
            "upgradeControlPlane: { timeout: 4h }",
        )
    });
    // The journals' own bucket: in the Velero bucket they would make its location Unavailable.
    let s3 = sb.s3();
    s3.create_bucket("upgrade-state");
    let state = "s3://upgrade-state/eks-upgrade/state/demo";
    let bin = real_binary();
    let pod = |name: &str| -> Command {
        let wf = wf.to_str().unwrap_or("");
        let args = [
            "run",
            wf,
            "--cluster",
            "demo",
            "--yes",
            "--log-format",
            "json",
            "--state",
            state,
            "--time-scale",
            "600",
            "--ignore-window",
        ];
        let mut cmd = helper(bin.path(), &args, &[]);
        // Each "pod" has a state directory of its own, empty: only S3 carries the run over.
        let scratch: PathBuf = sb.dir.path().join(name);
        cmd.env("EKS_UPGRADE_STATE_DIR", scratch)
            .env("NO_COLOR", "1");
        for (k, v) in &sb.env {
            cmd.env(k, v);
        }
        cmd
    };

    let mut first = pod("first-pod").spawn_timed().expect("first pod");
    poll("the control-plane update to start", POLL_TIMEOUT, || {
        first.check(sb.count("eks", "UpdateClusterVersion") == 1)
    });
    // The journal write that follows the update id must land before the pod is stopped.
    poll(
        "the journal in S3 to record the update id",
        POLL_TIMEOUT,
        || {
            first.check(
                s3.journal("upgrade-state", "eks-upgrade/state/demo")
                    .is_some_and(|j| running_with_fact(&j, "control-plane", "updateId")),
            )
        },
    );
    // What the kubelet does at activeDeadlineSeconds or on eviction. The helper exec'd
    // eks-upgrade, so the pid is the run's.
    first.signal("TERM");
    let stopped = first.wait().code(130);
    assert!(
        stopped.stderr.contains("no unfinished run of cluster demo"),
        "{}",
        stopped.stderr
    );

    let second = pod("second-pod").spawn_timed().expect("pod").wait().code(0);
    assert!(second.stderr.contains("resuming run "), "{}", second.stderr);
    assert_eq!(
        sb.count("eks", "UpdateClusterVersion"),
        1,
        "the update was re-attached to"
    );
    assert_eq!(sb.cluster_version("demo"), "1.34");
}
