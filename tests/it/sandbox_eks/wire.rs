//! Wire fidelity: the raw HTTP form no client normalises, and the real `aws` CLI.

use std::process::Command;

use serde_json::Value;

use super::{fast, recorded};
use crate::common::{TestSandbox, Timed};

/// Reads a raw HTTP response from the emulator, to see the wire form no client normalises.
fn raw_get(endpoint: &str, path: &str) -> (String, Value) {
    use std::io::{Read, Write};
    let addr = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read");
    let (head, body) = text.split_once("\r\n\r\n").expect("http response");
    (
        head.to_ascii_lowercase(),
        serde_json::from_str(body).expect("json body"),
    )
}

#[test]
fn wire_form_uses_epoch_numbers_and_error_headers() {
    let sb = TestSandbox::start(Some(&fast("", "")));
    let endpoint = sb.sandbox.endpoints.eks.clone();
    let (head, body) = raw_get(&endpoint, "/clusters/demo");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("x-amzn-requestid:"));
    assert!(head.contains("content-type: application/json"));
    assert!(body["cluster"]["createdAt"].is_number(), "{body}");
    assert!(
        !body.to_string().contains("null"),
        "no null members: {body}"
    );

    let (head, body) = raw_get(&endpoint, "/clusters/nope");
    assert!(head.starts_with("http/1.1 404"), "{head}");
    assert!(head.contains("x-amzn-errortype: resourcenotfoundexception"));
    assert_eq!(body["__type"], "ResourceNotFoundException");
    assert_eq!(body["message"], "No cluster found for name: nope.");
    assert_eq!(body["clusterName"], "nope");

    let (head, body) = raw_get(&endpoint, "/clusters/demo/identity-provider-configs");
    assert!(head.starts_with("http/1.1 404"), "{head}");
    assert_eq!(body["__type"], "UnknownOperationException");
    assert_eq!(
        recorded(&sb, "GET /clusters/demo/identity-provider-configs"),
        vec![(404, "not emulated".to_string())]
    );
    // ListFargateProfiles is emulated: the scenario's profiles (none here).
    let (head, body) = raw_get(&endpoint, "/clusters/demo/fargate-profiles");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body["fargateProfileNames"], serde_json::json!([]));

    let (_, body) = raw_get(&endpoint, "/cluster-versions");
    for v in body["clusterVersions"].as_array().expect("list") {
        assert!(v["releaseDate"].is_number() && v["endOfStandardSupportDate"].is_number());
    }
}

/// Runs the real AWS CLI against the sandbox and parses its JSON output. A missing CLI fails
/// the test: these are the fidelity checks.
fn aws(sb: &TestSandbox, args: &[&str]) -> Value {
    let output = Command::new("aws")
        .args(["eks"])
        .args(args)
        .args(["--output", "json"])
        .envs(sb.env())
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output_timed()
        .expect("the `aws` CLI must be installed for the EKS fidelity tests");
    assert!(
        output.code == Some(0),
        "aws eks {args:?} failed:\n{}",
        output.stderr
    );
    serde_json::from_str(&output.stdout).expect("aws prints JSON")
}

#[test]
fn aws_cli_describe_cluster_and_list_nodegroups() {
    let sb = TestSandbox::start(None);
    let out = aws(&sb, &["describe-cluster", "--name", "demo"]);
    let cluster = &out["cluster"];
    assert_eq!(cluster["name"], "demo");
    assert_eq!(cluster["version"], "1.33");
    assert_eq!(cluster["status"], "ACTIVE");
    assert_eq!(
        cluster["endpoint"],
        sb.sandbox.endpoints.kubernetes.as_str()
    );
    assert_eq!(cluster["upgradePolicy"]["supportType"], "EXTENDED");
    let out = aws(&sb, &["list-nodegroups", "--cluster-name", "demo"]);
    assert_eq!(out["nodegroups"], serde_json::json!(["general", "system"]));
    // The CLI pages through with its own nextToken handling.
    let out = aws(
        &sb,
        &[
            "list-nodegroups",
            "--cluster-name",
            "demo",
            "--page-size",
            "1",
        ],
    );
    assert_eq!(out["nodegroups"], serde_json::json!(["general", "system"]));
}

#[test]
fn aws_cli_describe_addon_versions() {
    let sb = TestSandbox::start(Some(&fast("", "")));
    let out = aws(
        &sb,
        &[
            "describe-addon-versions",
            "--kubernetes-version",
            "1.33",
            "--addon-name",
            "coredns",
        ],
    );
    let versions = out["addons"][0]["addonVersions"]
        .as_array()
        .expect("versions");
    assert_eq!(versions[0]["addonVersion"], "v1.12.4-eksbuild.1");
    assert_eq!(versions[0]["compatibilities"][0]["clusterVersion"], "1.33");
    assert_eq!(versions[0]["compatibilities"][0]["defaultVersion"], true);
    assert_eq!(versions[1]["compatibilities"][0]["defaultVersion"], false);
}

#[test]
fn aws_cli_update_cluster_version_and_describe_update() {
    let sb = TestSandbox::start(Some(&fast("", "")));
    let out = aws(
        &sb,
        &[
            "update-cluster-version",
            "--name",
            "demo",
            "--kubernetes-version",
            "1.34",
        ],
    );
    let update = &out["update"];
    assert_eq!(update["status"], "InProgress");
    assert_eq!(update["type"], "VersionUpdate");
    assert_eq!(
        update["params"][0],
        serde_json::json!({"type": "Version", "value": "1.34"})
    );
    let id = update["id"].as_str().expect("id").to_string();
    let mut status = String::new();
    for _ in 0..100 {
        let out = aws(
            &sb,
            &["describe-update", "--name", "demo", "--update-id", &id],
        );
        status = out["update"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if status != "InProgress" {
            break;
        }
    }
    assert_eq!(status, "Successful");
    let out = aws(&sb, &["describe-cluster", "--name", "demo"]);
    assert_eq!(out["cluster"]["version"], "1.34");
    assert_eq!(
        recorded(&sb, "UpdateClusterVersion"),
        vec![(200, "cluster=demo version=1.34".to_string())]
    );
}
