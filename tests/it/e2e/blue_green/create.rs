//! Blue/green end to end: create.
//!
//! Green made beside blue by `createGreen` (or taken by `adoptGreen`) and seen ready by
//! `waitGreen`, checked with the real AWS CLI against the sandbox. The request record, filtered
//! by the cluster each request addressed, proves that blue is only read.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{POLL_TIMEOUT, Timed, poll, repo};
use crate::e2e::External;

/// A blue/green workflow that backs blue up, verifies the backup and then runs `upgrade`
/// (`spec.green` from `green` when given).
fn workflow(dir: &Path, green: Option<&str>, upgrade: &str) -> PathBuf {
    let green = green
        .map(|g| format!("  green: {{ name: {g} }}\n"))
        .unwrap_or_default();
    let text = format!(
        "apiVersion: eks-upgrade/v1
kind: Workflow
metadata:
  name: blue-green-create
spec:
  target: \"1.35\"
{green}  velero: {{ namespace: velero, storageLocation: default }}
  prepare:
    - id: backup
      veleroBackup: {{ excludedNamespaces: [kube-system], timeout: 4h }}
    - id: verify
      verifyBackup: {{ backup: backup }}
  upgrade:
{upgrade}"
    );
    let path = dir.join("blue-green.yaml");
    std::fs::write(&path, text).expect("write workflow");
    path
}

const CREATE_AND_WAIT: &str = "    - id: green
      createGreen: { timeout: 4h }
    - id: green-ready
      waitGreen: { timeout: 4h }
";

/// The example scenario with slower creates: time for a test to act while green is built.
fn scenario(name: &str, timings: Option<&str>) -> String {
    let text =
        std::fs::read_to_string(repo().join("examples/sandbox").join(name)).expect("scenario");
    match timings {
        Some(t) => text.replace(
            "  speed: 600\n",
            &format!("  speed: 600\n  timings: {{ {t} }}\n"),
        ),
        None => text,
    }
}

/// `aws ARGS` against the sandbox; its stdout, trimmed. Fails the test when the CLI fails.
fn aws(sb: &External, args: &[&str]) -> String {
    let mut cmd = std::process::Command::new("aws");
    cmd.args(args);
    for (k, v) in &sb.env {
        cmd.env(k, v);
    }
    cmd.env("AWS_EC2_METADATA_DISABLED", "true");
    let out = cmd.output_timed().expect("the aws CLI is installed");
    assert!(
        out.code == Some(0),
        "aws {} failed:\n{}",
        args.join(" "),
        out.stderr
    );
    out.stdout.trim().to_string()
}

fn aws_json(sb: &External, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    serde_json::from_str(&aws(sb, &all)).expect("aws JSON")
}

