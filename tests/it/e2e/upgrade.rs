//! Completing the upgrade, end to end: a multi-hop run that takes every part of the cluster to
//! the target, and the failures that can stop one — an add-on that degrades, a node group that
//! cannot be drained, a workload that breaks halfway — with what the report then says: which
//! hops completed, which failed, what was rolled back and what could not be.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

use super::External;
use crate::common::{Output, Timed, repo};

/// Emulated seconds per real second for these tests, faster than the examples' 600 or 1200.
/// Runs still pass `--time-scale 600`, so every wait of the tool keeps several times the margin
/// it needs: EKS finishing early never fails a run, a step timing out would.
const SPEED: &str = "3000";

/// A scenario of the repository, run faster than its own `speed` says.
pub(super) fn example(name: &str) -> External {
    let text =
        std::fs::read_to_string(repo().join("examples/sandbox").join(name)).expect("scenario");
    let faster = match text.lines().find(|l| l.trim_start().starts_with("speed:")) {
        Some(line) => text.replacen(line, &format!("  speed: {SPEED}"), 1),
        None => text.replacen("spec:\n", &format!("spec:\n  speed: {SPEED}\n"), 1),
    };
    assert_ne!(faster, text, "{name}: the speed was not set");
    External::start(&faster)
}

/// Runs a shipped workflow unattended against `cluster`, with a JSON report; returns the
/// outcome and the report.
pub(super) fn upgrade(
    sb: &External,
    workflow: &str,
    cluster: &str,
    extra: &[&str],
) -> (Output, Value) {
    let wf = repo().join("workflows").join(workflow);
    let report = sb.dir.path().join("report.json");
    let mut args = vec![
        "run",
        wf.to_str().unwrap_or(""),
        "--cluster",
        cluster,
        "--yes",
        "--time-scale",
        "600",
        "--ignore-window",
        "--report",
        report.to_str().unwrap_or(""),
    ];
    args.extend_from_slice(extra);
    let out = sb
        .eks_upgrade(&args)
        // The multi-hop workflow notifies a webhook named by this variable; never a real one.
        .env_remove("SLACK_WEBHOOK_URL")
        .run();
    let text = std::fs::read_to_string(&report)
        .unwrap_or_else(|e| panic!("no report ({e})\n--- stderr\n{}", out.stderr));
    let value = serde_json::from_str(&text).expect("the report is JSON");
    (out, value)
}

/// The real AWS CLI against the sandbox, with JSON output: `command` is split at whitespace.
pub(super) fn aws(sb: &External, command: &str) -> Value {
    let mut cmd = Command::new("aws");
    cmd.args(command.split_whitespace())
        .args(["--output", "json"])
        .env_remove("AWS_PROFILE");
    for (k, v) in &sb.env {
        cmd.env(k, v);
    }
    let out = cmd.output_timed().expect("the aws CLI is installed");
    assert!(out.code == Some(0), "aws {command}: {}", out.stderr);
    serde_json::from_str(&out.stdout).expect("the aws CLI prints JSON")
}

pub(super) fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `(operation, version asked for, HTTP status)` of every UpdateClusterVersion and
/// UpdateNodegroupVersion the sandbox saw, in order.
pub(super) fn version_changes(sb: &External) -> Vec<(String, String, u64)> {
    sb.requests()
        .iter()
        .filter(|r| r["service"] == "eks")
        .filter_map(|r| {
            let op = r["operation"].as_str()?;
            let version = r["detail"]
                .as_str()?
                .split(' ')
                .find_map(|p| p.strip_prefix("version="))?;
            matches!(op, "UpdateClusterVersion" | "UpdateNodegroupVersion").then(|| {
                let status = r["status"].as_u64().unwrap_or(0);
                (op.to_string(), version.to_string(), status)
            })
        })
        .collect()
}

/// `(version asked for, HTTP status)` of every UpdateClusterVersion, in order.
pub(super) fn cluster_updates(sb: &External) -> Vec<(String, u64)> {
    version_changes(sb)
        .into_iter()
        .filter(|(op, _, _)| op == "UpdateClusterVersion")
        .map(|(_, version, status)| (version, status))
        .collect()
}

/// Node group → Kubernetes version, as EKS reports them.
pub(super) fn nodegroup_versions(sb: &External, cluster: &str) -> Vec<(String, String)> {
    let list = aws(sb, &format!("eks list-nodegroups --cluster-name {cluster}"));
    strings(&list["nodegroups"])
        .into_iter()
        .map(|name| {
            let ng = aws(
                sb,
                &format!("eks describe-nodegroup --cluster-name {cluster} --nodegroup-name {name}"),
            );
            let version = ng["nodegroup"]["version"]
                .as_str()
                .unwrap_or("")
                .to_string();
            (name, version)
        })
        .collect()
}

