//! A crash at every journal write. The binary under test is built with the core crate's
//! `crash-points` feature (the root package's dev-dependency turns it on for `cargo test`
//! builds only), which makes it abort right after its N-th journal write when
//! `EKS_UPGRADE_CRASH_AFTER_WRITE=N`. For N = 1, 2, 3, … until a run completes without reaching
//! N, each crashed run is resumed, and must end exactly as an uninterrupted run does: the same
//! exit code, the same versions in EKS, one Backup, and every EKS update made once.
//!
//! Each N needs a world of its own, so the crash points are spread over a few sandboxes at a
//! time, at ten times the usual speed (`SPEED`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_eks::config::Credentials;
use eks_upgrade_sandbox::world::{ACCESS_KEY, SECRET_KEY};

use super::{External, workflow};
use crate::common::{Timed, repo};

/// How many crash points run at once, each with its own sandbox. The processes mostly wait on
/// emulated time, so this is bounded by what a shared two-core machine absorbs, not by cores.
const PARALLEL: usize = 3;

/// The emulation speed: ten times the examples', since every crash point replays a whole run.
const SPEED: &str = "6000";

/// The runs' `--time-scale`: the examples' own, so every timeout of the workflow is ten times
/// as generous as in the emulated world. A loaded machine slows the emulation down, and a step
/// timing out would end a run differently from the reference for reasons that are not crashes.
const TIME_SCALE: &str = "600";

/// Where a run left the world.
#[derive(Debug, Clone, PartialEq, Eq)]
struct End {
    exit: Option<i32>,
    control_plane: String,
    nodegroups: BTreeMap<String, String>,
    addons: BTreeMap<String, String>,
    backups: usize,
    restores: usize,
    /// The EKS updates made (`UpdateClusterVersion …`), sorted, each once if nothing repeated.
    updates: Vec<String>,
}

fn scenario(name: &str) -> String {
    let text =
        std::fs::read_to_string(repo().join("examples/sandbox").join(name)).expect("scenario");
    assert!(text.contains("  speed: 600\n"), "{name} runs at speed 600");
    text.replace("  speed: 600\n", &format!("  speed: {SPEED}\n"))
}

/// What EKS reports of `demo`, and what the sandbox's record shows was done to it.
fn end(sb: &External, exit: Option<i32>) -> End {
    let var = |name: &str| {
        sb.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (control_plane, nodegroups, addons) = runtime.block_on(async {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(var("AWS_REGION")))
            .credentials_provider(Credentials::new(
                ACCESS_KEY, SECRET_KEY, None, None, "sandbox",
            ))
            .endpoint_url(var("AWS_ENDPOINT_URL_EKS"))
            .load()
            .await;
        let eks = aws_sdk_eks::Client::new(&config);
        let cluster = eks
            .describe_cluster()
            .name("demo")
            .send()
            .await
            .expect("DescribeCluster");
        let version = cluster
            .cluster()
            .and_then(|c| c.version())
            .unwrap_or_default()
            .to_string();
        let mut nodegroups = BTreeMap::new();
        let names = eks
            .list_nodegroups()
            .cluster_name("demo")
            .send()
            .await
            .expect("ListNodegroups");
        for name in names.nodegroups() {
            let ng = eks
                .describe_nodegroup()
                .cluster_name("demo")
                .nodegroup_name(name)
                .send()
                .await
                .expect("DescribeNodegroup");
            let v = ng.nodegroup().and_then(|n| n.version()).unwrap_or_default();
            nodegroups.insert(name.clone(), v.to_string());
        }
        let mut addons = BTreeMap::new();
        let names = eks
            .list_addons()
            .cluster_name("demo")
            .send()
            .await
            .expect("ListAddons");
        for name in names.addons() {
            let a = eks
                .describe_addon()
                .cluster_name("demo")
                .addon_name(name)
                .send()
                .await
                .expect("DescribeAddon");
            let v = a
                .addon()
                .and_then(|a| a.addon_version())
                .unwrap_or_default();
            addons.insert(name.clone(), v.to_string());
        }
        (version, nodegroups, addons)
    });
    let mut updates: Vec<String> = sb
        .requests()
        .iter()
        .filter(|r| {
            r["service"] == "eks"
                && r["operation"]
                    .as_str()
                    .is_some_and(|o| o.starts_with("Update"))
                && r["status"].as_u64().is_some_and(|s| s < 300)
        })
        .map(|r| {
            format!(
                "{} {}",
                r["operation"].as_str().unwrap_or(""),
                r["detail"].as_str().unwrap_or("")
            )
        })
        .collect();
    updates.sort();
    End {
        exit,
        control_plane,
        nodegroups,
        addons,
        backups: sb.count(
            "kubernetes",
            "POST /apis/velero.io/v1/namespaces/velero/backups",
        ),
        restores: sb.count(
            "kubernetes",
            "POST /apis/velero.io/v1/namespaces/velero/restores",
        ),
        updates,
    }
}

