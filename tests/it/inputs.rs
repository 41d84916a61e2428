//! What the command line gives is checked before anything else: each malformed value, missing
//! profile or missing credentials is exit 2 with one `error:` line and one `hint:` line, before
//! any AWS call and without leaving a file behind. And nothing a person reads holds the `Debug`
//! output of an SDK or kube error.

use std::path::Path;

use crate::common::{Output, Test, repo};

/// Text that only `Debug` output of the AWS SDK, smithy or kube produces.
pub const DEBUG_MARKERS: &[&str] = &[
    "SdkError",
    "DispatchFailure",
    "ConstructionFailure",
    "ServiceError {",
    "ServiceError(",
    "ConnectorError",
    "CredentialsNotLoaded",
    "ErrorMetadata",
    "Error { code:",
    "Status {",
    "ErrorResponse",
    "Some(",
];

/// Fails the test if stdout or stderr holds `Debug` output.
#[track_caller]
pub fn assert_no_debug(out: &Output) {
    for marker in DEBUG_MARKERS {
        for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(!text.contains(marker), "{stream} holds `{marker}`:\n{text}");
        }
    }
}

/// A run with no AWS identity at all: no credentials in the environment, shared files that do
/// not exist, and a home without `~/.aws`.
fn bare(test: Test, dir: &Path) -> Test {
    test.env("HOME", dir)
        .env("AWS_CONFIG_FILE", dir.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("no-credentials"))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("EKS_UPGRADE_CLUSTER")
        .env_remove("EKS_UPGRADE_STATE")
        .env_remove("EKS_UPGRADE_STATE_DIR")
        .env_remove("EKS_UPGRADE_TIME_SCALE")
}

/// Runs `args` (a shell-free list) in a scratch directory holding a regular file `a-file`, a
/// directory `a-dir` and an AWS config with profile `prod`, with `env` on top of a bare
/// environment.
fn usage(args: &[&str], env: &[(&str, &str)]) -> Output {
    let scratch = tempfile::tempdir().expect("scratch");
    std::fs::create_dir(scratch.path().join("a-dir")).expect("a-dir");
    std::fs::write(scratch.path().join("a-file"), "x").expect("a-file");
    std::fs::write(
        scratch.path().join("aws-config"),
        "[profile prod]\nregion = eu-west-1\n[profile staging]\nregion = eu-west-1\n",
    )
    .expect("aws config");
    let mut test = bare(Test::new(), scratch.path())
        .current_dir(scratch.path())
        .args(args);
    for (k, v) in env {
        let v = v.replace("$DIR", &scratch.path().display().to_string());
        test = test.env(k, v);
    }
    let out = test.run().no_panic();
    // Nothing but the two inputs was left in the directory, whatever the check was.
    let mut left: Vec<String> = std::fs::read_dir(scratch.path())
        .expect("read scratch")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["a-dir", "a-file", "aws-config"],
        "{args:?} left files"
    );
    out
}

/// A command line and the environment it runs with.
type Case = (Vec<String>, Vec<(&'static str, &'static str)>);