fn addon(sb: &External, cluster: &str, name: &str) -> Value {
    let command = format!("eks describe-addon --cluster-name {cluster} --addon-name {name}");
    aws(sb, &command)["addon"].clone()
}

/// Add-on → the version EKS makes the default for a Kubernetes version.
fn default_addon_versions(sb: &External, kubernetes: &str) -> BTreeMap<String, String> {
    let offered = aws(
        sb,
        &format!("eks describe-addon-versions --kubernetes-version {kubernetes}"),
    );
    let mut defaults = BTreeMap::new();
    for a in offered["addons"].as_array().into_iter().flatten() {
        for v in a["addonVersions"].as_array().into_iter().flatten() {
            let default = v["compatibilities"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["clusterVersion"] == kubernetes && c["defaultVersion"] == true)
            });
            if let (true, Some(name), Some(version)) =
                (default, a["addonName"].as_str(), v["addonVersion"].as_str())
            {
                defaults.insert(name.to_string(), version.to_string());
            }
        }
    }
    defaults
}

pub(super) fn step<'a>(report: &'a Value, phase: &str, hop: Option<&str>, id: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .and_then(|steps| {
            steps
                .iter()
                .find(|s| s["phase"] == phase && s["id"] == id && s["hop"].as_str() == hop)
        })
        .unwrap_or_else(|| panic!("no step {phase}[{hop:?}].{id} in {report:#}"))
}

const RESTORES: &str = "POST /apis/velero.io/v1/namespaces/velero/restores";
const BACKUPS: &str = "POST /apis/velero.io/v1/namespaces/velero/backups";

#[test]
fn a_multi_hop_upgrade_takes_every_part_of_the_cluster_to_the_target_one_hop_at_a_time() {
    let sb = example("multi-hop.yaml");
    let (out, report) = upgrade(&sb, "multi-hop.yaml", "legacy", &["--target", "1.35"]);
    out.code(0);
    assert_eq!(report["result"], "succeeded");
    let hops = ["1.33", "1.34", "1.35"];
    assert_eq!(strings(&report["hops"]), hops);
    assert_eq!(strings(&report["completedHops"]), hops);

    // One control-plane update per hop, in order, each accepted.
    assert_eq!(
        cluster_updates(&sb),
        hops.iter()
            .map(|h| (h.to_string(), 200))
            .collect::<Vec<_>>()
    );
    // Node groups follow the control plane within each hop: every UpdateNodegroupVersion to a
    // version comes after the control plane's update to it and before the next hop's.
    let order: Vec<(String, String)> = version_changes(&sb)
        .into_iter()
        .filter(|(_, _, status)| *status == 200)
        .map(|(op, version, _)| (op, version))
        .collect();
    let expected: Vec<(String, String)> = hops
        .iter()
        .flat_map(|h| {
            [
                ("UpdateClusterVersion", *h),
                ("UpdateNodegroupVersion", *h),
                ("UpdateNodegroupVersion", *h),
            ]
        })
        .map(|(op, v)| (op.to_string(), v.to_string()))
        .collect();
    assert_eq!(order, expected);

    // The end state, asked of EKS with the AWS CLI.
    assert_eq!(sb.cluster_version("legacy"), "1.35");
    let groups = nodegroup_versions(&sb, "legacy");
    assert_eq!(groups.len(), 2, "{groups:?}");
    for (name, version) in &groups {
        assert_eq!(version, "1.35", "node group {name}");
    }
    let addons = strings(&aws(&sb, "eks list-addons --cluster-name legacy")["addons"]);
    assert_eq!(addons.len(), 4, "{addons:?}");
    let defaults = default_addon_versions(&sb, "1.35");
    for name in &addons {
        let a = addon(&sb, "legacy", name);
        assert_eq!(
            a["addonVersion"].as_str(),
            defaults.get(name).map(String::as_str),
            "add-on {name}"
        );
        assert_eq!(a["status"], "ACTIVE", "add-on {name}");
    }

    // One backup, taken once in prepare, not once per hop.
    assert_eq!(sb.count("kubernetes", BACKUPS), 1);
    let command = "s3api list-objects-v2 --bucket velero-backups --prefix backups/ --delimiter /";
    let listed = aws(&sb, command);
    assert_eq!(
        listed["CommonPrefixes"].as_array().map(Vec::len),
        Some(1),
        "{listed:#}"
    );
    let backups = report["backups"].as_array().expect("backups");
    assert_eq!(backups.len(), 1);
    assert_eq!(backups[0]["verified"], true);
    assert_eq!(
        step(&report, "prepare", None, "backup")["status"],
        "succeeded"
    );
    assert_eq!(sb.count("kubernetes", RESTORES), 0);
}

