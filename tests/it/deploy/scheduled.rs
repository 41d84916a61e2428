//! `helpers/scheduled-run.sh`, the entry point of scheduled pods: it resumes this cluster's
//! unfinished run or starts a new one, and starts nothing after an exit 5 or over a journal
//! that cannot be used.
//!
//! The decision tests put a stub `eks-upgrade` first on PATH that records its arguments and
//! prints a `runs --output json` made by the same serializer `eks-upgrade runs` uses. The last
//! test drives the real binary against the sandbox, journal in S3.

use std::path::Path;
use std::process::{Command, Stdio};

use eks_upgrade_core::journal::store::{DamagedJournal, Listed, RunSummary};
use eks_upgrade_core::journal::{RunResult, RunState};

use crate::common::{POLL_TIMEOUT, Timed, poll, repo};
use crate::e2e::{External, running_with_fact, workflow};

const STATE: &str = "s3://state-bucket/eks-upgrade/state/prod";

fn summary(run_id: &str, cluster: &str, state: RunState, exit: Option<u8>) -> Listed {
    Listed::Run(RunSummary {
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
    })
}

/// A journal `runs` lists as damaged; `cluster` is `None` when even that could not be read.
fn damaged(run_id: &str, cluster: Option<&str>) -> Listed {
    let location = format!("{STATE}/runs/{run_id}.json");
    Listed::Damaged(DamagedJournal {
        run_id: run_id.into(),
        damaged: format!(
            "journal `{location}` is damaged: EOF while parsing a string at line 40 column 12"
        ),
        location,
        cluster: cluster.map(str::to_string),
        region: cluster.map(|_| "eu-west-1".to_string()),
    })
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
    fn new(runs: &[Listed], runs_exit: i32) -> Stubbed {
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
fn a_damaged_journal_that_may_be_this_clusters_stops_everything_until_acknowledged() {
    let unfinished = summary(
        "20260307t020500z-cccccc",
        "prod",
        RunState::Upgrade { hop: 1 },
        None,
    );
    for whose in [Some("prod"), None] {
        let stub = Stubbed::new(
            &[
                damaged("20260307t030500z-ffffff", whose),
                unfinished.clone(),
            ],
            0,
        );
        let out = stub.run(RUN, &[]);
        assert_eq!(out.code, Some(5), "{}", out.stderr);
        assert_eq!(out.calls.len(), 1, "only `runs`: {:?}", out.calls);
        assert!(
            out.stderr.contains(&format!(
                "run 20260307t030500z-ffffff ({STATE}/runs/20260307t030500z-ffffff.json) cannot be used"
            )),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr
                .contains("EKS_UPGRADE_ACKNOWLEDGED_RUN=20260307t030500z-ffffff"),
            "{}",
            out.stderr
        );
        // Acknowledged (among others, as a list): the unfinished run is resumed.
        let out = stub.run(
            RUN,
            &[(
                "EKS_UPGRADE_ACKNOWLEDGED_RUN",
                "20260101t000000z-000000, 20260307t030500z-ffffff",
            )],
        );
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert!(
            out.calls
                .last()
                .is_some_and(|c| c.starts_with("resume 20260307t020500z-cccccc")),
            "{:?}",
            out.calls
        );
    }
    // Another cluster's damaged journal is not this cluster's business.
    let other = Stubbed::new(&[damaged("20260307t030500z-ffffff", Some("staging"))], 0);
    let out = other.run(RUN, &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.calls[1].starts_with("run "), "{:?}", out.calls);
}

#[test]
fn an_acknowledged_unfinished_run_is_left_to_the_person_and_a_new_run_starts() {
    // Paused with exit 5 (an AWS operation outlived its timeout, or the journal disagreed with
    // EKS): acknowledging it means a person took it over.
    let stub = Stubbed::new(
        &[summary(
            "20260307t020500z-eeeeee",
            "prod",
            RunState::Upgrade { hop: 1 },
            Some(5),
        )],
        0,
    );
    assert_eq!(stub.run(RUN, &[]).code, Some(5));
    let out = stub.run(
        RUN,
        &[("EKS_UPGRADE_ACKNOWLEDGED_RUN", "20260307t020500z-eeeeee")],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.calls.last().map(String::as_str),
        Some(RUN.join(" ").as_str())
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

/// A scheduled "pod": the helper running the real binary against the sandbox, with a state
/// directory of its own (empty: only S3 carries runs over) and `extra` arguments.
fn pod(sb: &External, bin: &Path, wf: &Path, state: &str, name: &str, extra: &[&str]) -> Command {
    let wf = wf.to_str().unwrap_or("");
    let mut args = vec![
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
    args.extend_from_slice(extra);
    let mut cmd = helper(bin, &args, &[]);
    cmd.env("EKS_UPGRADE_STATE_DIR", sb.dir.path().join(name))
        .env("NO_COLOR", "1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in &sb.env {
        cmd.env(k, v);
    }
    cmd
}

/// The reproducer: a run ends with exit 5, its journal in S3 loses its last 40 bytes,
/// and the next scheduled pod must not take that for "no unfinished run".
#[test]
fn a_cut_journal_of_a_run_that_needed_a_human_stops_the_next_pod_and_changes_nothing() {
    let sb = External::from_example("breaks-after-upgrade.yaml");
    // No `onFailure`: the broken workload leaves the run at exit 5, "a human is needed".
    let wf = workflow(sb.dir.path(), "no-recovery.yaml", |t| {
        t.split("\n  onFailure:").next().unwrap_or("").to_string()
    });
    let s3 = sb.s3();
    s3.create_bucket("upgrade-state");
    let (bucket, prefix) = ("upgrade-state", "eks-upgrade/state/demo");
    let state = format!("s3://{bucket}/{prefix}");
    let bin = real_binary();
    let first = pod(&sb, bin.path(), &wf, &state, "first-pod", &[])
        .output_timed()
        .expect("first pod");
    assert_eq!(first.code, Some(5), "{}", first.stderr);
    assert_eq!(sb.cluster_version("demo"), "1.34");

    let (key, bytes) = s3
        .journal_object(bucket, prefix)
        .expect("the journal in S3");
    let cut = bytes[..bytes.len() - 40].to_vec();
    s3.put(bucket, &key, cut.clone());
    let before = sb.requests().len();

    let second = pod(&sb, bin.path(), &wf, &state, "second-pod", &[])
        .output_timed()
        .expect("second pod");
    assert_eq!(second.code, Some(5), "{}", second.stderr);
    let run_id = key
        .rsplit('/')
        .next()
        .and_then(|n| n.strip_suffix(".json"))
        .unwrap_or("");
    assert!(
        second
            .stderr
            .contains(&format!("EKS_UPGRADE_ACKNOWLEDGED_RUN={run_id}")),
        "{}",
        second.stderr
    );
    assert_eq!(
        sb.writes_since(before),
        Vec::<serde_json::Value>::new(),
        "the second pod changed something"
    );
    assert_eq!(
        s3.journal_object(bucket, prefix),
        Some((key.clone(), cut)),
        "the damaged journal is left as it was, for a person to read"
    );
    assert_eq!(sb.cluster_version("demo"), "1.34");
    let runs = sb.eks_upgrade(&["runs", "--state", &state]).run().code(0);
    assert!(
        runs.stdout.contains(&format!(
            "{run_id}: journal `s3://{bucket}/{key}` is damaged"
        )),
        "{}",
        runs.stdout
    );
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
    let pod = |name: &str| pod(&sb, bin.path(), &wf, state, name, &[]);

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
