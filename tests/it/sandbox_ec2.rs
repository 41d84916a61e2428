//! The sandbox's EC2 `DescribeSubnets` against the real `aws ec2 describe-subnets` and the raw
//! wire: the subnets EKS names, free addresses, filters, paging, and EC2's error envelope.

use std::process::Command;

use serde_json::Value;

use crate::common::{TestSandbox, Timed};

/// Seven subnets, so the CLI's smallest page (`--page-size 5`) takes two requests.
const SCENARIO: &str = r#"apiVersion: eks-upgrade/v1
kind: Scenario
metadata: { name: subnets }
spec:
  cluster: { name: demo, region: us-east-1, version: "1.33" }
  subnets:
    - { id: subnet-0aaaaaaaaaaaaaa01, availabilityZone: us-east-1a, freeIps: 3 }
    - { id: subnet-0aaaaaaaaaaaaaa02, availabilityZone: us-east-1b, cidrBlock: 10.1.32.0/20 }
    - { id: subnet-0aaaaaaaaaaaaaa03, availabilityZone: us-east-1c }
    - { id: subnet-0aaaaaaaaaaaaaa04, freeIps: 12, cluster: false }
    - { id: subnet-0aaaaaaaaaaaaaa05, freeIps: 9, cluster: false }
    - { id: subnet-0aaaaaaaaaaaaaa06, cluster: false }
    - { id: subnet-0aaaaaaaaaaaaaa07, cluster: false }
  nodegroups:
    - { name: general, nodes: 2, subnets: [subnet-0aaaaaaaaaaaaaa04, subnet-0aaaaaaaaaaaaaa05] }
    - { name: system, nodes: 1, maxUnavailablePercentage: 50 }
"#;