/// The command lines of issue 14's point 3 and their kin. Each must exit 2 with one `error:`
/// line and one `hint:` line and nothing on stdout.
fn cases() -> Vec<Case> {
    let wf = repo().join("workflows/in-place.yaml").display().to_string();
    let w = wf.as_str();
    let c = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let no_env = Vec::new;
    vec![
        (c(&["run", w, "--cluster", "", "--yes"]), no_env()),
        (c(&["run", w, "--region", "", "--yes"]), no_env()),
        (
            c(&["run", w, "--region", "not a region!!", "--yes"]),
            no_env(),
        ),
        (c(&["plan", w, "--cluster", "bad name!"]), no_env()),
        (c(&["check", w, "--region", "EU-WEST-1"]), no_env()),
        (c(&["run", w, "--time-scale", "0", "--yes"]), no_env()),
        (c(&["run", w, "--time-scale", "-1", "--yes"]), no_env()),
        (c(&["run", w, "--time-scale", "NaN", "--yes"]), no_env()),
        (c(&["run", w, "--time-scale", "inf", "--yes"]), no_env()),
        (
            c(&["run", w, "--yes"]),
            vec![("EKS_UPGRADE_TIME_SCALE", "0.5")],
        ),
        (c(&["resume", "--time-scale", "0.5", "--yes"]), no_env()),
        (c(&["run", w, "--report", "report.txt", "--yes"]), no_env()),
        (c(&["run", w, "--report", "report", "--yes"]), no_env()),
        (c(&["run", w, "--report", "a-dir", "--yes"]), no_env()),
        (
            c(&["run", w, "--report", "a-file/report.json", "--yes"]),
            no_env(),
        ),
        (c(&["backup", "verify", "", "--cluster", "demo"]), no_env()),
        (c(&["backup", "restore", "", "--cluster", "demo"]), no_env()),
        (
            c(&[
                "backup",
                "create",
                "--name",
                "Nightly_1",
                "--cluster",
                "demo",
            ]),
            no_env(),
        ),
        (
            c(&[
                "backup",
                "create",
                "--velero-namespace",
                "",
                "--cluster",
                "demo",
            ]),
            no_env(),
        ),
        (
            c(&["runs", "--state", "s3://Bad_Bucket/journals"]),
            no_env(),
        ),
        (c(&["runs", "--state", "s3://ab/journals"]), no_env()),
        (c(&["runs", "--state", "ftp://bucket/journals"]), no_env()),
        (
            c(&["run", w, "--yes"]),
            vec![("EKS_UPGRADE_STATE", "s3://192.168.1.1/x")],
        ),
        (c(&["status", "../../etc/passwd"]), no_env()),
        (c(&["resume", "a/b", "--yes"]), no_env()),
        (
            c(&["plan", w, "--cluster", "demo", "--region", "us-east-1"]),
            no_env(),
        ),
        (
            c(&[
                "plan",
                w,
                "--cluster",
                "demo",
                "--region",
                "us-east-1",
                "--profile",
                "nope",
            ]),
            vec![("AWS_CONFIG_FILE", "$DIR/aws-config")],
        ),
        (
            c(&["plan", w, "--cluster", "demo", "--region", "us-east-1"]),
            vec![
                ("AWS_CONFIG_FILE", "$DIR/aws-config"),
                ("AWS_PROFILE", "nope"),
            ],
        ),
        (
            c(&["plan", w, "--cluster", "demo"]),
            vec![
                ("AWS_REGION", "not-a-region!"),
                ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
                ("AWS_SECRET_ACCESS_KEY", "example"),
            ],
        ),
        (
            c(&["runs", "--state", "s3://upgrade-state/journals"]),
            vec![("AWS_REGION", "us-east-1")],
        ),
    ]
}

#[test]
fn every_malformed_input_exits_2_with_one_error_and_one_hint() {
    let root = repo().display().to_string();
    let mut transcript = String::new();
    for (args, env) in cases() {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = usage(&refs, &env).code(2);
        assert_no_debug(&out);
        assert!(
            out.stdout.is_empty(),
            "{args:?} printed on stdout:\n{}",
            out.stdout
        );
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            2,
            "{args:?}: expected one error and one hint:\n{}",
            out.stderr
        );
        assert!(lines[0].starts_with("error: "), "{}", out.stderr);
        assert!(lines[1].starts_with("hint: "), "{}", out.stderr);
        let shown: Vec<String> = args
            .iter()
            .map(|a| {
                let a = a.replace(&root, "REPO");
                if a.is_empty() || a.contains(' ') || a.contains('!') {
                    format!("'{a}'")
                } else {
                    a
                }
            })
            .collect();
        let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        transcript.push_str(&format!(
            "$ {}eks-upgrade {}\n{}\n",
            env.concat(),
            shown.join(" "),
            out.stderr.replace(&root, "REPO")
        ));
    }
    insta::assert_snapshot!(transcript);
}

