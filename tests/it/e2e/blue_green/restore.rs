//! Blue/green end to end: restore. Green is made, given read-only access to blue's backups,
//! filled from the verified backup, checked against blue's baseline and tested with the
//! workflow's Job — and a restore or a test that fails stops the run before any traffic moves
//! (exit 3), with green kept and blue, its backup location and DNS untouched.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::common::{Output, Timed, repo};
use crate::e2e::External;

/// A blue/green scenario of the repository with `extra` appended to its `spec`.
fn scenario(name: &str, extra: &str) -> External {
    let mut text =
        std::fs::read_to_string(repo().join("examples/sandbox").join(name)).expect("scenario");
    text.push_str(extra);
    External::start(&text)
}

/// The compatibility Job, in a file beside the workflow (`file:` is relative to it).
const JOB: &str = "apiVersion: batch/v1
kind: Job
metadata:
  labels: { app: compat }
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: compat
          image: public.ecr.aws/docker/library/busybox:1.36
          command: [sh, -c, 'wget -qO- http://web.shop/healthz']
";

/// A blue/green workflow that builds green and fills it, without moving traffic: backup and
/// verification in `prepare`, then green made, waited for, attached, restored into, checked
/// and tested. Returns its path; the Job file is written beside it.
fn workflow(sb: &External) -> PathBuf {
    let dir = sb.dir.path().join("wf");
    std::fs::create_dir_all(dir.join("tests")).expect("workflow dir");
    std::fs::write(dir.join("tests/compat-job.yaml"), JOB).expect("job file");
    let text = "apiVersion: eks-upgrade/v1
kind: Workflow
metadata:
  name: blue-green-restore
spec:
  cluster: { name: demo, region: us-east-1 }
  target: \"1.35\"
  prepare:
    - { id: backup, veleroBackup: {} }
    - { id: verify, verifyBackup: { backup: backup } }
  upgrade:
    - { id: green, createGreen: { timeout: 4h } }
    - { id: green-ready, waitGreen: { timeout: 4h } }
    - { id: attach, attachBackupLocation: { backup: backup, timeout: 4h } }
    - { id: restore, restoreToGreen: { backup: backup, excludedNamespaces: [kube-system], timeout: 4h } }
    - { id: green-health, healthCheck: { on: green, timeout: 4h } }
    - { id: compat, testGreen: { file: tests/compat-job.yaml, logLines: 50, timeout: 4h } }
";
    let path = dir.join("blue-green.yaml");
    std::fs::write(&path, text).expect("workflow");
    path
}

