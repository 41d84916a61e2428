//! Debug logs, end to end: the real binary against a sandbox in another process, with
//! `RUST_LOG=trace`. The AWS SDK's and kube's own debug lines must come through (the feature
//! works), no credential may (the redacting writer works), a JSON log must stay JSON line by
//! line, and without `-v` or `RUST_LOG` nothing of it may appear at all.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::Output;
use crate::common::repo;
use crate::e2e::External;

/// A session token for the runs: the sandbox accepts any, and at trace level `aws_sigv4` logs
/// the canonical request of the EKS token, which carries it percent-encoded.
const SESSION_TOKEN: &str = "FwoGZXIvYXdzEJr/LogTestSessionToken+0123456789abcdef==";

/// The secret part of the webhook URL: only the path, as with Slack's.
const WEBHOOK_PATH: &str = "/services/T0LOGTEST/B0LOGTEST/webhookSecretPath4f2a9c";

/// The pre-flight workflow with a webhook first, so a run reads EKS and the Kubernetes API, and
/// posts to a URL that is a secret.
fn workflow(dir: &Path) -> PathBuf {
    let text =
        std::fs::read_to_string(repo().join("workflows/check-only.yaml")).expect("check-only.yaml");
    let text = text.replacen(
        "  prepare:\n",
        "  prepare:\n    - id: tell-chat\n      notify: { urlEnv: CHAT_WEBHOOK, on: [start], timeout: 2s, retries: 0 }\n",
        1,
    );
    let path = dir.join("logged.yaml");
    std::fs::write(&path, text).expect("write workflow");
    path
}

/// A webhook on loopback that answers 200 and counts the posts.
fn webhook() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://{}{WEBHOOK_PATH}",
        listener.local_addr().expect("addr")
    );
    let posts = Arc::new(AtomicUsize::new(0));
    let seen = posts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut length = 0usize;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            seen.fetch_add(1, Ordering::SeqCst);
            let mut s = stream;
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    (url, posts)
}

/// Runs the workflow with `env` set (and `RUST_LOG` removed unless given) and `extra` arguments.
fn logged_run(sb: &External, webhook: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let wf = workflow(sb.dir.path());
    let mut test = sb
        .run_workflow(&wf, extra)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("CHAT_WEBHOOK", webhook)
        .env_remove("RUST_LOG");
    for (k, v) in env {
        test = test.env(k, v);
    }
    test.run().code(0)
}

fn secret_key(sb: &External) -> String {
    sb.env
        .iter()
        .find(|(k, _)| k == "AWS_SECRET_ACCESS_KEY")
        .map(|(_, v)| v.clone())
        .expect("the sandbox sets a secret key")
}

/// Every place `needle` occurs in `text` is followed by `<redacted>`.
#[track_caller]
fn always_redacted(text: &str, needle: &str) {
    let lower = text.to_ascii_lowercase();
    let needle = needle.to_ascii_lowercase();
    for (i, _) in lower.match_indices(&needle) {
        let after = &text[i + needle.len()..];
        assert!(
            after.starts_with("<redacted>"),
            "`{needle}` not redacted: {}",
            &text[i..(i + 120).min(text.len())]
        );
    }
}

/// No credential of the run in its output, whatever the format.
#[track_caller]
fn no_credentials(sb: &External, out: &Output) {
    let all = format!("{}\n{}", out.stdout, out.stderr);
    let secret = secret_key(sb);
    assert!(!all.contains(&secret), "the secret access key was logged");
    assert!(
        !all.contains("LogTestSessionToken"),
        "the session token was logged"
    );
    // An EKS token, bare or base64url of its `https://sts.` URL.
    always_redacted(&all, "k8s-aws-v1.");
    assert!(!all.contains("aHR0cHM6Ly9zdHMu"), "an EKS token was logged");
    always_redacted(&all, "X-Amz-Signature=");
    always_redacted(&all, "X-Amz-Credential=");
    always_redacted(&all, "X-Amz-Security-Token=");
    let signature = regex_lite::Regex::new(r"(?i)signature=[0-9a-f]{64}").expect("regex");
    assert!(!signature.is_match(&all), "a SigV4 signature was logged");
    assert!(
        !all.contains("webhookSecretPath4f2a9c"),
        "the webhook URL was logged"
    );
    // Credentials did pass by at trace level (signing the token), and were scrubbed.
    assert!(
        all.contains("X-Amz-Security-Token=<redacted>"),
        "nothing was scrubbed"
    );
}

