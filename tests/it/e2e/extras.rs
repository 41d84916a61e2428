//! The `eksctl` and `notify` steps, end to end.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};

use super::{External, workflow};
use crate::common::repo;

/// A stand-in `eksctl` that records its arguments and does what eksctl would, through the real
/// AWS CLI against the sandbox.
const FAKE_EKSCTL: &str = r#"#!/usr/bin/env bash
set -euo pipefail
echo "$*" >> "$EKSCTL_RECORD"
wait_for() { until [ "$(aws eks describe-update --name demo "$@" --query update.status --output text)" = Successful ]; do sleep 0.2; done; }
case "$1 $2" in
  "upgrade cluster")
    file=""; while [ $# -gt 0 ]; do [ "$1" = "--config-file" ] && file="$2"; shift; done
    version=$(sed -n 's/^  version: "\([0-9.]*\)".*/\1/p' "$file" | head -1)
    echo "upgrading control plane to $version"
    id=$(aws eks update-cluster-version --name demo --kubernetes-version "$version" --query update.id --output text)
    wait_for --update-id "$id"
    echo "control plane upgraded";;
  "upgrade nodegroup")
    name=""; version=""; while [ $# -gt 0 ]; do case "$1" in --name) name="$2";; --kubernetes-version) version="$2";; esac; shift; done
    id=$(aws eks update-nodegroup-version --cluster-name demo --nodegroup-name "$name" --kubernetes-version "$version" --query update.id --output text)
    wait_for --update-id "$id" --nodegroup-name "$name";;
  "update addon")
    file=""; while [ $# -gt 0 ]; do [ "$1" = "--config-file" ] && file="$2"; shift; done
    version=$(sed -n 's/^  version: "\([0-9.]*\)".*/\1/p' "$file" | head -1)
    for addon in $(aws eks list-addons --cluster-name demo --query addons --output text); do
      current=$(aws eks describe-addon --cluster-name demo --addon-name "$addon" --query addon.addonVersion --output text)
      # The default for the version on the first line, then every version listed for it.
      listed=$(aws eks describe-addon-versions --addon-name "$addon" --kubernetes-version "$version" --query "[addons[0].addonVersions[?compatibilities[?clusterVersion=='$version' && defaultVersion]].addonVersion | [0], addons[0].addonVersions[].addonVersion]" --output text)
      default=$(echo "$listed" | head -1)
      case " $(echo "$listed" | tail -n +2 | tr '\t\n' '  ') " in *" $current "*) continue;; esac
      echo "updating $addon to $default"
      id=$(aws eks update-addon --cluster-name demo --addon-name "$addon" --addon-version "$default" --resolve-conflicts OVERWRITE --query update.id --output text)
      wait_for --update-id "$id" --addon-name "$addon"
    done
    echo "add-ons up to date";;
  *) echo "unexpected: $*" >&2; exit 1;;
esac
"#;

#[test]
fn the_eksctl_step_edits_the_config_and_drives_eksctl() {
    let sb = External::from_example("healthy.yaml");
    let wf = eksctl_workflow(&sb, FAKE_EKSCTL);
    let dir = sb.dir.path();
    let original =
        std::fs::read_to_string(repo().join("helpers/eksctl.yaml")).expect("helpers/eksctl.yaml");
    let config = dir.join("cluster.yaml");
    let record = dir.join("eksctl-args.txt");
    let out = sb
        .run_workflow(&wf, &[])
        .env("EKSCTL_RECORD", &record)
        .run()
        .code(0);
    assert!(
        out.stderr.contains("eksctl: control plane upgraded"),
        "eksctl's output is streamed: {}",
        out.stderr
    );
    // Only the version value changed, byte for byte.
    let edited = std::fs::read_to_string(&config).expect("config");
    assert_eq!(
        edited,
        original.replacen("version: \"1.33\"", "version: \"1.34\"", 1)
    );
    let calls = std::fs::read_to_string(&record).expect("recorded arguments");
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "upgrade cluster --config-file {} --approve",
            config.display()
        )
    );
    assert!(
        lines.contains(
            &"upgrade nodegroup --cluster demo --name general --kubernetes-version 1.34 --wait"
        ),
        "{calls}"
    );
    assert!(
        lines.contains(
            &"upgrade nodegroup --cluster demo --name system --kubernetes-version 1.34 --wait"
        ),
        "{calls}"
    );
    assert_eq!(
        lines.last().copied(),
        Some(format!("update addon --config-file {} --wait", config.display()).as_str())
    );
    assert_eq!(sb.cluster_version("demo"), "1.34");
}