#[test]
fn an_addon_that_degrades_fails_the_addons_step_with_its_health_issues_and_recovery_runs() {
    let sb = example("addon-degrades.yaml");
    let (out, report) = upgrade(&sb, "in-place.yaml", "demo", &[]);
    // The restore and the rollback succeed, but EKS rolls back no add-on: the health check after
    // them still finds coredns degraded, so recovery is incomplete and a person must take over.
    let out = out.code(5);
    let issue = "InsufficientNumberOfReplicas";
    assert!(
        out.stderr.contains("add-on `coredns` is DEGRADED") && out.stderr.contains(issue),
        "{}",
        out.stderr
    );
    assert_eq!(report["result"], "needsHuman");
    assert_eq!(report["exitCode"], 5);
    assert_eq!(report["failedStep"], "upgrade[1.34].addons");
    assert_eq!(report["failedHop"], "1.34");
    let failure = report["failure"].as_str().unwrap_or("");
    assert!(
        failure.contains("DEGRADED") && failure.contains(issue),
        "{failure}"
    );
    let addons = step(&report, "upgrade", Some("1.34"), "addons");
    assert_eq!(addons["status"], "failed");
    assert!(
        addons["error"].as_str().is_some_and(|e| e.contains(issue)),
        "{addons:#}"
    );
    // No further add-on is updated after one fails.
    assert_eq!(sb.count("eks", "UpdateAddon"), 1);
    assert_eq!(
        addon(&sb, "demo", "kube-proxy")["addonVersion"],
        "v1.33.3-eksbuild.2"
    );

    // onFailure ran: the restore, the rollback, and the health check that found the add-on.
    assert_eq!(sb.count("kubernetes", RESTORES), 1);
    assert_eq!(
        step(&report, "onFailure", Some("1.34"), "restore")["status"],
        "succeeded"
    );
    assert_eq!(sb.cluster_version("demo"), "1.33");
    let health = step(&report, "onFailure", Some("1.34"), "health-after-restore");
    assert_eq!(health["status"], "failed");
    assert!(
        health["error"]
            .as_str()
            .is_some_and(|e| e.contains("add-on coredns is DEGRADED")),
        "{health:#}"
    );
    // The degraded version stays (it is supported on 1.33, so the rollback needed no
    // downgrade): the report says so.
    assert!(
        strings(&report["notRolledBack"]).iter().any(|x| x
            .contains("add-on `coredns` stays at v1.12.4-eksbuild.1 (it was v1.11.4-eksbuild.2)")),
        "{:#}",
        report["notRolledBack"]
    );
    assert_eq!(addon(&sb, "demo", "coredns")["status"], "DEGRADED");
}

#[test]
fn a_pod_eviction_failure_is_reported_with_its_error_code_and_the_pod() {
    let sb = example("eviction-fails.yaml");
    let (out, report) = upgrade(&sb, "in-place.yaml", "demo", &[]);
    let out = out.code(4);
    let logged = out
        .stderr
        .lines()
        .find(|l| l.contains(" ERROR ") && l.contains("upgrade[1.34].nodes"))
        .unwrap_or_else(|| panic!("no error line for the nodes step: {}", out.stderr));
    assert!(
        logged.contains("PodEvictionFailure") && logged.contains("shop/db-0"),
        "{logged}"
    );
    assert_eq!(report["result"], "restored");
    assert_eq!(report["failedStep"], "upgrade[1.34].nodes");
    assert_eq!(report["failedHop"], "1.34");
    for text in [
        report["failure"].as_str().unwrap_or(""),
        step(&report, "upgrade", Some("1.34"), "nodes")["error"]
            .as_str()
            .unwrap_or(""),
    ] {
        assert!(
            text.contains("PodEvictionFailure") && text.contains("shop/db-0"),
            "{text}"
        );
    }
    // No other node group is started once one has failed: `system` was never touched.
    assert_eq!(sb.count("eks", "UpdateNodegroupVersion"), 1);
    let groups = nodegroup_versions(&sb, "demo");
    assert!(groups.iter().all(|(_, v)| v == "1.33"), "{groups:?}");
    assert!(
        report["failure"]
            .as_str()
            .is_some_and(|f| f.contains("not started after the failure: system")),
        "{:#}",
        report["failure"]
    );
    assert_eq!(sb.count("kubernetes", RESTORES), 1);
    assert_eq!(sb.cluster_version("demo"), "1.33");
}

