//! The real `aws` CLI through a version rollback: rollback-readiness insights, the refusal,
//! node groups and add-ons moved back, the accepted rollback and its `VersionRollback` update,
//! and CancelUpdate on Auto Mode. The CLI parses every response against the botocore model.
//!
//! The installed botocore (1.43.11) predates rollback; the enums it lacks do not matter to it
//! (it checks no enum values), but `cancel-update` and `--rollback-config` do not exist there.
//! For those two the CLI runs with `AWS_DATA_PATH` pointing at the installed EKS model plus the
//! documented rollback additions (eks-api.md §2.1), written out by `model_with_rollback`.

use std::io::Read;
use std::process::{Command, Output};

use serde_json::{Value, json};

use super::{ADDONS_AT_N, upgraded};
use crate::common::TestSandbox;

fn run(sb: &TestSandbox, data_path: Option<&std::path::Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new("aws");
    cmd.args(["eks"])
        .args(args)
        .args(["--output", "json"])
        .envs(sb.env())
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    if let Some(p) = data_path {
        cmd.env("AWS_DATA_PATH", p);
    }
    cmd.output()
        .expect("the `aws` CLI must be installed for the EKS fidelity tests")
}

/// Runs the CLI and parses its JSON output; the command must succeed.
fn aws(sb: &TestSandbox, data_path: Option<&std::path::Path>, args: &[&str]) -> Value {
    let out = run(sb, data_path, args);
    assert!(
        out.status.success(),
        "aws eks {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("aws prints JSON")
}

/// Runs the CLI expecting a service error; returns what it printed on stderr.
fn aws_refused(sb: &TestSandbox, args: &[&str]) -> String {
    let out = run(sb, None, args);
    assert!(!out.status.success(), "aws eks {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Polls `describe-update` until the update leaves InProgress.
fn until_done(sb: &TestSandbox, data_path: Option<&std::path::Path>, args: &[&str]) -> Value {
    for _ in 0..100 {
        let out = aws(sb, data_path, args);
        if out["update"]["status"] != "InProgress" {
            return out["update"].clone();
        }
    }
    panic!("aws eks {args:?} stayed InProgress");
}

/// The installed botocore EKS model with the rollback additions the newer model documents:
/// CancelUpdate, `rollbackConfig`, `Update.cancellation` and the new enum values.
fn model_with_rollback() -> tempfile::TempDir {
    let out = Command::new("python3")
        .args([
            "-c",
            "import botocore,os;print(os.path.dirname(botocore.__file__))",
        ])
        .output()
        .expect("python3 with botocore (the aws CLI's)");
    let root = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let gz = std::fs::read(format!("{root}/data/eks/2017-11-01/service-2.json.gz"))
        .expect("the installed EKS model");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .expect("gunzip");
    let mut model: Value = serde_json::from_str(&text).expect("model JSON");
    let errors: Vec<Value> = [
        "InvalidParameterException",
        "ClientException",
        "ServerException",
        "ResourceInUseException",
        "ResourceNotFoundException",
        "InvalidRequestException",
        "ThrottlingException",
        "InvalidStateException",
    ]
    .iter()
    .map(|e| json!({ "shape": e }))
    .collect();
    model["operations"]["CancelUpdate"] = json!({
        "name": "CancelUpdate",
        "http": { "method": "POST", "requestUri": "/clusters/{name}/updates/{updateId}/cancel-update" },
        "input": { "shape": "CancelUpdateRequest" },
        "output": { "shape": "CancelUpdateResponse" },
        "errors": errors,
    });
    let shapes = &mut model["shapes"];
    shapes["CancelUpdateRequest"] = json!({
        "type": "structure",
        "required": ["name", "updateId"],
        "members": {
            "name": { "shape": "String", "location": "uri", "locationName": "name" },
            "updateId": { "shape": "String", "location": "uri", "locationName": "updateId" },
            "clientRequestToken": { "shape": "String", "idempotencyToken": true },
        },
    });
    shapes["CancelUpdateResponse"] = json!({
        "type": "structure",
        "members": { "update": { "shape": "Update" } },
    });
    shapes["RollbackConfig"] = json!({
        "type": "structure",
        "members": { "timeoutMinutes": { "shape": "BoxedInteger" } },
    });
    shapes["CancellationStatus"] = json!({
        "type": "string",
        "enum": ["InProgress", "Failed", "Successful"],
    });
    shapes["Cancellation"] = json!({
        "type": "structure",
        "members": {
            "status": { "shape": "CancellationStatus" },
            "reason": { "shape": "String" },
        },
    });
    shapes["UpdateClusterVersionRequest"]["members"]["rollbackConfig"] =
        json!({ "shape": "RollbackConfig" });
    shapes["Update"]["members"]["cancellation"] = json!({ "shape": "Cancellation" });
    for (shape, value) in [
        ("UpdateType", "VersionRollback"),
        ("Category", "ROLLBACK_READINESS"),
    ] {
        if let Some(values) = shapes[shape]["enum"].as_array_mut() {
            values.push(json!(value));
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("eks/2017-11-01");
    std::fs::create_dir_all(&target).expect("mkdir");
    std::fs::write(
        target.join("service-2.json"),
        serde_json::to_vec(&model).expect("json"),
    )
    .expect("write model");
    dir
}

#[test]
fn aws_cli_through_a_refused_then_accepted_rollback() {
    let sb = TestSandbox::start(Some(&upgraded(
        ", lastUpgradeAge: 2d",
        "1.33",
        ADDONS_AT_N,
        "",
    )));
    let list = aws(
        &sb,
        None,
        &[
            "list-insights",
            "--cluster-name",
            "demo",
            "--filter",
            "categories=ROLLBACK_READINESS",
        ],
    );
    let insights = list["insights"].as_array().expect("insights");
    assert_eq!(insights.len(), 5, "{list:#}");
    for i in insights {
        assert_eq!(i["category"], "ROLLBACK_READINESS", "{i:#}");
        assert_eq!(i["kubernetesVersion"], "1.32", "{i:#}");
        assert!(!i["lastRefreshTime"].is_null(), "{i:#}");
    }
    let kubelet = insights
        .iter()
        .find(|i| i["name"] == "Kubelet version skew")
        .expect("kubelet insight");
    assert_eq!(kubelet["insightStatus"]["status"], "ERROR");
    let id = kubelet["id"].as_str().expect("id");
    let detail = aws(
        &sb,
        None,
        &["describe-insight", "--cluster-name", "demo", "--id", id],
    );
    let resources = detail["insight"]["resources"]
        .as_array()
        .expect("resources");
    assert_eq!(resources.len(), 2);
    assert_eq!(resources[0]["insightStatus"]["status"], "ERROR");
    assert!(
        resources[0]["arn"]
            .as_str()
            .unwrap_or_default()
            .contains(":nodegroup/demo/general/")
    );

    let stderr = aws_refused(
        &sb,
        &[
            "update-cluster-version",
            "--name",
            "demo",
            "--kubernetes-version",
            "1.32",
        ],
    );
    assert!(
        stderr.contains("(InvalidStateException)") && stderr.contains("Kubelet version skew"),
        "{stderr}"
    );

    for ng in ["general", "system"] {
        let out = aws(
            &sb,
            None,
            &[
                "update-nodegroup-version",
                "--cluster-name",
                "demo",
                "--nodegroup-name",
                ng,
                "--kubernetes-version",
                "1.32",
            ],
        );
        assert_eq!(out["update"]["params"][0]["value"], "1.32");
        let id = out["update"]["id"].as_str().expect("id").to_string();
        let done = until_done(
            &sb,
            None,
            &[
                "describe-update",
                "--name",
                "demo",
                "--update-id",
                &id,
                "--nodegroup-name",
                ng,
            ],
        );
        assert_eq!(done["status"], "Successful", "{ng}");
    }
    for (addon, version) in [
        ("kube-proxy", "v1.32.3-eksbuild.2"),
        ("coredns", "v1.11.4-eksbuild.2"),
    ] {
        let out = aws(
            &sb,
            None,
            &[
                "update-addon",
                "--cluster-name",
                "demo",
                "--addon-name",
                addon,
                "--addon-version",
                version,
                "--resolve-conflicts",
                "PRESERVE",
            ],
        );
        assert_eq!(out["update"]["type"], "AddonUpdate");
        let id = out["update"]["id"].as_str().expect("id").to_string();
        let done = until_done(
            &sb,
            None,
            &[
                "describe-update",
                "--name",
                "demo",
                "--update-id",
                &id,
                "--addon-name",
                addon,
            ],
        );
        assert_eq!(done["status"], "Successful", "{addon}");
    }

    let out = aws(
        &sb,
        None,
        &[
            "update-cluster-version",
            "--name",
            "demo",
            "--kubernetes-version",
            "1.32",
        ],
    );
    assert_eq!(out["update"]["type"], "VersionRollback");
    let id = out["update"]["id"].as_str().expect("id").to_string();
    let done = until_done(
        &sb,
        None,
        &["describe-update", "--name", "demo", "--update-id", &id],
    );
    assert_eq!(done["type"], "VersionRollback");
    assert_eq!(done["status"], "Successful");
    let cluster = aws(&sb, None, &["describe-cluster", "--name", "demo"]);
    assert_eq!(cluster["cluster"]["version"], "1.32");
}

#[test]
fn aws_cli_cancels_an_auto_mode_rollback() {
    let sb = TestSandbox::start(Some(
        r#"apiVersion: eks-upgrade/v1
kind: Scenario
metadata: { name: auto-cancel }
spec:
  cluster: { name: demo, region: us-west-2, version: "1.33", lastUpgradeAge: 1d, computeConfig: { enabled: true } }
  nodePools:
    - { name: general-purpose, nodes: 2, budget: "0" }
  velero: { installed: false }
"#,
    ));
    let model = model_with_rollback();
    let data = Some(model.path());
    let cluster = aws(&sb, data, &["describe-cluster", "--name", "demo"]);
    assert_eq!(cluster["cluster"]["computeConfig"]["enabled"], true);
    let out = aws(
        &sb,
        data,
        &[
            "update-cluster-version",
            "--name",
            "demo",
            "--kubernetes-version",
            "1.32",
            "--rollback-config",
            "timeoutMinutes=240",
        ],
    );
    assert_eq!(out["update"]["type"], "VersionRollback");
    assert_eq!(out["update"]["status"], "InProgress");
    let id = out["update"]["id"].as_str().expect("id").to_string();
    let cancelled = aws(
        &sb,
        data,
        &["cancel-update", "--name", "demo", "--update-id", &id],
    );
    assert_eq!(cancelled["update"]["id"], id.as_str());
    assert_eq!(cancelled["update"]["cancellation"]["status"], "InProgress");
    let done = until_done(
        &sb,
        data,
        &["describe-update", "--name", "demo", "--update-id", &id],
    );
    assert_eq!(done["status"], "Cancelled");
    assert_eq!(done["cancellation"]["status"], "Successful");
    assert!(done["cancellation"]["reason"].is_string());
    let cluster = aws(&sb, data, &["describe-cluster", "--name", "demo"]);
    assert_eq!(cluster["cluster"]["version"], "1.33");
    assert_eq!(cluster["cluster"]["status"], "ACTIVE");
}
