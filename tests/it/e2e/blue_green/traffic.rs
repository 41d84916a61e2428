//! Blue/green end to end: traffic. The whole story moves the weights 10 → 50 → 100 with a
//! change per stage, each INSYNC, and the real `aws route53` CLI then lists what the journal
//! says; a workload broken only on green is caught at 10 % and every request goes back to blue
//! in one change batch (exit 4).

use std::process::Command;

use serde_json::Value;

use crate::common::Timed;
use crate::e2e::External;

/// A blue/green workflow for `demo` (1.33 → 1.35) whose gate reads the sandbox's Prometheus.
const WORKFLOW: &str = r#"apiVersion: eks-upgrade/v1
kind: Workflow
metadata: { name: blue-green }
spec:
  cluster: { name: demo, region: us-east-1 }
  target: "1.35"
  traffic:
    zone: example.com
    record: app.example.com
    blue: { setIdentifier: blue }
    green: { setIdentifier: green, service: shop/web }
    errorRate:
      prometheus:
        urlEnv: PROMETHEUS_URL
        errors: 'sum(increase(nginx_ingress_controller_requests{cluster="{cluster}",host="app.example.com",status=~"5.."}[{window}]))'
        requests: 'sum(increase(nginx_ingress_controller_requests{cluster="{cluster}",host="app.example.com"}[{window}]))'
      max: 1%
      minRequests: 50
      window: 2m
  prepare:
    - { id: backup, veleroBackup: {} }
    - { id: verify, verifyBackup: { backup: backup } }
  upgrade:
    - { id: green, createGreen: {} }
    - { id: green-ready, waitGreen: {} }
    - { id: attach, attachBackupLocation: { backup: backup } }
    - { id: restore, restoreToGreen: { backup: backup, excludedNamespaces: [kube-system] } }
    - { id: green-health, healthCheck: { on: green } }
    - { id: shift, shiftTraffic: { stages: [10, 50, 100], hold: 5m, interval: 30s } }
    - { id: soak, soak: { duration: 30m, watchTraffic: true } }
  onFailure:
    - { id: switch-back, switchBack: {} }
"#;

fn workflow(sb: &External) -> std::path::PathBuf {
    let path = sb.dir.path().join("blue-green.yaml");
    std::fs::write(&path, WORKFLOW).expect("write workflow");
    path
}

/// The batches of the successful ChangeResourceRecordSets calls, as the sandbox recorded them.
fn changes(sb: &External) -> Vec<String> {
    sb.requests()
        .iter()
        .filter(|r| {
            r["service"] == "route53"
                && r["operation"] == "ChangeResourceRecordSets"
                && r["status"].as_u64().is_some_and(|s| s < 300)
        })
        .map(|r| r["detail"].as_str().unwrap_or("").to_string())
        .collect()
}

/// `aws route53 ARGS` against the sandbox, as JSON.
fn aws(sb: &External, args: &[&str]) -> Value {
    let out = Command::new("aws")
        .arg("route53")
        .args(args)
        .args(["--output", "json"])
        .envs(sb.env.iter().map(|(k, v)| (k, v)))
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output_timed()
        .expect("the `aws` CLI runs");
    assert_eq!(out.code, Some(0), "aws route53 {args:?}:\n{}", out.stderr);
    serde_json::from_str(&out.stdout).expect("aws prints JSON")
}

/// `(set identifier, weight)` of `app.example.com`'s weighted sets, as the CLI lists them.
fn listed_weights(sb: &External) -> Vec<(String, i64)> {
    let zones = aws(
        sb,
        &["list-hosted-zones-by-name", "--dns-name", "example.com"],
    );
    let zone = zones["HostedZones"][0]["Id"]
        .as_str()
        .expect("the zone")
        .to_string();
    let sets = aws(
        sb,
        &["list-resource-record-sets", "--hosted-zone-id", &zone],
    );
    let mut out: Vec<(String, i64)> = sets["ResourceRecordSets"]
        .as_array()
        .expect("sets")
        .iter()
        .filter(|s| s["Name"] == "app.example.com." && s["SetIdentifier"].is_string())
        .map(|s| {
            (
                s["SetIdentifier"].as_str().unwrap_or("").to_string(),
                s["Weight"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    out.sort();
    out
}

/// The run fact `traffic`: (blue, green, change id, status) per weight change.
fn points(journal: &Value) -> Vec<(i64, i64, String, String)> {
    journal["facts"]["traffic"]
        .as_array()
        .expect("the run recorded its weight changes")
        .iter()
        .map(|p| {
            (
                p["blue"].as_i64().unwrap_or(-1),
                p["green"].as_i64().unwrap_or(-1),
                p["changeId"].as_str().unwrap_or("").to_string(),
                p["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn the_whole_story_moves_traffic_in_three_changes_and_the_cli_lists_green_at_100() {
    let sb = External::from_example("blue-green.yaml");
    let wf = workflow(&sb);
    sb.run(&wf, &[]).code(0);

    let batches = changes(&sb);
    assert_eq!(batches.len(), 3, "{batches:#?}");
    for (batch, (blue, green)) in batches.iter().zip([(90, 10), (50, 50), (0, 100)]) {
        assert!(
            batch.contains(&format!("CREATE app.example.com. CNAME blue weight {blue}"))
                && batch.contains(&format!(
                    "CREATE app.example.com. CNAME green weight {green}"
                )),
            "{batch}"
        );
    }
    let journal = sb.journal();
    let recorded = points(&journal);
    assert_eq!(
        recorded
            .iter()
            .map(|(b, g, _, s)| (*b, *g, s.as_str()))
            .collect::<Vec<_>>(),
        [(90, 10, "INSYNC"), (50, 50, "INSYNC"), (0, 100, "INSYNC")],
        "{recorded:?}"
    );
    // Route 53 itself says every recorded change is INSYNC.
    for (_, _, id, _) in &recorded {
        let change = aws(&sb, &["get-change", "--id", id]);
        assert_eq!(change["ChangeInfo"]["Status"], "INSYNC", "{change}");
    }
    assert_eq!(
        listed_weights(&sb),
        [("blue".to_string(), 0), ("green".to_string(), 100)]
    );
}

#[test]
fn a_workload_broken_only_on_green_is_caught_at_10_percent_and_switched_back_in_one_change() {
    let sb = External::from_example("blue-green-broken.yaml");
    let wf = workflow(&sb);
    let out = sb.run(&wf, &[]).code(4);

    let batches = changes(&sb);
    assert_eq!(batches.len(), 2, "{batches:#?}");
    assert!(
        batches[0].contains("CREATE app.example.com. CNAME green weight 10"),
        "{}",
        batches[0]
    );
    // The switch back: both sets in the one batch, no 50 % ever.
    assert!(
        batches[1].contains("UPSERT app.example.com. CNAME blue weight 100")
            && batches[1].contains("UPSERT app.example.com. CNAME green weight 0"),
        "{}",
        batches[1]
    );
    assert!(
        !batches.iter().any(|b| b.contains("weight 50")),
        "{batches:#?}"
    );
    let journal = sb.journal();
    assert_eq!(
        points(&journal)
            .iter()
            .map(|(b, g, _, s)| (*b, *g, s.as_str()))
            .collect::<Vec<_>>(),
        [(90, 10, "INSYNC"), (100, 0, "INSYNC")]
    );
    assert_eq!(
        listed_weights(&sb),
        [("blue".to_string(), 100), ("green".to_string(), 0)]
    );
    // The failure names green's error rate, and blue's beside it.
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains("green's error rate is 100%") && said.contains("blue's is 0%"),
        "{said}"
    );
}