#[test]
fn a_workload_that_breaks_after_hop_2_of_3_is_restored_and_rolled_back_to_hop_1() {
    let sb = example("multi-hop-breaks.yaml");
    let (out, report) = upgrade(&sb, "multi-hop.yaml", "legacy", &["--target", "1.35"]);
    out.code(4);
    assert_eq!(report["result"], "restored");
    assert_eq!(report["exitCode"], 4);
    assert_eq!(strings(&report["hops"]), ["1.33", "1.34", "1.35"]);
    assert_eq!(strings(&report["completedHops"]), ["1.33"]);
    assert_eq!(report["failedHop"], "1.34");
    // The rollback-safe hop finds the break before the node groups move.
    assert_eq!(report["failedStep"], "upgrade[1.34].health-before-nodes");
    assert!(
        report["failure"]
            .as_str()
            .is_some_and(|f| f.contains("shop/web")),
        "{:#}",
        report["failure"]
    );
    // Hop 1.35 never started.
    assert!(
        report["steps"]
            .as_array()
            .is_some_and(|s| s.iter().all(|x| x["hop"] != "1.35")),
        "{:#}",
        report["steps"]
    );

    // Restored, and the control plane is back where hop 1 left it.
    assert_eq!(sb.count("kubernetes", BACKUPS), 1);
    assert_eq!(sb.count("kubernetes", RESTORES), 1);
    assert_eq!(sb.cluster_version("legacy"), "1.33");
    assert_eq!(
        cluster_updates(&sb),
        [("1.33", 200), ("1.34", 200), ("1.33", 200)]
            .map(|(v, s)| (v.to_string(), s))
            .to_vec()
    );
    let updates = strings(&aws(&sb, "eks list-updates --name legacy")["updateIds"]);
    let last = updates.last().expect("updates");
    let rollback = &aws(
        &sb,
        &format!("eks describe-update --name legacy --update-id {last}"),
    )["update"];
    assert_eq!(rollback["type"], "VersionRollback");
    assert_eq!(rollback["status"], "Successful");
    assert!(
        report["controlPlaneRollback"]
            .as_str()
            .is_some_and(|r| r.starts_with("rolled back 1.34 → 1.33")),
        "{:#}",
        report["controlPlaneRollback"]
    );
    assert_eq!(
        step(&report, "onFailure", Some("1.34"), "health-after-restore")["status"],
        "succeeded"
    );
}

#[test]
fn a_rollback_eks_would_refuse_is_not_forced_and_the_run_exits_5() {
    let sb = example("rollback-refused.yaml");
    let (out, report) = upgrade(&sb, "multi-hop.yaml", "legacy", &["--target", "1.35"]);
    let out = out.code(5);
    assert_eq!(report["result"], "needsHuman");
    assert_eq!(strings(&report["completedHops"]), ["1.33"]);
    assert_eq!(report["failedHop"], "1.34");

    // The readiness insight is in ERROR and the workflow does not force: the tool never asks
    // for the rollback, and the control plane stays on 1.34.
    assert_eq!(
        cluster_updates(&sb),
        [("1.33", 200), ("1.34", 200)]
            .map(|(v, s)| (v.to_string(), s))
            .to_vec()
    );
    assert_eq!(sb.cluster_version("legacy"), "1.34");
    assert!(
        out.stderr
            .contains("rollback readiness: ERROR Rollback readiness"),
        "each insight is shown:\n{}",
        out.stderr
    );
    let rollback = step(&report, "onFailure", Some("1.34"), "rollback");
    assert_eq!(rollback["status"], "failed");
    assert!(
        rollback["error"]
            .as_str()
            .is_some_and(|e| e.contains("EKS would refuse") && e.contains("Rollback readiness")),
        "{rollback:#}"
    );
    assert!(
        strings(&report["rollbackReadiness"])
            .iter()
            .any(|x| x.starts_with("ERROR Rollback readiness")),
        "{:#}",
        report["rollbackReadiness"]
    );
    assert!(
        strings(&report["notRolledBack"])
            .iter()
            .any(|x| x.starts_with("control plane stays at 1.34")),
        "{:#}",
        report["notRolledBack"]
    );
    assert_eq!(sb.count("kubernetes", RESTORES), 1);
    assert!(
        strings(&report["nextSteps"])
            .iter()
            .any(|x| x.contains("rollback-readiness insights")),
        "{:#}",
        report["nextSteps"]
    );
}
