//! Blue/green end to end, the run as a whole: a kill between two weight changes, the plan,
//! what becomes of blue at the end, and the lock on green.

use serde_json::Value;

use super::super::upgrade::aws;
use super::super::{External, redact};
use super::{bg_workflow, journal_points};
use crate::common::{POLL_TIMEOUT, Timed, poll};

/// The weight changes the journal recorded, as (blue, green, change id).
fn points(sb: &External) -> Vec<(i64, i64, Option<String>)> {
    journal_points(&sb.journal())
}

#[test]
fn killed_between_two_weight_changes_resumes_without_repeating_a_change_or_a_second_green() {
    let sb = External::from_example("blue-green.yaml");
    // A long hold keeps the run between the first and the second weight change.
    let wf = bg_workflow(sb.dir.path(), |t| t.replace("hold: 5m", "hold: 2h"));
    let mut run = sb.run_workflow(&wf, &[]).spawn();
    poll("the first stage to be INSYNC", POLL_TIMEOUT, || {
        let insync = sb.journal_so_far().is_some_and(|j| {
            j["facts"]["traffic"]
                .as_array()
                .is_some_and(|p| p.len() == 1 && p[0]["status"] == "INSYNC")
        });
        run.check(insync)
    });
    let before = points(&sb);
    run.kill();
    let resumed = sb
        .eks_upgrade(&["resume", "--yes", "--time-scale", "600", "--ignore-window"])
        .run()
        .code(0);
    assert!(
        resumed.stderr.contains("resuming run"),
        "{}",
        resumed.stderr
    );
    assert_eq!(sb.count("eks", "CreateCluster"), 1, "exactly one green");
    assert_eq!(
        sb.count("route53", "ChangeResourceRecordSets"),
        3,
        "one change per stage, none repeated"
    );
    let after = points(&sb);
    assert_eq!(after.len(), 3, "{after:?}");
    assert_eq!(
        after[0], before[0],
        "the first stage's change is the one made before the kill"
    );
    assert_eq!((after[2].0, after[2].1), (0, 100));
}

#[test]
fn plan_shows_both_clusters_and_every_dns_change() {
    let sb = External::from_example("blue-green.yaml");
    let wf = bg_workflow(sb.dir.path(), |t| t);
    let out = sb
        .eks_upgrade(&["plan", wf.to_str().expect("utf-8"), "--cluster", "demo"])
        .run()
        .code(0);
    assert!(
        out.stdout.contains("to green `demo-1-35`"),
        "{}",
        out.stdout
    );
    insta::assert_snapshot!(redact(&out.stdout));
    // Planning changes nothing on either side.
    let writes: Vec<Value> = sb.writes_since(0);
    assert!(writes.is_empty(), "{writes:#?}");
}

#[test]
fn the_printed_retire_commands_delete_blue_when_a_person_runs_them() {
    let sb = External::from_example("blue-green.yaml");
    let wf = bg_workflow(sb.dir.path(), |t| t);
    let report = sb.dir.path().join("report.json");
    sb.run(&wf, &["--report", report.to_str().expect("utf-8")])
        .code(0);
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("the report")).expect("JSON");
    let bg = &report["blueGreen"];
    assert_eq!(bg["green"]["name"], "demo-1-35");
    assert_eq!(bg["retire"], "keep");

    // What Route 53 serves is what the report says, and every change it names is INSYNC.
    let last = bg["traffic"]
        .as_array()
        .and_then(|p| p.last())
        .expect("weight changes")
        .clone();
    let zone = aws(
        &sb,
        "route53 list-hosted-zones-by-name --dns-name example.com",
    );
    let zone_id = zone["HostedZones"][0]["Id"]
        .as_str()
        .expect("a zone")
        .to_string();
    let sets = aws(
        &sb,
        &format!("route53 list-resource-record-sets --hosted-zone-id {zone_id}"),
    );
    let weight = |id: &str| {
        sets["ResourceRecordSets"]
            .as_array()
            .and_then(|s| s.iter().find(|r| r["SetIdentifier"] == id))
            .map(|r| r["Weight"].clone())
    };
    assert_eq!(weight("blue"), Some(last["blue"].clone()));
    assert_eq!(weight("green"), Some(last["green"].clone()));
    for p in bg["traffic"].as_array().expect("points") {
        let id = p["changeId"].as_str().expect("a change id");
        let change = aws(&sb, &format!("route53 get-change --id {id}"));
        assert_eq!(change["ChangeInfo"]["Status"], "INSYNC", "{id}");
    }

    // Blue is still there, with no traffic; the printed commands delete it.
    assert_eq!(sb.cluster_version("demo"), "1.33");
    let commands: Vec<String> = bg["retireCommands"]
        .as_array()
        .expect("commands")
        .iter()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    assert!(
        commands.iter().any(|c| c.contains("delete-cluster")),
        "{commands:?}"
    );
    let mut bash = std::process::Command::new("bash");
    bash.arg("-euc")
        .arg(commands.join("\n"))
        .env_remove("AWS_PROFILE");
    for (k, v) in &sb.env {
        bash.env(k, v);
    }
    let out = bash.output_timed().expect("bash");
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let clusters = aws(&sb, "eks list-clusters");
    assert_eq!(clusters["clusters"], serde_json::json!(["demo-1-35"]));
    let sets = aws(
        &sb,
        &format!("route53 list-resource-record-sets --hosted-zone-id {zone_id}"),
    );
    assert!(
        !sets["ResourceRecordSets"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r["SetIdentifier"] == "blue")),
        "blue's set is gone: {sets}"
    );
}

#[test]
fn retire_delete_after_approval_deletes_blue() {
    let sb = External::from_example("blue-green.yaml");
    let wf = bg_workflow(sb.dir.path(), |t| {
        t.replace(
            "    - id: retire\n      retireBlue: { retire: keep }",
            "    - id: approve-retire\n      approval: { message: Delete blue? }\n    - id: retire\n      retireBlue: { retire: delete }",
        )
    });
    let out = sb.run(&wf, &[]).code(0);
    assert!(out.stderr.contains("is deleted"), "{}", out.stderr);
    let clusters = aws(&sb, "eks list-clusters");
    assert_eq!(clusters["clusters"], serde_json::json!(["demo-1-35"]));
    assert_eq!(sb.count("eks", "DeleteCluster"), 1);
}

#[test]
fn a_second_run_is_refused_while_the_first_holds_green() {
    let sb = External::from_example("blue-green.yaml");
    // A long soak keeps the first run on green.
    let wf = bg_workflow(sb.dir.path(), |t| {
        t.replace("duration: 1h", "duration: 20h")
    });
    let mut first = sb.run_workflow(&wf, &[]).spawn();
    poll("the soak to start", POLL_TIMEOUT, || {
        let soaking = sb.journal_so_far().is_some_and(|j| {
            j["steps"]
                .as_array()
                .is_some_and(|s| s.iter().any(|x| x["key"]["id"] == "soak"))
        });
        first.check(soaking)
    });
    let in_place = crate::common::repo().join("workflows/in-place.yaml");
    let second = sb
        .eks_upgrade(&[
            "run",
            in_place.to_str().expect("utf-8"),
            "--cluster",
            "demo-1-35",
            "--yes",
            "--time-scale",
            "600",
            "--ignore-window",
            "--state-dir",
            sb.dir.path().join("second").to_str().expect("utf-8"),
        ])
        .run()
        .code(3);
    assert!(
        second.stderr.contains("another run holds the cluster"),
        "{}",
        second.stderr
    );
    first.kill();
}