/// The run's green cluster, as the journal records it.
fn green_name(sb: &External) -> String {
    let j = sb.journal();
    j["facts"]["green"]["name"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no green in the journal: {j}"))
}

/// The journal entry of step `id`.
fn step(sb: &External, id: &str) -> Value {
    let j = sb.journal();
    j["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["key"]["id"] == id).cloned())
        .unwrap_or_else(|| panic!("no step `{id}` in the journal: {j}"))
}

/// kubectl against `cluster`'s own API server, through `aws eks update-kubeconfig`: what a
/// person would use, written by nobody here. Returns the parsed JSON of `get … -o json`.
fn kubectl_get(sb: &External, cluster: &str, args: &[&str]) -> Value {
    let dir = sb.dir.path().join(format!("kube-{cluster}"));
    let kubeconfig = dir.join("config").display().to_string();
    let run = |program: &str, args: &[&str]| {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_remove("AWS_PROFILE")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
        for (k, v) in &sb.env {
            cmd.env(k, v);
        }
        let out = cmd
            .output_timed()
            .unwrap_or_else(|e| panic!("`{program}` must be installed for these tests: {e}"));
        assert_eq!(
            out.code,
            Some(0),
            "{program} {args:?}\n{}\n{}",
            out.stdout,
            out.stderr
        );
        out.stdout
    };
    run(
        "aws",
        &[
            "eks",
            "update-kubeconfig",
            "--name",
            cluster,
            "--kubeconfig",
            &kubeconfig,
        ],
    );
    let cache = format!("--cache-dir={}", dir.join("cache").display());
    let mut all = vec![cache.as_str(), "--kubeconfig", &kubeconfig, "get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&run("kubectl", &all)).expect("kubectl prints JSON")
}

/// Writes by the tool to blue's Kubernetes API (by `cluster`), other than the run's own
/// Backup and its Lease.
fn blue_kube_writes(sb: &External) -> Vec<Value> {
    sb.writes_since(0)
        .into_iter()
        .filter(|r| r["service"] == "kubernetes" && r["cluster"] == "demo")
        .filter(|r| {
            let op = r["operation"].as_str().unwrap_or("");
            !(op.contains("/backups") || op.contains("/leases"))
        })
        .collect()
}

#[track_caller]
fn exits(out: &Output, code: i32) {
    assert_eq!(
        out.code,
        Some(code),
        "--- stdout\n{}\n--- stderr\n{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn green_is_built_filled_checked_and_tested_while_blue_is_only_read() {
    let sb = scenario("blue-green.yaml", "");
    let wf = workflow(&sb);
    let out = sb.run(&wf, &[]);
    exits(&out, 0);
    let green = green_name(&sb);

    // The restored workloads run on green, as green's own API server says.
    let deployments = kubectl_get(&sb, &green, &["deployments", "-n", "shop"]);
    let items = deployments["items"].as_array().expect("items");
    for name in ["web", "api"] {
        let d = items
            .iter()
            .find(|d| d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("Deployment shop/{name} is not on green: {deployments}"));
        assert_eq!(
            d["status"]["availableReplicas"], d["spec"]["replicas"],
            "shop/{name} is not available on green: {d}"
        );
    }

    // Green reads blue's bucket through a read-only location; blue's own is as it was.
    let locations = kubectl_get(&sb, &green, &["backupstoragelocations", "-n", "velero"]);
    let attached = locations["items"]
        .as_array()
        .and_then(|l| {
            l.iter()
                .find(|l| l["metadata"]["name"] == "eks-upgrade-blue")
        })
        .unwrap_or_else(|| panic!("no location on green: {locations}"));
    assert_eq!(attached["spec"]["accessMode"], "ReadOnly", "{attached}");
    assert_eq!(attached["status"]["phase"], "Available", "{attached}");
    let blue = kubectl_get(&sb, "demo", &["backupstoragelocations", "-n", "velero"]);
    let names: Vec<&str> = blue["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|l| l["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["default"], "blue got another location: {blue}");
    assert_eq!(blue["items"][0]["spec"]["accessMode"], "ReadWrite");
    let writes = blue_kube_writes(&sb);
    assert!(
        writes.is_empty(),
        "the run wrote to blue beyond its backup and lease: {writes:#?}"
    );

    // The synced Backup and the Job's logs are in the journal, for the report.
    let attach = step(&sb, "attach");
    assert_eq!(attach["facts"]["location"]["name"], "eks-upgrade-blue");
    assert!(attach["facts"]["synced"]["uid"].is_string(), "{attach}");
    let compat = step(&sb, "compat");
    let result = &compat["facts"]["jobResult"];
    assert_eq!(result["succeeded"], true, "{compat}");
    let pods = result["pods"].as_array().expect("pods");
    assert!(!pods.is_empty(), "{compat}");
    assert!(
        pods.iter()
            .all(|p| p["logs"].as_str().is_some_and(|l| l.contains("busybox"))),
        "the pod logs name the image: {compat}"
    );
    let health = step(&sb, "green-health");
    assert_eq!(health["status"], "succeeded", "{health}");
    // Nothing moved DNS.
    assert_eq!(sb.count("route53", "ChangeResourceRecordSets"), 0);
}

#[test]
fn a_partially_failed_restore_into_green_stops_before_traffic_with_exit_3() {
    let sb = scenario("blue-green-restore-partial.yaml", "");
    let wf = workflow(&sb);
    let out = sb.run(&wf, &[]);
    exits(&out, 3);
    let green = green_name(&sb);

    let restore = step(&sb, "restore");
    assert_eq!(restore["status"], "failed", "{restore}");
    let error = restore["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("PartiallyFailed") && error.contains("namespace `shop`"),
        "the failure names the namespace whose items failed: {error}"
    );
    assert!(
        !error.contains("namespace `payments`"),
        "only the failed namespaces are named: {error}"
    );
    assert!(
        out.stderr.contains("no traffic moved") && out.stderr.contains("namespace `shop`"),
        "{}",
        out.stderr
    );
    // Nothing after the restore ran: no health check on green, no test Job.
    let journal = sb.journal();
    for id in ["green-health", "compat"] {
        let ran = journal["steps"].as_array().is_some_and(|s| {
            s.iter()
                .any(|s| s["key"]["id"] == id && s["status"] != "skipped")
        });
        assert!(!ran, "`{id}` ran after the failed restore: {journal}");
    }
    let jobs: Vec<Value> = sb
        .writes_since(0)
        .into_iter()
        .filter(|r| r["operation"].as_str().is_some_and(|o| o.contains("/jobs")))
        .collect();
    assert!(jobs.is_empty(), "a Job was created: {jobs:#?}");

    // No DNS change, green kept, blue only read.
    assert_eq!(sb.count("route53", "ChangeResourceRecordSets"), 0);
    assert_eq!(sb.count("eks", "DeleteCluster"), 0, "green was deleted");
    let clusters = crate::e2e::upgrade::aws(&sb, "eks list-clusters");
    assert!(
        crate::e2e::upgrade::strings(&clusters["clusters"]).contains(&green),
        "green is kept: {clusters}"
    );
    let writes = blue_kube_writes(&sb);
    assert!(writes.is_empty(), "the run wrote to blue: {writes:#?}");
}

#[test]
fn a_failing_test_job_on_green_stops_before_traffic_with_its_reason() {
    let sb = scenario(
        "blue-green.yaml",
        "  newClusters:\n    faults:\n      jobsFail: true\n",
    );
    let wf = workflow(&sb);
    let out = sb.run(&wf, &[]);
    exits(&out, 3);
    let compat = step(&sb, "compat");
    assert_eq!(compat["status"], "failed", "{compat}");
    let error = compat["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("BackoffLimitExceeded") && error.contains("log:"),
        "the failure gives the Job's reason and the end of its log: {error}"
    );
    let result = &compat["facts"]["jobResult"];
    assert_eq!(result["succeeded"], false, "{compat}");
    // backoffLimit 1: the first pod and one retry.
    assert_eq!(result["pods"].as_array().map(Vec::len), Some(2), "{compat}");
    assert!(out.stderr.contains("no traffic moved"), "{}", out.stderr);
    assert_eq!(sb.count("route53", "ChangeResourceRecordSets"), 0);
}