#[test]
fn trace_logs_show_the_sdk_and_kube_but_never_a_credential() {
    let sb = External::from_example("healthy.yaml");
    let (url, posts) = webhook();

    // Text.
    let trace = [("RUST_LOG", "trace"), ("AWS_SESSION_TOKEN", SESSION_TOKEN)];
    let out = logged_run(&sb, &url, &[], &trace);
    let debug_from = |target: &str| {
        out.stderr
            .lines()
            .any(|l| l.contains(" DEBUG ") && l.contains(target))
    };
    assert!(
        debug_from(" aws_smithy_runtime::"),
        "no debug line from the AWS SDK"
    );
    assert!(debug_from(" kube_client::"), "no debug line from kube");
    no_credentials(&sb, &out);
    assert_eq!(posts.load(Ordering::SeqCst), 1, "the webhook was posted to");

    // JSON: the run's events and the libraries' lines, each a JSON object.
    let out = logged_run(&sb, &url, &["--log-format", "json"], &trace);
    let mut targets = Vec::new();
    let mut events = 0;
    for line in out.stderr.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v["event"].is_string() {
            events += 1;
        }
        if v["level"] == "DEBUG"
            && let Some(t) = v["target"].as_str()
        {
            targets.push(t.split("::").next().unwrap_or("").to_string());
        }
    }
    assert!(events > 0, "no run events in the JSON log");
    for t in ["aws_smithy_runtime", "kube_client"] {
        assert!(
            targets.iter().any(|x| x == t),
            "no debug line from `{t}` in the JSON log"
        );
    }
    no_credentials(&sb, &out);
    assert_eq!(posts.load(Ordering::SeqCst), 2, "the webhook was posted to");
}

/// A line as `tracing-subscriber` writes it: time, level, then spans and a `module::path:`.
fn tracing_lines(stderr: &str) -> Vec<&str> {
    let layout = regex_lite::Regex::new(
        r"^\d{4}-\d\d-\d\dT[\d:.]+Z\s+(TRACE|DEBUG|INFO|WARN|ERROR) .*?[a-z0-9_]+::[a-z0-9_:]+: ",
    )
    .expect("regex");
    stderr.lines().filter(|l| layout.is_match(l)).collect()
}

#[test]
fn without_v_or_rust_log_nothing_from_tracing_appears_and_rust_log_wins_over_v() {
    let sb = External::from_example("healthy.yaml");
    let (url, _) = webhook();

    let quiet = logged_run(&sb, &url, &[], &[]);
    assert_eq!(tracing_lines(&quiet.stderr), Vec::<&str>::new());
    for target in [
        "eks_upgrade::",
        "aws_smithy",
        "aws_config",
        "kube_client",
        "hyper",
    ] {
        assert!(
            !quiet.stderr.contains(target),
            "`{target}` in:\n{}",
            quiet.stderr
        );
    }
    // The run's own log lines are there, untouched.
    assert!(quiet.stderr.contains("preflight: "), "{}", quiet.stderr);

    // `-v`: the tool's own info, the libraries' warnings only.
    let verbose = logged_run(&sb, &url, &["-v"], &[]);
    let lines = tracing_lines(&verbose.stderr);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("eks_upgrade::cli::logging")),
        "{}",
        verbose.stderr
    );
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("DEBUG") && !l.contains("TRACE")),
        "{lines:?}"
    );

    // `RUST_LOG` wins over `-vvv`: kube at debug, and nothing from the AWS SDK.
    let chosen = logged_run(&sb, &url, &["-vvv"], &[("RUST_LOG", "kube=debug")]);
    let lines = tracing_lines(&chosen.stderr);
    assert!(
        lines.iter().any(|l| l.contains(" kube_client::")),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| !l.contains("aws_smithy")), "{lines:?}");
}
