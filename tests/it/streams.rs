//! Machine-readable streams stay machine-readable, with the real binary against the sandbox:
//! under `--log-format json` every line on stderr is a JSON object (the run's events, the
//! report line, errors and hints alike), and under `--output json` stdout is one JSON document,
//! on success and on failure.

use serde_json::Value;

use crate::common::{Output, repo};
use crate::e2e::External;
use crate::inputs::assert_no_debug;

/// Every line of stderr as JSON; fails naming the first line that is not.
#[track_caller]
fn json_lines(out: &Output) -> Vec<Value> {
    assert!(!out.stderr.is_empty(), "nothing on stderr");
    out.stderr
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap_or_else(|e| {
                panic!("not a JSON line ({e}): {l}\n--- stderr\n{}", out.stderr)
            })
        })
        .collect()
}

/// stdout as one JSON document.
#[track_caller]
fn json_document(out: &Output) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}\n--- stderr\n{}",
            out.stdout, out.stderr
        )
    })
}

#[test]
fn json_logs_are_json_on_every_line_of_a_run_its_report_and_its_errors() {
    let sb = External::from_example("healthy.yaml");
    let wf = repo().join("workflows/in-place.yaml");
    let report = sb.dir.path().join("report.md");
    let out = sb
        .run_workflow(
            &wf,
            &[
                "--log-format",
                "json",
                "--report",
                report.to_str().unwrap_or(""),
                "-v",
            ],
        )
        .run()
        .code(0);
    assert_no_debug(&out);
    let lines = json_lines(&out);
    assert!(
        lines.iter().any(|l| l["event"] == "runFinished"),
        "{}",
        out.stderr
    );
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Report written to"))),
        "the report line is a JSON event too:\n{}",
        out.stderr
    );
    assert!(report.exists());
    assert!(out.stdout.is_empty(), "{}", out.stdout);

    // A run that stops before it starts: its error and hint are JSON lines as well.
    let out = sb
        .run_workflow(
            &wf,
            &["--log-format", "json", "--state", "s3://no-such-bucket/j"],
        )
        .run()
        .code(3);
    assert_no_debug(&out);
    let lines = json_lines(&out);
    let error = lines
        .iter()
        .find(|l| l["level"] == "error")
        .unwrap_or_else(|| panic!("no error line:\n{}", out.stderr));
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("NoSuchBucket")),
        "{error}"
    );
    assert!(lines.iter().any(|l| l["event"] == "hint"), "{}", out.stderr);
}

#[test]
fn output_json_is_one_document_on_stdout_for_every_command_that_has_it() {
    let sb = External::from_example("healthy.yaml");
    let wf = repo().join("workflows/in-place.yaml");
    let wf = wf.to_str().unwrap_or("");
    let check_only = repo().join("workflows/check-only.yaml");
    let check_only = check_only.to_str().unwrap_or("");

    let plan = sb
        .eks_upgrade(&["plan", wf, "--cluster", "demo", "--output", "json"])
        .run()
        .code(0);
    assert_eq!(json_document(&plan)["from"], "1.33", "{}", plan.stdout);

    let check = sb
        .eks_upgrade(&["check", check_only, "--cluster", "demo", "--output", "json"])
        .run()
        .code(0);
    assert_eq!(json_document(&check)["cluster"], "demo");

    let run = sb.run(std::path::Path::new(wf), &[]).code(0);
    assert_no_debug(&run);
    let runs = sb.eks_upgrade(&["runs", "--output", "json"]).run().code(0);
    let listed = json_document(&runs);
    let id = listed[0]["runId"].as_str().unwrap_or_default().to_string();
    assert!(!id.is_empty(), "{listed}");
    let status = sb
        .eks_upgrade(&["status", &id, "--output", "json"])
        .run()
        .code(0);
    assert_eq!(json_document(&status)["runId"], id.as_str());

    // A command that fails keeps stdout empty rather than printing half a document.
    let missing = sb
        .eks_upgrade(&["status", "20000101t000000z-000000", "--output", "json"])
        .run()
        .code(2);
    assert!(missing.stdout.is_empty(), "{}", missing.stdout);
    let wrong = sb
        .eks_upgrade(&["plan", wf, "--cluster", "nope", "--output", "json"])
        .run()
        .code(2);
    assert!(wrong.stdout.is_empty(), "{}", wrong.stdout);
    for out in [&plan, &check, &runs, &status, &missing, &wrong] {
        assert_no_debug(out);
    }
}

#[test]
fn check_runs_against_the_sandbox_as_run_does() {
    let check_only = repo().join("workflows/check-only.yaml");
    let scenario = repo().join("examples/sandbox/healthy.yaml");
    let out = crate::common::Test::new()
        .current_dir(repo())
        .arg("check")
        .arg(&check_only)
        .arg("--sandbox")
        .arg(&scenario)
        .args(["--output", "json"])
        .run()
        .code(0);
    let report = json_document(&out);
    assert_eq!(report["cluster"], "demo");
    assert_eq!(report["hops"][0], "1.34");
}

#[test]
fn the_sandbox_exports_everything_an_external_run_needs() {
    let sb = External::from_example("healthy.yaml");
    let get = |k: &str| {
        sb.env
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    // No run made against the sandbox may look for credentials at the metadata address.
    assert_eq!(get("AWS_EC2_METADATA_DISABLED"), Some("true"));
    // Its speed, which `run` reads as its time scale.
    assert_eq!(get("EKS_UPGRADE_TIME_SCALE"), Some("600"));
    for k in [
        "AWS_ENDPOINT_URL_EKS",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ACCESS_KEY_ID",
        "AWS_REGION",
        "KUBECONFIG",
    ] {
        assert!(get(k).is_some(), "{k} is not exported");
    }
}