/// One world: the in-place workflow on `scenario`, crashing after journal write `crash_at`
/// (never, with `None`) and resumed once if it did. Returns where it ended, and whether the
/// crash point was reached.
fn run_once(scenario: &str, crash_at: Option<usize>) -> (End, bool) {
    let sb = External::start(scenario);
    let wf = workflow(sb.dir.path(), "in-place.yaml", |t| t);
    let mut first = sb
        .eks_upgrade(&[
            "run",
            wf.to_str().unwrap_or(""),
            "--cluster",
            "demo",
            "--yes",
            "--time-scale",
            TIME_SCALE,
            "--ignore-window",
        ])
        // Any core file of the abort lands in the scratch directory, not the repository.
        .current_dir(sb.dir.path());
    if let Some(n) = crash_at {
        first = first.env("EKS_UPGRADE_CRASH_AFTER_WRITE", n.to_string());
    }
    let out = first.run();
    let crashed = out.code.is_none();
    if !crashed {
        return (end(&sb, out.code), false);
    }
    let n = crash_at.unwrap_or_default();
    assert!(
        out.stderr
            .contains(&format!("crash point: aborting after journal write {n}")),
        "write {n}: the run died, but not at its crash point:\n{}",
        out.stderr
    );
    // The run's id is the journal's name: `resume` by id also covers a crash after the last
    // write, when the run is already finished.
    let run_id = sb
        .journal_path()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| panic!("write {n}: no journal after the crash"));
    let resumed = sb
        .eks_upgrade(&[
            "resume",
            &run_id,
            "--yes",
            "--time-scale",
            TIME_SCALE,
            "--ignore-window",
        ])
        .env_remove("EKS_UPGRADE_CRASH_AFTER_WRITE")
        .run()
        .no_panic();
    let after = end(&sb, resumed.code);
    if after.exit != Some(0) && after.exit != Some(4) {
        eprintln!("write {n}: resume stderr:\n{}", resumed.stderr);
    }
    (after, true)
}

/// Crashes the in-place workflow on `scenario` at every journal write, in parallel worlds, and
/// compares each end with the uninterrupted one. Returns how many crash points were covered.
fn crash_at_every_write(scenario_file: &str, check_reference: impl Fn(&End)) -> usize {
    let text = scenario(scenario_file);
    let (reference, _) = run_once(&text, None);
    check_reference(&reference);
    let mut once = reference.updates.clone();
    once.dedup();
    assert_eq!(once, reference.updates, "an update was repeated");
    let next = AtomicUsize::new(1);
    // The first N whose run finished without reaching it: no crash point lies beyond.
    let finished_at = AtomicUsize::new(usize::MAX);
    let failures = Mutex::new(Vec::new());
    let crashed = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL {
            scope.spawn(|| {
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n > finished_at.load(Ordering::SeqCst) {
                        return;
                    }
                    let (got, reached) = run_once(&text, Some(n));
                    if reached {
                        crashed.fetch_add(1, Ordering::SeqCst);
                    } else {
                        finished_at.fetch_min(n, Ordering::SeqCst);
                    }
                    if got != reference
                        && let Ok(mut f) = failures.lock()
                    {
                        f.push(format!(
                            "crash after write {n}: ended as\n{got:#?}\ninstead of\n{reference:#?}"
                        ));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_default();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let covered = crashed.load(Ordering::SeqCst);
    let finished_at = finished_at.load(Ordering::SeqCst);
    assert!(
        finished_at != usize::MAX,
        "no run ever finished without crashing"
    );
    assert_eq!(
        covered,
        finished_at - 1,
        "every write before the last one was a crash point"
    );
    eprintln!("{scenario_file}: {covered} crash points, each resumed to the uninterrupted end");
    covered
}

#[test]
fn an_in_place_upgrade_crashed_at_every_journal_write_resumes_to_the_same_end() {
    let covered = crash_at_every_write("healthy.yaml", |r| {
        assert_eq!(r.exit, Some(0), "{r:#?}");
        assert_eq!(r.control_plane, "1.34");
        assert!(r.nodegroups.values().all(|v| v == "1.34"), "{r:#?}");
        assert_eq!(r.backups, 1);
        assert_eq!(r.restores, 0);
        // One control-plane update for the hop, one per node group, one per add-on moved.
        let count = |op: &str| r.updates.iter().filter(|u| u.starts_with(op)).count();
        assert_eq!(count("UpdateClusterVersion "), 1, "{r:#?}");
        assert_eq!(
            count("UpdateNodegroupVersion "),
            r.nodegroups.len(),
            "{r:#?}"
        );
        assert_eq!(count("UpdateAddon "), r.addons.len(), "{r:#?}");
    });
    assert!(covered > 10, "{covered} crash points");
}

#[test]
fn a_recovery_crashed_at_every_journal_write_resumes_to_the_same_end() {
    let covered = crash_at_every_write("breaks-after-upgrade.yaml", |r| {
        // Restored (4), or a person needed (5) where EKS refuses the rollback: whichever the
        // uninterrupted run reaches is the end every crashed one must reach too.
        assert!(matches!(r.exit, Some(4 | 5)), "{r:#?}");
        assert_eq!(r.backups, 1);
        assert_eq!(r.restores, 1, "{r:#?}");
        let count = |op: &str| r.updates.iter().filter(|u| u.starts_with(op)).count();
        // The workload breaks after the nodes moved: every group goes up once and back once.
        assert_eq!(
            count("UpdateNodegroupVersion "),
            2 * r.nodegroups.len(),
            "{r:#?}"
        );
        // The upgrade, and at most the rollback.
        assert!((1..=2).contains(&count("UpdateClusterVersion ")), "{r:#?}");
    });
    assert!(covered > 10, "{covered} crash points");
}

/// The switch exists only in what `cargo test` builds: through the root package's
/// dev-dependency, never through a normal one (what `cargo build --release` and the image use).
#[test]
fn only_test_builds_have_crash_points() {
    let tree = |edges: &str| {
        let out = std::process::Command::new(option_env!("CARGO").unwrap_or("cargo"))
            .args([
                "tree",
                "--locked",
                "-p",
                "eks-upgrade",
                "-i",
                "eks-upgrade-core",
                "-e",
            ])
            .arg(edges)
            .current_dir(repo())
            .output_timed()
            .expect("cargo tree");
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        out.stdout
    };
    assert!(!tree("normal,build,features").contains("crash-points"));
    assert!(
        tree("normal,build,dev,features").contains("eks-upgrade-core feature \"crash-points\"")
    );
}
