//! The fault matrix: for every step kind, each fault the sandbox can inject where that kind runs,
//! with the exit code and the report line an operator gets. One row per pair, so a missing pair
//! shows in review; a kind no fault reaches says why in a row of its own.
//!
//! Every row runs the shipped in-place workflow (or the eksctl one) unattended against the
//! healthy scenario plus the row's faults, and checks three things: the exit code, the report's
//! `result` and failed step, and one line of the Markdown report.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use serde_json::Value;

use super::External;
use crate::common::repo;

/// Which workflow a row runs, and how it is edited first.
enum Flow {
    /// `workflows/in-place.yaml` with `(from, to)` replacements, each of which must apply.
    InPlace(&'static [(&'static str, &'static str)]),
    /// `workflows/eksctl.yaml`, driving this script as `eksctl`.
    Eksctl(&'static str),
}

/// What a row expects.
struct Expect {
    exit: i32,
    /// The report's `result`.
    result: &'static str,
    /// The report's `failedStep`, when a step failed.
    failed_step: Option<&'static str>,
    /// Text one line of the Markdown report contains.
    line: &'static str,
}

/// One row of the matrix.
struct Row {
    kind: &'static str,
    fault: &'static str,
    /// YAML lines under the scenario's `faults:` (indented by four spaces there); `speed: N`
    /// sets the scenario's speed instead, and `scenario: NAME` runs that example instead of
    /// `healthy.yaml`.
    faults: &'static [&'static str],
    flow: Flow,
    expect: Result<Expect, &'static str>,
}

const NO_EDIT: Flow = Flow::InPlace(&[]);

/// EKS slower than the run expects: a control-plane update takes seconds instead of a fraction
/// of one, longer than a step timeout of a minute at the run's time scale (with its floor).
const SLOW_EKS: &str = "speed: 200";
/// A workload that crash-loops once the control plane reaches 1.34.
const BREAKS: &str = "breakAfter: [ { version: \"1.34\", workload: shop/api } ]";
/// A workload that crash-loops once the node groups reach 1.34 (after the soak).
const BREAKS_AFTER_NODES: &str =
    "breakAfter: [ { version: \"1.34\", workload: shop/api, after: nodegroups } ]";

macro_rules! matrix {
    ($($name:ident: $row:expr;)*) => {
        /// Every row, for the coverage test.
        fn rows() -> Vec<(&'static str, Row)> {
            vec![$((stringify!($name), $row)),*]
        }
        $(
            #[test]
            fn $name() {
                check(stringify!($name), $row);
            }
        )*
    };
}

matrix! {
    // preflight: reads EKS insights and the cluster before any change.
    preflight_eks_throttled: Row {
        kind: "preflight", fault: "EKS throttles ListInsights once",
        faults: &["api: [ { service: eks, operation: ListInsights, fault: throttle, count: 1 } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 0, result: "succeeded", failed_step: None, line: "the cluster is at 1.34" }),
    };
    preflight_eks_unavailable: Row {
        kind: "preflight", fault: "EKS answers ListInsights with 503 every time",
        faults: &["api: [ { service: eks, operation: ListInsights, fault: unavailable, count: 50 } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 3, result: "stopped", failed_step: Some("prepare.preflight"), line: "cannot read EKS upgrade-readiness insights" }),
    };
    preflight_kubernetes_unavailable: Row {
        kind: "preflight", fault: "the Kubernetes API answers PodDisruptionBudget lists with 500",
        faults: &["api: [ { service: kubernetes, operation: GET /apis/policy/v1/poddisruptionbudgets, fault: internal, count: 50 } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 3, result: "stopped", failed_step: Some("prepare.preflight"), line: "K8S002 API poddisruptionbudgets: cannot list poddisruptionbudgets" }),
    };
    // veleroBackup
    backup_failed: Row {
        kind: "veleroBackup", fault: "Velero ends the Backup `Failed`",
        faults: &["backupPhase: Failed"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 3, result: "stopped", failed_step: Some("prepare.backup"), line: "ended Failed with 1 errors" }),
    };
    backup_partially_failed: Row {
        kind: "veleroBackup", fault: "Velero ends the Backup `PartiallyFailed`",
        faults: &["backupPhase: PartiallyFailed"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 3, result: "stopped", failed_step: Some("prepare.backup"), line: "ended PartiallyFailed with 1 errors" }),
    };
    backup_api_unavailable: Row {
        kind: "veleroBackup", fault: "the Kubernetes API refuses to create the Backup (503)",
        faults: &["api: [ { service: kubernetes, operation: POST /apis/velero.io/v1/namespaces/velero/backups, fault: unavailable, count: 50 } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 3, result: "stopped", failed_step: Some("prepare.backup"), line: "cannot create Backup" }),
    };
    // verifyBackup: reads the bucket directly.
    verify_tarball_missing: Row {
        kind: "verifyBackup", fault: "the tarball is missing from S3",
        faults: &["bucket: [ { object: tarball, fault: missing } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 3, result: "stopped", failed_step: Some("prepare.verify"), line: "the tarball is missing" }),
    };
    verify_tarball_corrupt: Row {
        kind: "verifyBackup", fault: "a byte of the tarball is corrupt",
        faults: &["bucket: [ { object: tarball, fault: corrupt } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 3, result: "stopped", failed_step: Some("prepare.verify"), line: "the tarball is corrupt" }),
    };
    verify_metadata_mismatch: Row {
        kind: "verifyBackup", fault: "`velero-backup.json` names another Backup's UID",
        faults: &["bucket: [ { object: velero-backup.json, fault: uid-mismatch } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 3, result: "stopped", failed_step: Some("prepare.verify"), line: "the files belong to another backup of the same name" }),
    };
    verify_s3_throttled: Row {
        kind: "verifyBackup", fault: "S3 throttles the first read of the backup's files",
        faults: &["api: [ { service: s3, operation: GET /velero-backups/backups/, fault: throttle, count: 1 } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 0, result: "succeeded", failed_step: None, line: "the cluster is at 1.34" }),
    };
    verify_s3_unavailable: Row {
        kind: "verifyBackup", fault: "S3 answers every read of the backup's files with 503 SlowDown",
        faults: &["api: [ { service: s3, operation: GET /velero-backups/backups/, fault: unavailable, count: 500 } ]"],
        // Time for the SDK's retries, which the run's time scale does not shorten.
        flow: Flow::InPlace(&[("verifyBackup: { backup: backup, depth: full }", "verifyBackup: { backup: backup, depth: full, timeout: 600m }")]),
        expect: Ok(Expect { exit: 3, result: "stopped", failed_step: Some("prepare.verify"), line: "verification could not be carried out: cannot read" }),
    };
    // approval
    approval_no_fault: Row {
        kind: "approval", fault: "none: it calls no service",
        faults: &[],
        flow: NO_EDIT,
        expect: Err("an approval asks a person (or takes `--yes`); it makes no call a fault could reach"),
    };
    // upgradeControlPlane
    control_plane_update_failed: Row {
        kind: "upgradeControlPlane", fault: "the EKS update ends `Failed`",
        faults: &["failedUpdates: [ { target: controlPlane, version: \"1.34\", errorCode: ClusterUnreachable } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 4, result: "restored", failed_step: Some("upgrade[1.34].control-plane"), line: "ended Failed: ClusterUnreachable" }),
    };
    control_plane_throttled: Row {
        kind: "upgradeControlPlane", fault: "EKS throttles UpdateClusterVersion once",
        faults: &["api: [ { service: eks, operation: UpdateClusterVersion, fault: throttle, count: 1 } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 0, result: "succeeded", failed_step: None, line: "the cluster is at 1.34" }),
    };
    control_plane_unavailable: Row {
        kind: "upgradeControlPlane", fault: "EKS answers UpdateClusterVersion with 500 every time",
        faults: &["api: [ { service: eks, operation: UpdateClusterVersion, fault: internal, count: 50 } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 4, result: "restored", failed_step: Some("upgrade[1.34].control-plane"), line: "EKS refused to move the control plane to 1.34" }),
    };
    control_plane_timeout: Row {
        kind: "upgradeControlPlane", fault: "the update outlives the step's timeout",
        faults: &[SLOW_EKS],
        flow: Flow::InPlace(&[("upgradeControlPlane: { timeout: 60m }", "upgradeControlPlane: { timeout: 1m }")]),
        expect: Ok(Expect { exit: 5, result: "needsHuman", failed_step: None, line: "`control-plane` is still waiting on AWS" }),
    };
    // upgradeAddons
    addons_update_failed: Row {
        kind: "upgradeAddons", fault: "the EKS update of `coredns` ends `Failed`",
        faults: &["failedUpdates: [ { target: addon/coredns, errorCode: ConfigurationConflict } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 4, result: "restored", failed_step: Some("upgrade[1.34].addons"), line: "ConfigurationConflict" }),
    };
    addons_degraded: Row {
        kind: "upgradeAddons", fault: "`coredns` ends `DEGRADED`",
        faults: &["addonDegrades: [ { addon: coredns, version: \"1.34\" } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 5, result: "needsHuman", failed_step: Some("upgrade[1.34].addons"), line: "add-on `coredns` is DEGRADED" }),
    };
    addons_throttled: Row {
        kind: "upgradeAddons", fault: "EKS throttles UpdateAddon once",
        faults: &["api: [ { service: eks, operation: UpdateAddon, fault: throttle, count: 1 } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 0, result: "succeeded", failed_step: None, line: "the cluster is at 1.34" }),
    };
    // upgradeNodegroups
    nodegroups_eviction_failed: Row {
        kind: "upgradeNodegroups", fault: "the node-group update ends `Failed` (PodEvictionFailure)",
        faults: &["failedUpdates: [ { target: nodegroup/general, version: \"1.34\", errorCode: PodEvictionFailure, resourceIds: [shop/db-0] } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 4, result: "restored", failed_step: Some("upgrade[1.34].nodes"), line: "PodEvictionFailure" }),
    };
    nodegroups_throttled: Row {
        kind: "upgradeNodegroups", fault: "EKS throttles UpdateNodegroupVersion once",
        faults: &["api: [ { service: eks, operation: UpdateNodegroupVersion, fault: throttle, count: 1 } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 0, result: "succeeded", failed_step: None, line: "the cluster is at 1.34" }),
    };
    nodegroups_timeout: Row {
        kind: "upgradeNodegroups", fault: "the rollout outlives the step's timeout",
        faults: &[SLOW_EKS],
        flow: Flow::InPlace(&[("upgradeNodegroups: { maxParallel: 1 }", "upgradeNodegroups: { maxParallel: 1, timeout: 1m }")]),
        expect: Ok(Expect { exit: 5, result: "needsHuman", failed_step: None, line: "`nodes` is still waiting on AWS" }),
    };
    // convergeNodePools: reads the nodes and Karpenter's objects, changes nothing. A failed read
    // is a failed look, asked again until the step's timeout.
    node_pools_kubernetes_flaky: Row {
        // The plan's and pre-flight's reads take one failure each; the step's first look the
        // third, and it looks again.
        kind: "convergeNodePools", fault: "the Kubernetes API answers NodePool lists with 500 three times",
        faults: &["api: [ { service: kubernetes, operation: GET /apis/karpenter.sh/v1/nodepools, fault: internal, count: 3 } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 0, result: "succeeded", failed_step: None, line: "the cluster is at 1.34" }),
    };
    node_pools_kubernetes_unavailable: Row {
        kind: "convergeNodePools", fault: "the Kubernetes API answers NodePool lists with 500 every time",
        faults: &["api: [ { service: kubernetes, operation: GET /apis/karpenter.sh/v1/nodepools, fault: internal, count: 100000 } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 4, result: "restored", failed_step: Some("upgrade[1.34].node-pools"), line: "the last look failed" }),
    };
    node_pools_launch_failures: Row {
        // Every replacement fails to launch, so no Karpenter node moved and the control plane
        // may go back.
        kind: "convergeNodePools", fault: "Karpenter cannot launch any replacement (InsufficientCapacityError)",
        faults: &["scenario: karpenter.yaml", "launchFailures: [ { nodePool: default, message: no capacity for m6i.large } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 4, result: "restored", failed_step: Some("upgrade[1.34].node-pools"), line: "failed to launch (`InsufficientCapacityError`: no capacity for m6i.large)" }),
    };
    // eksctl
    eksctl_fails: Row {
        kind: "eksctl", fault: "eksctl exits 1",
        faults: &[],
        flow: Flow::Eksctl("#!/bin/sh\necho 'Error: AccessDeniedException' >&2\nexit 1\n"),
        expect: Ok(Expect { exit: 4, result: "restored", failed_step: Some("upgrade[1.34].eksctl"), line: "Error: AccessDeniedException" }),
    };
    eksctl_no_op: Row {
        kind: "eksctl", fault: "eksctl exits 0 and changes nothing",
        faults: &[],
        flow: Flow::Eksctl("#!/bin/sh\nexit 0\n"),
        expect: Ok(Expect { exit: 4, result: "restored", failed_step: Some("upgrade[1.34].eksctl"), line: "eksctl exited 0, but EKS shows the control plane is at 1.33, not 1.34" }),
    };
    // healthCheck
    health_workload_breaks: Row {
        kind: "healthCheck", fault: "a workload crash-loops after the control plane moves",
        faults: &[BREAKS],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 4, result: "restored", failed_step: Some("upgrade[1.34].health-before-nodes"), line: "Deployment shop/api: 0/2 replicas available" }),
    };
    health_api_unavailable: Row {
        kind: "healthCheck", fault: "the Kubernetes API answers pod lists with 503, so no health baseline can be taken",
        faults: &["api: [ { service: kubernetes, operation: GET /api/v1/pods, fault: unavailable, count: 100000 } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 3, result: "stopped", failed_step: None, line: "cannot record the health baseline" }),
    };
    // soak
    soak_no_fault: Row {
        kind: "soak", fault: "none: it only waits",
        faults: &[],
        flow: NO_EDIT,
        expect: Err("a soak waits and calls no service; the health check after it sees what broke during it"),
    };
    // veleroRestore (reached through a broken workload)
    restore_failed: Row {
        kind: "veleroRestore", fault: "Velero ends the Restore `Failed`",
        faults: &[BREAKS, "restoreFails: true"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 5, result: "needsHuman", failed_step: Some("upgrade[1.34].health-before-nodes"), line: "recovery step `restore` failed" }),
    };
    restore_api_unavailable: Row {
        kind: "veleroRestore", fault: "the Kubernetes API refuses to create the Restore (503)",
        faults: &[BREAKS, "api: [ { service: kubernetes, operation: POST /apis/velero.io/v1/namespaces/velero/restores, fault: unavailable, count: 50 } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 5, result: "needsHuman", failed_step: Some("upgrade[1.34].health-before-nodes"), line: "cannot create Restore" }),
    };
    // rollbackNodegroups (reached through a break after the nodes moved)
    rollback_nodegroups_failed: Row {
        kind: "rollbackNodegroups", fault: "the node-group rollback ends `Failed`",
        faults: &[BREAKS_AFTER_NODES, "failedUpdates: [ { target: nodegroup/general, version: \"1.33\", errorCode: PodEvictionFailure } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 5, result: "needsHuman", failed_step: Some("upgrade[1.34].health"), line: "recovery step `rollback-nodes` failed" }),
    };
    rollback_nodegroups_throttled: Row {
        kind: "rollbackNodegroups", fault: "EKS throttles UpdateNodegroupVersion (twice: up, then back)",
        faults: &[BREAKS_AFTER_NODES, "api: [ { service: eks, operation: UpdateNodegroupVersion, fault: throttle, count: 2 } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 4, result: "restored", failed_step: Some("upgrade[1.34].health"), line: "recovery completed, and the cluster is healthy" }),
    };
    // rollbackAddons
    rollback_addons_failed: Row {
        kind: "rollbackAddons", fault: "the add-on rollback of kube-proxy ends `Failed`",
        faults: &[BREAKS_AFTER_NODES, "failedUpdates: [ { target: addon/kube-proxy, addonVersion: v1.33.3-eksbuild.2, errorCode: ConfigurationConflict } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 5, result: "needsHuman", failed_step: Some("upgrade[1.34].health"), line: "recovery step `rollback-addons` failed" }),
    };
    // rollbackControlPlane
    rollback_control_plane_failed: Row {
        kind: "rollbackControlPlane", fault: "the control-plane rollback ends `Failed`",
        faults: &[BREAKS, "failedUpdates: [ { target: controlPlane, version: \"1.33\", errorCode: Unknown } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 5, result: "needsHuman", failed_step: Some("upgrade[1.34].health-before-nodes"), line: "recovery step `rollback` failed" }),
    };
    rollback_control_plane_throttled: Row {
        kind: "rollbackControlPlane", fault: "EKS throttles UpdateClusterVersion (up, then back)",
        faults: &[BREAKS, "api: [ { service: eks, operation: UpdateClusterVersion, fault: throttle, count: 2 } ]"],
        flow: NO_EDIT,
        expect: Ok(Expect { exit: 4, result: "restored", failed_step: Some("upgrade[1.34].health-before-nodes"), line: "recovery completed, and the cluster is healthy" }),
    };
    // attachBackupLocation, restoreToGreen, testGreen: blue/green steps, after green exists
    attach_location_blue_green: Row {
        kind: "attachBackupLocation", fault: "none here: it runs only after green exists, which no in-place flow makes",
        faults: &[],
        flow: NO_EDIT,
        expect: Err("`e2e::blue_green::restore` runs it on a green made by `createGreen`; a location that never becomes Available or a backup that never syncs fails it by its timeout"),
    };
    restore_green_partially_failed: Row {
        kind: "restoreToGreen", fault: "Velero ends green's Restore `PartiallyFailed` (`newClusters.faults.restoreErrors`)",
        faults: &[],
        flow: NO_EDIT,
        expect: Err("blue/green only: `e2e::blue_green::restore::a_partially_failed_restore_into_green_stops_before_traffic_with_exit_3` asserts exit 3, the failed namespace named and no DNS change"),
    };
    test_green_job_fails: Row {
        kind: "testGreen", fault: "green's test Job ends `Failed` (`newClusters.faults.jobsFail`)",
        faults: &[],
        flow: NO_EDIT,
        expect: Err("blue/green only: `e2e::blue_green::restore::a_failing_test_job_on_green_stops_before_traffic_with_its_reason` asserts exit 3 with the Job's reason and the end of its log"),
    };
    // createGreen, adoptGreen, waitGreen, shiftTraffic, switchBack, retireBlue: blue/green steps
    create_green_fails: Row {
        kind: "createGreen", fault: "EKS ends green `FAILED` with a health issue (`newClusters.createFails`)",
        faults: &[],
        flow: NO_EDIT,
        expect: Err("blue/green only: `e2e::blue_green::create::green_creation_failure_leaves_blue_and_dns_untouched_and_exits_3` asserts exit 3, the health issue named, no DNS change and no write on blue but the Backup and the Lease"),
    };
    adopt_green_missing: Row {
        kind: "adoptGreen", fault: "none here: the named green must exist, which no in-place flow makes",
        faults: &[],
        flow: NO_EDIT,
        expect: Err("`e2e::blue_green::create::adopt_green_takes_a_cluster_made_with_the_aws_cli` adopts one; a green that does not exist or is at another version fails the step before anything changes"),
    };
    wait_green_not_ready: Row {
        kind: "waitGreen", fault: "none here: it waits on a green made by `createGreen` or `adoptGreen`",
        faults: &[],
        flow: NO_EDIT,
        expect: Err("`e2e::blue_green::create` waits for green's node groups, add-ons, nodes and Velero; one that never gets ready fails by its timeout, before any traffic moves (exit 3)"),
    };
    shift_traffic_green_broken: Row {
        kind: "shiftTraffic", fault: "a workload on green answers 500 (`newClusters.faults.servesErrors`)",
        faults: &[],
        flow: NO_EDIT,
        expect: Err("blue/green only: `e2e::blue_green::traffic` asserts the failure at the first stage, one change back to blue 100/green 0 and exit 4"),
    };
    switch_back_after_traffic: Row {
        kind: "switchBack", fault: "none of its own: it runs when a step after the first weight change fails",
        faults: &[],
        flow: NO_EDIT,
        expect: Err("`e2e::blue_green::traffic` asserts the one change it sends and the weights Route 53 serves after it"),
    };
    retire_blue_after_success: Row {
        kind: "retireBlue", fault: "none here: it runs in `finish` of a successful blue/green run",
        faults: &[],
        flow: NO_EDIT,
        expect: Err("`e2e::blue_green::story` runs the commands it prints and its `retire: delete`; a blue that still takes traffic is refused before anything is deleted"),
    };
    // notify
    notify_no_fault: Row {
        kind: "notify", fault: "none in the sandbox: webhooks are outside it",
        faults: &[],
        flow: NO_EDIT,
        expect: Err("a webhook is not a sandbox service; `e2e::extras` covers a webhook that refuses, which never fails the run"),
    };
}

/// The healthy scenario (or the one a `scenario: NAME` line names), faster, with `faults`
/// under `faults:`.
fn scenario(faults: &[&str]) -> String {
    let name = faults
        .iter()
        .find_map(|f| f.strip_prefix("scenario: "))
        .unwrap_or("healthy.yaml");
    let text = std::fs::read_to_string(repo().join("examples/sandbox").join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let speed = faults
        .iter()
        .find_map(|f| f.strip_prefix("speed: "))
        .unwrap_or("3000");
    let text = text.replacen("  speed: 600", &format!("  speed: {speed}"), 1);
    let faults: Vec<&&str> = faults
        .iter()
        .filter(|f| !f.starts_with("speed: ") && !f.starts_with("scenario: "))
        .collect();
    if faults.is_empty() {
        return text;
    }
    let mut out = format!("{}\n  faults:\n", text.trim_end());
    for f in faults {
        out.push_str("    ");
        out.push_str(f);
        out.push('\n');
    }
    out
}

/// The workflow file a row runs.
fn workflow(sb: &External, flow: &Flow) -> PathBuf {
    let dir = sb.dir.path();
    let (name, text) = match flow {
        Flow::InPlace(edits) => {
            let mut text = std::fs::read_to_string(repo().join("workflows/in-place.yaml"))
                .expect("in-place workflow");
            for (from, to) in *edits {
                assert!(text.contains(from), "the edit `{from}` does not apply");
                text = text.replacen(from, to, 1);
            }
            ("in-place.yaml", text)
        }
        Flow::Eksctl(script) => {
            let bin = dir.join("eksctl");
            std::fs::write(&bin, script).expect("write stand-in");
            std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            let config = dir.join("cluster.yaml");
            std::fs::copy(repo().join("helpers/eksctl.yaml"), &config).expect("copy config");
            let text = std::fs::read_to_string(repo().join("workflows/eksctl.yaml"))
                .expect("eksctl workflow")
                .replace(
                    "configFile: helpers/eksctl.yaml",
                    &format!("configFile: {}", config.display()),
                )
                .replace("binary: eksctl", &format!("binary: {}", bin.display()));
            ("eksctl.yaml", text)
        }
    };
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write workflow");
    path
}

fn check(name: &str, row: Row) {
    let Ok(expect) = row.expect else {
        return;
    };
    let sb = External::start(&scenario(row.faults));
    let wf = workflow(&sb, &row.flow);
    let json = sb.dir.path().join("report.json");
    let markdown = sb.dir.path().join("report.md");
    let out = sb
        .run_workflow(
            &wf,
            &[
                "--report",
                json.to_str().unwrap_or(""),
                "--report",
                markdown.to_str().unwrap_or(""),
            ],
        )
        .run()
        .no_panic();
    let report: Value = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let markdown = std::fs::read_to_string(&markdown).unwrap_or_default();
    let seen = format!(
        "{name} ({} × {}): exit {:?}, result {}, failedStep {}\n--- stderr\n{}\n--- report.md\n{markdown}",
        row.kind, row.fault, out.code, report["result"], report["failedStep"], out.stderr
    );
    assert_eq!(out.code, Some(expect.exit), "{seen}");
    assert_eq!(report["result"], expect.result, "{seen}");
    match expect.failed_step {
        Some(step) => assert_eq!(report["failedStep"], step, "{seen}"),
        None => assert!(report["failedStep"].is_null(), "{seen}"),
    }
    assert!(
        markdown.lines().any(|l| l.contains(expect.line)),
        "no line of the report contains `{}`: {seen}",
        expect.line
    );
}

/// Every step kind has at least one row, and every row names a kind that exists.
#[test]
fn every_step_kind_has_a_row_in_the_fault_matrix() {
    let kinds = eks_upgrade_core::steps::STEP_KINDS;
    let rows = rows();
    for kind in kinds {
        assert!(
            rows.iter().any(|(_, r)| r.kind == *kind),
            "the fault matrix has no row for `{kind}`: add one, or a row saying why no fault reaches it"
        );
    }
    for (name, row) in &rows {
        assert!(
            kinds.contains(&row.kind),
            "row `{name}`: no kind `{}`",
            row.kind
        );
    }
}