/// Runs `aws ec2 ARGS` against the sandbox: (exit code, stdout, stderr).
fn aws(
    sb: &TestSandbox,
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> (Option<i32>, String, String) {
    let out = Command::new("aws")
        .arg("ec2")
        .args(args)
        .args(["--output", "json"])
        .envs(sb.env())
        .envs(extra_env.iter().copied())
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output_timed()
        .expect("the `aws` CLI must be installed for the EC2 fidelity tests");
    (out.code, out.stdout, out.stderr)
}

fn describe(sb: &TestSandbox, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["describe-subnets"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = aws(sb, &all, &[]);
    assert_eq!(code, Some(0), "aws ec2 {all:?}:\n{stderr}");
    let out: Value = serde_json::from_str(&stdout).expect("aws prints JSON");
    out["Subnets"].as_array().expect("Subnets").clone()
}

fn ids(subnets: &[Value]) -> Vec<&str> {
    subnets
        .iter()
        .map(|s| s["SubnetId"].as_str().unwrap_or(""))
        .collect()
}

#[test]
fn aws_cli_describes_the_subnets_eks_names() {
    let sb = TestSandbox::start(Some(SCENARIO));
    let all = describe(&sb, &[]);
    assert_eq!(all.len(), 7);
    let first = &all[0];
    assert_eq!(first["SubnetId"], "subnet-0aaaaaaaaaaaaaa01");
    assert_eq!(first["AvailableIpAddressCount"], 3);
    assert_eq!(first["AvailabilityZone"], "us-east-1a");
    assert_eq!(first["AvailabilityZoneId"], "use1-az1");
    assert_eq!(first["State"], "available");
    assert_eq!(first["OwnerId"], "111122223333");
    assert!(
        first["VpcId"]
            .as_str()
            .is_some_and(|v| v.starts_with("vpc-")),
        "{first}"
    );
    assert_eq!(all[1]["CidrBlock"], "10.1.32.0/20");
    // Zones default by position, free addresses to 8000.
    assert_eq!(all[3]["AvailabilityZone"], "us-east-1d");
    assert_eq!(all[2]["AvailableIpAddressCount"], 8000);

    // The ids EKS reports are the ones EC2 describes.
    let eks = Command::new("aws")
        .args([
            "eks",
            "describe-cluster",
            "--name",
            "demo",
            "--output",
            "json",
        ])
        .envs(sb.env())
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output_timed()
        .expect("aws");
    let cluster: Value = serde_json::from_str(&eks.stdout).expect("JSON");
    let vpc = &cluster["cluster"]["resourcesVpcConfig"];
    assert_eq!(
        vpc["subnetIds"],
        serde_json::json!([
            "subnet-0aaaaaaaaaaaaaa01",
            "subnet-0aaaaaaaaaaaaaa02",
            "subnet-0aaaaaaaaaaaaaa03"
        ])
    );
    assert_eq!(vpc["vpcId"], first["VpcId"]);
    let ng = Command::new("aws")
        .args([
            "eks",
            "describe-nodegroup",
            "--cluster-name",
            "demo",
            "--nodegroup-name",
            "general",
            "--output",
            "json",
        ])
        .envs(sb.env())
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output_timed()
        .expect("aws");
    let ng: Value = serde_json::from_str(&ng.stdout).expect("JSON");
    assert_eq!(
        ng["nodegroup"]["subnets"],
        serde_json::json!(["subnet-0aaaaaaaaaaaaaa04", "subnet-0aaaaaaaaaaaaaa05"])
    );
    let system = Command::new("aws")
        .args([
            "eks",
            "describe-nodegroup",
            "--cluster-name",
            "demo",
            "--nodegroup-name",
            "system",
            "--output",
            "json",
        ])
        .envs(sb.env())
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output_timed()
        .expect("aws");
    let system: Value = serde_json::from_str(&system.stdout).expect("JSON");
    assert_eq!(
        system["nodegroup"]["updateConfig"],
        serde_json::json!({ "maxUnavailablePercentage": 50 })
    );
}

#[test]
fn aws_cli_filters_names_and_pages() {
    let sb = TestSandbox::start(Some(SCENARIO));
    let named = describe(
        &sb,
        &[
            "--subnet-ids",
            "subnet-0aaaaaaaaaaaaaa05",
            "subnet-0aaaaaaaaaaaaaa04",
        ],
    );
    assert_eq!(
        ids(&named),
        ["subnet-0aaaaaaaaaaaaaa04", "subnet-0aaaaaaaaaaaaaa05"]
    );
    let zone = describe(
        &sb,
        &[
            "--filters",
            "Name=availability-zone,Values=us-east-1a,us-east-1b",
        ],
    );
    assert_eq!(
        ids(&zone),
        [
            "subnet-0aaaaaaaaaaaaaa01",
            "subnet-0aaaaaaaaaaaaaa02",
            "subnet-0aaaaaaaaaaaaaa07"
        ]
    );
    let wildcard = describe(
        &sb,
        &[
            "--filters",
            "Name=subnet-id,Values=subnet-0aaaaaaaaaaaaaa0?",
        ],
    );
    assert_eq!(wildcard.len(), 7);
    // The CLI follows NextToken across pages of five.
    let served = || {
        sb.sandbox
            .world
            .requests
            .snapshot()
            .iter()
            .filter(|r| r.service == "ec2" && r.operation == "DescribeSubnets")
            .count()
    };
    let before = served();
    let paged = describe(&sb, &["--page-size", "5"]);
    assert_eq!(paged.len(), 7);
    assert_eq!(served() - before, 2, "two pages, two requests");
}

#[test]
fn aws_cli_gets_ec2s_errors() {
    let sb = TestSandbox::start(Some(SCENARIO));
    let (code, _, stderr) = aws(
        &sb,
        &[
            "describe-subnets",
            "--subnet-ids",
            "subnet-0aaaaaaaaaaaaaa01",
            "subnet-0000000000000dead",
        ],
        &[],
    );
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("(InvalidSubnetID.NotFound)")
            && stderr.contains("The subnet ID 'subnet-0000000000000dead' does not exist"),
        "{stderr}"
    );
    let (_, _, stderr) = aws(&sb, &["describe-subnets", "--subnet-ids", "subnet-zz"], &[]);
    assert!(stderr.contains("(InvalidSubnetID.Malformed)"), "{stderr}");
    let (_, _, stderr) = aws(
        &sb,
        &["describe-subnets", "--filters", "Name=colour,Values=blue"],
        &[],
    );
    assert!(
        stderr.contains("(InvalidParameterValue)")
            && stderr.contains("The filter 'colour' is invalid"),
        "{stderr}"
    );
    // Signed for another region: EC2's AuthFailure.
    let (code, _, stderr) = aws(&sb, &["describe-subnets", "--region", "eu-west-1"], &[]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("(AuthFailure)"), "{stderr}");
    let (_, _, stderr) = aws(&sb, &["describe-vpcs"], &[]);
    assert!(stderr.contains("(InvalidAction)"), "{stderr}");
    let record = sb.sandbox.world.requests.snapshot();
    assert!(
        record.iter().any(|r| r.service == "ec2"
            && r.status == 400
            && r.detail.as_deref() == Some("error=InvalidSubnetID.NotFound")),
        "{record:?}"
    );
}

#[test]
fn errors_travel_in_ec2s_xml_envelope() {
    use std::io::{Read, Write};
    let sb = TestSandbox::start(Some(SCENARIO));
    let addr = sb
        .sandbox
        .endpoints
        .ec2
        .trim_start_matches("http://")
        .to_string();
    let body = "Action=DescribeSubnets&Version=2016-11-15&SubnetId.1=subnet-0000000000000beef";
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={}/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00",
        eks_upgrade_sandbox::world::ACCESS_KEY
    );
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read");
    let (head, xml) = text.split_once("\r\n\r\n").expect("http response");
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 400"), "{head}");
    assert!(head.contains("content-type: text/xml"), "{head}");
    assert!(
        xml.contains("<Response><Errors><Error><Code>InvalidSubnetID.NotFound</Code><Message>The subnet ID 'subnet-0000000000000beef' does not exist</Message></Error></Errors><RequestID>"),
        "{xml}"
    );
}