/// An `eksctl` that exits 0 and does nothing: the step must not take its word for it.
const NO_OP_EKSCTL: &str = "#!/bin/sh\necho \"pretending: $*\"\nexit 0\n";

/// The shipped eksctl workflow, pointed at a copy of the ClusterConfig and at `binary`.
fn eksctl_workflow(sb: &External, binary: &str) -> std::path::PathBuf {
    let dir = sb.dir.path();
    let bin = dir.join("eksctl");
    std::fs::write(&bin, binary).expect("write stand-in");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let config = dir.join("cluster.yaml");
    std::fs::copy(repo().join("helpers/eksctl.yaml"), &config).expect("copy config");
    let text = std::fs::read_to_string(repo().join("workflows/eksctl.yaml"))
        .expect("eksctl workflow")
        .replace(
            "configFile: helpers/eksctl.yaml",
            &format!("configFile: {}", config.display()),
        )
        .replace("binary: eksctl", &format!("binary: {}", bin.display()))
        // The stand-in makes a dozen AWS CLI calls of a second each; 90m at the test's time
        // scale of 600 would be 9s.
        .replace("timeout: 90m", "timeout: 600m");
    let wf = dir.join("eksctl.yaml");
    std::fs::write(&wf, text).expect("write workflow");
    wf
}

#[test]
fn an_eksctl_that_exits_0_without_upgrading_fails_the_step_naming_what_eks_shows() {
    let sb = External::from_example("healthy.yaml");
    let wf = eksctl_workflow(&sb, NO_OP_EKSCTL);
    let report = sb.dir.path().join("report.json");
    let out = sb
        .run_workflow(&wf, &["--report", report.to_str().unwrap_or("")])
        .run()
        .no_panic();
    assert_ne!(
        out.code,
        Some(0),
        "the run must not succeed:\n{}",
        out.stderr
    );
    // The step failed on what EKS shows, not on the health check after its settle.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("JSON");
    assert!(
        report["failedStep"]
            .as_str()
            .is_some_and(|s| s.ends_with("eksctl")),
        "{report:#}"
    );
    let failure = report["failure"].as_str().unwrap_or_default();
    for part in [
        "eksctl exited 0, but EKS shows the control plane is at 1.33, not 1.34",
        "node group `general` is at 1.33, not 1.34",
        "node group `system` is at 1.33, not 1.34",
        "add-on `kube-proxy` is at `v1.33.3-eksbuild.2`, which EKS does not list for 1.34",
    ] {
        assert!(failure.contains(part), "{part}\nin: {failure}");
    }
    // Add-ons that are valid for the hop are not named.
    assert!(!failure.contains("`coredns`"), "{failure}");
    assert_eq!(sb.cluster_version("demo"), "1.33");
}

/// A webhook receiver on loopback that records the JSON bodies posted to it.
fn receiver() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
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
            if let Ok(v) = serde_json::from_slice(&body) {
                seen.lock().expect("lock").push(v);
            }
            let mut s = stream;
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    (url, bodies)
}

#[test]
fn notify_posts_start_and_success_and_a_dead_webhook_never_fails_the_run() {
    let sb = External::from_example("healthy.yaml");
    let (url, bodies) = receiver();
    let add_notify = |t: String| {
        t.replace("  prepare:\n", "  prepare:\n    - id: tell-chat\n      notify: { urlEnv: CHAT_WEBHOOK, timeout: 2s, retries: 1 }\n")
    };
    let wf = workflow(sb.dir.path(), "notify.yaml", add_notify);
    let out = sb
        .run_workflow(&wf, &[])
        .env("CHAT_WEBHOOK", &url)
        .run()
        .code(0);
    let texts: Vec<String> = bodies
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|b| b["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts[0].contains("started") && texts[0].contains("`demo`"),
        "{texts:?}"
    );
    assert!(
        texts[1].contains("succeeded") && texts[1].contains("exit code 0"),
        "{texts:?}"
    );
    assert!(
        !out.stderr.contains(&url),
        "the webhook URL must not be logged"
    );

    // A webhook that is down: warnings, and the upgrade still succeeds.
    let sb = External::from_example("healthy.yaml");
    let dead = "http://127.0.0.1:9/hook";
    let wf = workflow(sb.dir.path(), "notify.yaml", add_notify);
    let out = sb
        .run_workflow(&wf, &[])
        .env("CHAT_WEBHOOK", dead)
        .run()
        .code(0);
    assert!(
        out.stderr.contains("cannot connect to the webhook"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains(dead),
        "the webhook URL must not be logged"
    );
}
