//! The sandbox's S3 refuses what S3 refuses, checked with the real `aws s3api`: a request to a
//! bucket that does not exist (`NoSuchBucket`, and no bucket appears), a request signed for
//! another region than the bucket's (`AuthorizationHeaderMalformed` with the bucket's region,
//! on which the AWS CLI redirects as it does against S3), and `CreateBucket` without the
//! location constraint its region needs. The tool's own S3 client reports the same refusals in
//! one line.

use std::process::Command;

use crate::common::{Output, Test, TestSandbox, Timed};
use crate::inputs::assert_no_debug;

const SCENARIO: &str = r#"
apiVersion: eks-upgrade/v1
kind: Scenario
metadata: { name: buckets }
spec:
  cluster: { name: demo, region: us-east-1, version: "1.33" }
  nodegroups: [ { name: general, nodes: 1 } ]
  buckets:
    - { name: upgrade-state }
    - { name: eu-state, region: eu-west-1 }
"#;

/// `aws s3api ARGS` against the sandbox (region `us-east-1` unless `ARGS` says otherwise).
fn s3api(sb: &TestSandbox, args: &[&str]) -> Output {
    Command::new("aws")
        .arg("s3api")
        .args(args)
        .envs(sb.env())
        .output_timed()
        .expect("the aws CLI is installed")
}

/// The statuses the sandbox answered `operation` with, in order.
fn statuses(sb: &TestSandbox, operation: &str) -> Vec<u16> {
    sb.sandbox
        .world
        .requests
        .snapshot()
        .iter()
        .filter(|r| r.service == "s3" && r.operation == operation)
        .map(|r| r.status)
        .collect()
}

#[test]
fn a_put_to_a_bucket_that_does_not_exist_is_refused_and_creates_nothing() {
    let sb = TestSandbox::start(Some(SCENARIO));
    let body = sb.sandbox.dir.join("body.txt");
    std::fs::write(&body, "journal").expect("body");
    let body = body.to_str().unwrap_or("");
    let out = s3api(
        &sb,
        &[
            "put-object",
            "--bucket",
            "no-such-bucket",
            "--key",
            "k",
            "--body",
            body,
        ],
    );
    assert_ne!(out.code, Some(0), "{}", out.stdout);
    assert!(out.stderr.contains("NoSuchBucket"), "{}", out.stderr);
    assert_eq!(statuses(&sb, "PUT /no-such-bucket/k"), [404]);
    let head = s3api(&sb, &["head-bucket", "--bucket", "no-such-bucket"]);
    assert_ne!(
        head.code,
        Some(0),
        "the PUT made the bucket: {}",
        head.stdout
    );
    // The scenario's buckets are there, in their regions.
    let ok = s3api(
        &sb,
        &[
            "put-object",
            "--bucket",
            "upgrade-state",
            "--key",
            "k",
            "--body",
            body,
        ],
    );
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    let located = s3api(&sb, &["get-bucket-location", "--bucket", "upgrade-state"]);
    assert_eq!(located.code, Some(0), "{}", located.stderr);
}

#[test]
fn a_request_signed_for_the_wrong_region_is_refused_naming_the_bucket_region() {
    let sb = TestSandbox::start(Some(SCENARIO));
    let body = sb.sandbox.dir.join("body.txt");
    std::fs::write(&body, "journal").expect("body");
    let body = body.to_str().unwrap_or("");
    // Signed for us-east-1, the bucket is in eu-west-1: S3 answers 400
    // AuthorizationHeaderMalformed with `<Region>`, and the AWS CLI signs again for that region.
    let out = s3api(
        &sb,
        &[
            "put-object",
            "--bucket",
            "eu-state",
            "--key",
            "k",
            "--body",
            body,
            "--debug",
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(statuses(&sb, "PUT /eu-state/k"), [400, 200]);
    assert!(
        out.stderr.contains("AuthorizationHeaderMalformed")
            && out.stderr.contains("is in region eu-west-1"),
        "the CLI did not redirect on the sandbox's answer:\n{}",
        out.stderr
            .lines()
            .filter(|l| l.contains("region") || l.contains("Error"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // HEAD has no body: the region comes in `x-amz-bucket-region`, which the CLI also follows.
    let head = s3api(&sb, &["head-bucket", "--bucket", "eu-state"]);
    assert_eq!(head.code, Some(0), "{}", head.stderr);
    assert_eq!(statuses(&sb, "HEAD /eu-state"), [400, 200]);

    // The tool's S3 client (the Rust SDK) does not redirect: it says what S3 said, in one line.
    let env = sb.env();
    let out = Test::new()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(["runs", "--state", "s3://eu-state/journals"])
        .run()
        .code(2);
    assert_no_debug(&out);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stderr);
    assert!(
        lines[0].contains("AuthorizationHeaderMalformed")
            && lines[0].contains("expecting 'eu-west-1'"),
        "{}",
        out.stderr
    );
    assert!(
        lines[1].starts_with("hint: the bucket is in another region"),
        "{}",
        out.stderr
    );
}

#[test]
fn create_bucket_needs_the_location_constraint_of_its_region() {
    let sb = TestSandbox::start(Some(SCENARIO));
    let refused = s3api(
        &sb,
        &[
            "create-bucket",
            "--bucket",
            "new-eu",
            "--region",
            "eu-west-1",
        ],
    );
    assert_ne!(refused.code, Some(0));
    assert!(
        refused
            .stderr
            .contains("IllegalLocationConstraintException"),
        "{}",
        refused.stderr
    );
    let explicit_default = s3api(
        &sb,
        &[
            "create-bucket",
            "--bucket",
            "new-us",
            "--create-bucket-configuration",
            "LocationConstraint=us-east-1",
        ],
    );
    assert!(
        explicit_default
            .stderr
            .contains("InvalidLocationConstraint"),
        "{}",
        explicit_default.stderr
    );
    let made = s3api(
        &sb,
        &[
            "create-bucket",
            "--bucket",
            "new-eu",
            "--region",
            "eu-west-1",
            "--create-bucket-configuration",
            "LocationConstraint=eu-west-1",
        ],
    );
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    // The new bucket is in eu-west-1: a request signed for us-east-1 is refused first.
    s3api(&sb, &["list-objects-v2", "--bucket", "new-eu"]);
    assert_eq!(statuses(&sb, "GET /new-eu"), [400, 200]);
}