fn names(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn clusters(sb: &External) -> Vec<String> {
    names(&aws_json(sb, &["eks", "list-clusters"])["clusters"])
}

/// Writes on `cluster` from request `from` on: EKS calls other than reads, Kubernetes requests other than
/// reads, by the `cluster` each request addressed.
fn writes_on(sb: &External, cluster: &str, from: usize) -> Vec<Value> {
    sb.writes_since(from)
        .into_iter()
        .filter(|r| r["cluster"] == cluster)
        .filter(|r| r["status"].as_u64().is_some_and(|s| s < 300))
        .collect()
}

/// Blue saw no write but the run's Backup and its Lease.
fn assert_blue_only_read(sb: &External) {
    let other: Vec<Value> = writes_on(sb, "demo", 0)
        .into_iter()
        .filter(|r| {
            let op = r["operation"].as_str().unwrap_or("");
            !(r["service"] == "kubernetes"
                && (op.contains("/apis/velero.io/v1/namespaces/velero/backups")
                    || op.contains("/apis/coordination.k8s.io/v1/namespaces/velero/leases")))
        })
        .collect();
    assert!(
        other.is_empty(),
        "writes on blue besides the Backup and the Lease: {other:#?}"
    );
}

/// Green as EKS describes it: the cluster, its node groups and add-ons, each `ACTIVE`.
fn assert_green_copies_blue(sb: &External, green: &str) {
    let cluster = &aws_json(sb, &["eks", "describe-cluster", "--name", green])["cluster"];
    assert_eq!(cluster["status"], "ACTIVE", "{cluster}");
    assert_eq!(cluster["version"], "1.35", "{cluster}");
    let blue_groups =
        names(&aws_json(sb, &["eks", "list-nodegroups", "--cluster-name", "demo"])["nodegroups"]);
    let green_groups =
        names(&aws_json(sb, &["eks", "list-nodegroups", "--cluster-name", green])["nodegroups"]);
    assert_eq!(green_groups, blue_groups);
    for g in &green_groups {
        let ng = &aws_json(
            sb,
            &[
                "eks",
                "describe-nodegroup",
                "--cluster-name",
                green,
                "--nodegroup-name",
                g,
            ],
        )["nodegroup"];
        assert_eq!(ng["status"], "ACTIVE", "{ng}");
        assert_eq!(ng["version"], "1.35", "{ng}");
    }
    let blue_addons =
        names(&aws_json(sb, &["eks", "list-addons", "--cluster-name", "demo"])["addons"]);
    let green_addons =
        names(&aws_json(sb, &["eks", "list-addons", "--cluster-name", green])["addons"]);
    assert_eq!(green_addons, blue_addons);
    for a in &green_addons {
        let addon = &aws_json(
            sb,
            &[
                "eks",
                "describe-addon",
                "--cluster-name",
                green,
                "--addon-name",
                a,
            ],
        )["addon"];
        assert_eq!(addon["status"], "ACTIVE", "{addon}");
    }
}

#[test]
fn green_creation_failure_leaves_blue_and_dns_untouched_and_exits_3() {
    let sb = External::from_example("blue-green-create-fails.yaml");
    let wf = workflow(sb.dir.path(), None, CREATE_AND_WAIT);
    let out = sb.run(&wf, &[]).code(3);
    assert!(
        out.stderr.contains("blue `demo` and DNS are untouched"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("InsufficientFreeAddresses"),
        "the failure names EKS's health issue: {}",
        out.stderr
    );
    assert_eq!(sb.count("route53", "ChangeResourceRecordSets"), 0);
    assert_eq!(sb.count("eks", "CreateCluster"), 1);
    assert_blue_only_read(&sb);
    let j = sb.journal();
    assert_eq!(
        j["facts"]["green"]["name"], "demo-1-35",
        "recovery knows green: {}",
        j["facts"]
    );
}

#[test]
fn create_green_and_wait_green_build_a_copy_of_blue_at_the_target() {
    let sb = External::from_example("blue-green.yaml");
    let wf = workflow(sb.dir.path(), None, CREATE_AND_WAIT);
    let out = sb.run(&wf, &[]).code(0);
    assert_eq!(sb.count("eks", "CreateCluster"), 1, "{}", out.stderr);
    assert_eq!(clusters(&sb), ["demo", "demo-1-35"]);
    assert_green_copies_blue(&sb, "demo-1-35");
    assert_blue_only_read(&sb);
    let j = sb.journal();
    assert_eq!(j["facts"]["green"]["name"], "demo-1-35");
    assert_eq!(j["facts"]["green"]["version"], "1.35");
    assert_eq!(j["facts"]["green"]["created"], true);
    assert!(
        j["facts"]["green"]["arn"]
            .as_str()
            .is_some_and(|a| a.ends_with("cluster/demo-1-35")),
        "{}",
        j["facts"]
    );
}

#[test]
fn killed_after_create_cluster_resumes_onto_the_same_green() {
    // Slow creates: the kill lands while green is still being built.
    let sb = External::start(&scenario(
        "blue-green.yaml",
        Some("clusterCreate: 60m, nodegroupCreate: 30m"),
    ));
    let wf = workflow(sb.dir.path(), None, CREATE_AND_WAIT);
    let mut run = sb.run_workflow(&wf, &[]).spawn();
    poll("the run to send CreateCluster", POLL_TIMEOUT, || {
        run.check(sb.count("eks", "CreateCluster") == 1)
    });
    run.kill();
    let j = sb.journal();
    let green_step = j["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["key"]["id"] == "green"))
        .cloned()
        .unwrap_or_default();
    assert!(
        green_step["facts"]["greenToken"].is_string(),
        "the token is journaled before CreateCluster: {green_step}"
    );
    sb.eks_upgrade(&["resume", "--yes", "--time-scale", "600", "--ignore-window"])
        .run()
        .code(0);
    assert_eq!(clusters(&sb), ["demo", "demo-1-35"], "still one green");
    assert!(
        sb.count("eks", "CreateCluster") <= 2,
        "a repeated CreateCluster may only be the same token's"
    );
    assert_green_copies_blue(&sb, "demo-1-35");
    assert_blue_only_read(&sb);
}

#[test]
fn adopt_green_takes_a_cluster_made_with_the_aws_cli() {
    let sb = External::from_example("blue-green.yaml");
    // Green made as infrastructure code would: blue's role and subnets, one node group.
    let blue = &aws_json(&sb, &["eks", "describe-cluster", "--name", "demo"])["cluster"];
    let role = blue["roleArn"].as_str().expect("blue's role").to_string();
    let subnets = names(&blue["resourcesVpcConfig"]["subnetIds"]);
    aws(
        &sb,
        &[
            "eks",
            "create-cluster",
            "--name",
            "demo-green",
            "--kubernetes-version",
            "1.35",
            "--role-arn",
            &role,
            "--resources-vpc-config",
            &format!("subnetIds={}", subnets.join(",")),
        ],
    );
    let status = |args: &[&str], field: &str| -> String {
        aws_json(&sb, args)[field]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    poll("green to be ACTIVE", POLL_TIMEOUT, || {
        status(
            &["eks", "describe-cluster", "--name", "demo-green"],
            "cluster",
        ) == "ACTIVE"
    });
    let general = &aws_json(
        &sb,
        &[
            "eks",
            "describe-nodegroup",
            "--cluster-name",
            "demo",
            "--nodegroup-name",
            "general",
        ],
    )["nodegroup"];
    let mut args: Vec<String> = [
        "eks",
        "create-nodegroup",
        "--cluster-name",
        "demo-green",
        "--nodegroup-name",
        "general",
        "--node-role",
        general["nodeRole"].as_str().expect("node role"),
        "--scaling-config",
        "minSize=1,maxSize=3,desiredSize=2",
        "--subnets",
    ]
    .map(String::from)
    .to_vec();
    args.extend(subnets.iter().cloned());
    aws(&sb, &args.iter().map(String::as_str).collect::<Vec<_>>());
    poll("green's node group to be ACTIVE", POLL_TIMEOUT, || {
        status(
            &[
                "eks",
                "describe-nodegroup",
                "--cluster-name",
                "demo-green",
                "--nodegroup-name",
                "general",
            ],
            "nodegroup",
        ) == "ACTIVE"
    });
    let made = sb.count("eks", "CreateCluster");
    let before = sb.requests().len();
    let wf = workflow(
        sb.dir.path(),
        Some("demo-green"),
        "    - id: green
      adoptGreen: {}
    - id: green-ready
      waitGreen: { timeout: 4h }
",
    );
    let out = sb.run(&wf, &[]).code(0);
    assert_eq!(
        sb.count("eks", "CreateCluster"),
        made,
        "the tool created nothing: {}",
        out.stderr
    );
    // The run's Lease aside (taken on green once it is ready), adopting changes nothing there.
    let on_green: Vec<Value> = writes_on(&sb, "demo-green", before)
        .into_iter()
        .filter(|r| !r["operation"].as_str().unwrap_or("").contains("/leases"))
        .collect();
    assert_eq!(
        on_green,
        Vec::<Value>::new(),
        "adopting changes nothing on green"
    );
    let j = sb.journal();
    assert_eq!(j["facts"]["green"]["name"], "demo-green");
    assert_eq!(j["facts"]["green"]["created"], false);
    assert_blue_only_read(&sb);
}

#[test]
fn adopt_green_without_a_named_green_is_refused_at_its_location() {
    let text = "apiVersion: eks-upgrade/v1
kind: Workflow
metadata:
  name: adopt
spec:
  cluster: { name: demo, region: us-east-1 }
  target: \"1.35\"
  prepare:
    - id: backup
      veleroBackup: {}
    - id: verify
      verifyBackup: { backup: backup }
  upgrade:
    - id: green
      adoptGreen: {}
    - id: green-ready
      waitGreen: {}
";
    let out = crate::common::Test::new()
        .file("adopt.yaml", text)
        .args(["validate", "adopt.yaml"])
        .run()
        .no_panic()
        .code(2);
    assert!(out.stderr.contains("adopt.yaml:15:"), "{}", out.stderr);
    insta::assert_snapshot!(out.stderr);
}