#[test]
fn a_run_stopped_at_its_command_line_leaves_no_report_and_no_directory() {
    let wf = repo().join("workflows/in-place.yaml");
    let scratch = tempfile::tempdir().expect("scratch");
    let out = bare(Test::new(), scratch.path())
        .current_dir(scratch.path())
        .arg("run")
        .arg(&wf)
        .args([
            "--yes",
            "--cluster",
            "",
            "--report",
            "new/deeper/report.json",
        ])
        .run()
        .code(2);
    assert_no_debug(&out);
    assert!(!scratch.path().join("new").exists());
    // The report's directory is created when the run ends, so a missing one is no error.
    let out = bare(Test::new(), scratch.path())
        .current_dir(scratch.path())
        .arg("run")
        .arg(&wf)
        .args(["--yes", "--cluster", "demo", "--region", "us-east-1"])
        .args(["--report", "new/deeper/report.json"])
        .run()
        .code(2)
        .stderr_contains("no AWS credentials");
    assert!(!scratch.path().join("new").exists(), "{}", out.stderr);
}

#[test]
fn without_credentials_a_run_stops_at_once_with_one_line_and_never_asks_the_metadata_service() {
    let wf = repo().join("workflows/in-place.yaml");
    let scratch = tempfile::tempdir().expect("scratch");
    // Without `AWS_EC2_METADATA_DISABLED` the SDK would try 169.254.169.254 last; the test
    // harness sets it, as every run made here must.
    let out = bare(Test::new(), scratch.path())
        .arg("run")
        .arg(&wf)
        .args(["--yes", "--cluster", "demo", "--region", "us-east-1"])
        .run()
        .code(2);
    assert_no_debug(&out);
    assert_eq!(out.stderr.lines().count(), 2, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with("error: no AWS credentials were found"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_named_profile_wins_over_credentials_in_the_environment() {
    // With `--profile prod` the profile's (missing) credentials are used, as by the AWS CLI,
    // never the environment's: the run stops instead of acting with another identity.
    let wf = repo().join("workflows/in-place.yaml");
    let scratch = tempfile::tempdir().expect("scratch");
    let config = scratch.path().join("aws-config");
    std::fs::write(&config, "[profile prod]\nregion = us-east-1\n").expect("config");
    let out = bare(Test::new(), scratch.path())
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT")
        .env("AWS_SECRET_ACCESS_KEY", "from-the-environment")
        .arg("plan")
        .arg(&wf)
        .args(["--cluster", "demo", "--profile", "prod"])
        .run()
        .code(2);
    assert_no_debug(&out);
    assert!(
        out.stderr.starts_with("error: cannot load AWS credentials")
            || out.stderr.starts_with("error: no AWS credentials"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 2, "{}", out.stderr);
}

#[test]
fn a_malformed_command_line_under_json_logs_is_one_json_line() {
    let wf = repo().join("workflows/in-place.yaml");
    let out = Test::new()
        .arg("run")
        .arg(&wf)
        .args(["--log-format", "json", "--no-such-flag"])
        .run()
        .code(2);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    let line: serde_json::Value = serde_json::from_str(out.stderr.trim()).expect("JSON");
    assert_eq!(line["level"], "error");
    assert!(
        line["message"]
            .as_str()
            .is_some_and(|m| m.contains("--no-such-flag"))
    );
    // And an input check under JSON logs: an error line and a hint line, both JSON.
    let out = Test::new()
        .arg("run")
        .arg(&wf)
        .args(["--log-format", "json", "--yes", "--time-scale", "0"])
        .run()
        .code(2);
    let lines: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 2, "{}", out.stderr);
    assert_eq!(lines[0]["level"], "error");
    assert_eq!(lines[1]["event"], "hint");
}
