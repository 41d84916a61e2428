//! Free IP addresses before an upgrade, end to end: EC2 `DescribeSubnets` through the real
//! `aws-sdk-ec2` client against the sandbox's EC2, for the subnets EKS names.

use serde_json::Value;

use crate::checks::{check, findings};
use crate::common::repo;
use crate::e2e::External;

fn text(f: &Value, key: &str) -> String {
    f[key].as_str().unwrap_or("").to_string()
}

#[test]
fn a_cluster_subnet_with_3_free_addresses_is_a_preflight_error() {
    let sb = External::from_example("subnet-full.yaml");
    let (code, report, stderr) = check(&sb, "workflows/in-place.yaml", "1.34");
    assert_eq!(code, Some(3), "{stderr}");
    let full = findings(&report, "EKS013");
    assert_eq!(full.len(), 1, "{report}");
    assert_eq!(full[0]["severity"], "error");
    assert_eq!(full[0]["object"], "Subnet subnet-0a1b2c3d4e5f60722");
    let message = text(full[0], "message");
    assert!(
        message.contains("has 3 free IP addresses") && message.contains("us-east-1b"),
        "{message}"
    );
    assert!(
        text(full[0], "remedy").contains("update-cluster-config"),
        "{}",
        full[0]
    );
    // The node group shares the cluster's subnets, 7,885 free between them: no surge warning.
    assert!(findings(&report, "EKS014").is_empty(), "{report}");
    assert!(sb.count("ec2", "DescribeSubnets") >= 1);
}

#[test]
fn run_stops_with_exit_3_before_any_change_when_a_subnet_is_full() {
    let sb = External::from_example("subnet-full.yaml");
    let wf = repo().join("workflows/in-place.yaml");
    let out = sb.run(&wf, &[]).code(3);
    assert!(
        out.stderr.contains("EKS013") && out.stderr.contains("subnet-0a1b2c3d4e5f60722"),
        "{}",
        out.stderr
    );
    let record = sb.requests();
    let eks_writes: Vec<&Value> = record
        .iter()
        .filter(|r| {
            r["service"] == "eks"
                && r["operation"]
                    .as_str()
                    .is_some_and(|o| o.starts_with("Update"))
        })
        .collect();
    assert!(
        eks_writes.is_empty(),
        "no EKS update was asked for: {eks_writes:?}"
    );
    assert_eq!(
        sb.count(
            "kubernetes",
            "POST /apis/velero.io/v1/namespaces/velero/backups"
        ),
        0,
        "no backup was started"
    );
    assert!(
        record
            .iter()
            .any(|r| r["service"] == "ec2" && r["operation"] == "DescribeSubnets"),
        "the subnets were read"
    );
    assert_eq!(sb.cluster_version("demo"), "1.33");
}

#[test]
fn a_node_group_without_room_for_its_surge_is_a_warning() {
    let sb = External::from_example("nodegroup-subnets-tight.yaml");
    let (code, report, stderr) = check(&sb, "workflows/in-place.yaml", "1.34");
    assert_eq!(
        code,
        Some(0),
        "a warning does not stop `failOn: error`: {stderr}"
    );
    assert!(findings(&report, "EKS013").is_empty(), "{report}");
    let tight = findings(&report, "EKS014");
    assert_eq!(tight.len(), 1, "only `general` is short: {report}");
    assert_eq!(tight[0]["severity"], "warning");
    assert_eq!(tight[0]["object"], "Nodegroup general");
    let message = text(tight[0], "message");
    assert!(
        message.contains("up to 4 nodes")
            && message.contains("subnet-0c0ffee0000000a11 12, subnet-0c0ffee0000000b12 9"),
        "{message}"
    );
}

#[test]
fn without_ec2_access_the_check_warns_and_the_run_may_go_on() {
    // EC2 refuses every DescribeSubnets (as without the IAM permission the SDK gets an error).
    let text = std::fs::read_to_string(repo().join("examples/sandbox/subnet-full.yaml"))
        .expect("scenario")
        .replace(
            "  workloads:",
            "  faults:\n    api:\n      - { service: ec2, operation: DescribeSubnets, fault: internal, count: 100 }\n  workloads:",
        );
    let sb = External::start(&text);
    let (code, report, stderr) = check(&sb, "workflows/in-place.yaml", "1.34");
    assert_eq!(code, Some(0), "{stderr}");
    let unknown = findings(&report, "EKS013");
    assert_eq!(unknown.len(), 1, "{report}");
    assert_eq!(unknown[0]["severity"], "warning");
    assert!(
        text_of(unknown[0]).contains("InternalError")
            && unknown[0]["remedy"]
                .as_str()
                .unwrap_or("")
                .contains("ec2:DescribeSubnets"),
        "{}",
        unknown[0]
    );
}

fn text_of(f: &Value) -> String {
    text(f, "message")
}
