//! The sandbox's Route 53 against clients nobody here wrote: the real `aws route53` CLI and
//! `aws-sdk-route53`. Weighted record sets move as a blue/green switch moves them, a batch is
//! refused whole with Route 53's error codes, and a change is `PENDING` until it propagates.

use std::process::Command;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_sdk_route53::Client;
use aws_sdk_route53::config::retry::RetryConfig;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType,
};
use eks_upgrade_sandbox::world::{ACCESS_KEY, SECRET_KEY};
use serde_json::Value;

use crate::common::{POLL_TIMEOUT, TestSandbox, Timed, poll, poll_async};

/// A zone whose `app` name sends every request to blue. Changes propagate in a minute of
/// emulated time, a tenth of a second here.
const SCENARIO: &str = r#"apiVersion: eks-upgrade/v1
kind: Scenario
metadata: { name: dns }
spec:
  cluster: { name: demo, region: us-east-1, version: "1.33" }
  velero: { installed: false }
  route53:
    hostedZones:
      - name: example.com
        records:
          - { name: app.example.com, type: CNAME, setIdentifier: blue, weight: 100, values: [blue.elb.example.net] }
          - { name: www.example.com, type: A, ttl: 300, values: [192.0.2.10] }
"#;

/// Runs `aws route53 ARGS` against the sandbox: (exit code, stdout, stderr).
fn aws(sb: &TestSandbox, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new("aws")
        .arg("route53")
        .args(args)
        .args(["--output", "json"])
        .envs(sb.env())
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output_timed()
        .expect("the `aws` CLI must be installed for the Route 53 fidelity tests");
    (out.code, out.stdout, out.stderr)
}

fn json(sb: &TestSandbox, args: &[&str]) -> Value {
    let (code, stdout, stderr) = aws(sb, args);
    assert_eq!(code, Some(0), "aws route53 {args:?}:\n{stderr}");
    serde_json::from_str(&stdout).expect("aws prints JSON")
}

/// `(set identifier, weight)` of the zone's weighted sets for `name`, as the CLI lists them.
fn weights(sb: &TestSandbox, zone: &str, name: &str) -> Vec<(String, u64)> {
    let listed = json(sb, &["list-resource-record-sets", "--hosted-zone-id", zone]);
    listed["ResourceRecordSets"]
        .as_array()
        .expect("sets")
        .iter()
        .filter(|r| r["Name"] == name && r["Weight"].is_u64())
        .map(|r| {
            (
                r["SetIdentifier"].as_str().unwrap_or("").to_string(),
                r["Weight"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn batch(sets: &[(&str, &str, u64)]) -> String {
    let changes: Vec<Value> = sets
        .iter()
        .map(|(action, id, weight)| {
            serde_json::json!({
                "Action": action,
                "ResourceRecordSet": {
                    "Name": "app.example.com", "Type": "CNAME", "SetIdentifier": id,
                    "Weight": weight, "TTL": 60,
                    "ResourceRecords": [ { "Value": format!("{id}.elb.example.net") } ],
                },
            })
        })
        .collect();
    serde_json::json!({ "Comment": "blue/green", "Changes": changes }).to_string()
}

#[test]
fn the_aws_cli_moves_weights_and_sees_each_change_propagate() {
    let sb = TestSandbox::start(Some(SCENARIO));
    let zones = json(&sb, &["list-hosted-zones"]);
    let zone = zones["HostedZones"][0]["Id"]
        .as_str()
        .expect("zone id")
        .to_string();
    assert!(zone.starts_with("/hostedzone/Z"), "{zones}");
    assert_eq!(zones["HostedZones"][0]["Name"], "example.com.");
    // NS, SOA and the scenario's two sets.
    assert_eq!(zones["HostedZones"][0]["ResourceRecordSetCount"], 4);

    // 10 % to green: blue's weight and green's new set in one batch.
    let ten = batch(&[("UPSERT", "blue", 90), ("CREATE", "green", 10)]);
    let changed = json(
        &sb,
        &[
            "change-resource-record-sets",
            "--hosted-zone-id",
            &zone,
            "--change-batch",
            &ten,
        ],
    );
    assert_eq!(changed["ChangeInfo"]["Status"], "PENDING", "{changed}");
    assert_eq!(changed["ChangeInfo"]["Comment"], "blue/green");
    let id = changed["ChangeInfo"]["Id"]
        .as_str()
        .expect("change id")
        .to_string();
    assert_eq!(
        weights(&sb, &zone, "app.example.com."),
        [("blue".to_string(), 90), ("green".to_string(), 10)]
    );
    poll("the change to be INSYNC", POLL_TIMEOUT, || {
        let status = json(&sb, &["get-change", "--id", &id]);
        if status["ChangeInfo"]["Status"] == "INSYNC" {
            Ok(())
        } else {
            Err(status.to_string())
        }
    });

    // The same batch again: green exists, so the whole batch is refused and blue keeps 90.
    let again = batch(&[("UPSERT", "blue", 50), ("CREATE", "green", 50)]);
    let (code, _, stderr) = aws(
        &sb,
        &[
            "change-resource-record-sets",
            "--hosted-zone-id",
            &zone,
            "--change-batch",
            &again,
        ],
    );
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("(InvalidChangeBatch)")
            && stderr.contains("[Tried to create resource record set [name='app.example.com.', type='CNAME', set-identifier='green'] but it already exists]"),
        "{stderr}"
    );
    assert_eq!(
        weights(&sb, &zone, "app.example.com."),
        [("blue".to_string(), 90), ("green".to_string(), 10)]
    );

    // A weight Route 53 does not allow, and a zone that does not exist.
    let (_, _, stderr) = aws(
        &sb,
        &[
            "change-resource-record-sets",
            "--hosted-zone-id",
            &zone,
            "--change-batch",
            &batch(&[("UPSERT", "green", 300)]),
        ],
    );
    assert!(
        stderr.contains("(InvalidInput)") && stderr.contains("less than or equal to 255"),
        "{stderr}"
    );
    let (_, _, stderr) = aws(
        &sb,
        &[
            "list-resource-record-sets",
            "--hosted-zone-id",
            "ZNOSUCHZONE",
        ],
    );
    assert!(
        stderr.contains("(NoSuchHostedZone)") && stderr.contains("ZNOSUCHZONE"),
        "{stderr}"
    );
    let writes = sb
        .sandbox
        .world
        .requests
        .snapshot()
        .into_iter()
        .filter(|r| r.service == "route53" && r.operation == "ChangeResourceRecordSets")
        .map(|r| (r.status, r.detail.unwrap_or_default()))
        .collect::<Vec<_>>();
    assert_eq!(
        writes,
        [
            (
                200,
                "UPSERT app.example.com. CNAME blue weight 90; CREATE app.example.com. CNAME green weight 10"
                    .to_string()
            ),
            (400, "error=InvalidChangeBatch".to_string()),
            (400, "error=InvalidInput".to_string()),
        ]
    );
}

async fn client(sb: &TestSandbox) -> Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            ACCESS_KEY, SECRET_KEY, None, None, "sandbox",
        ))
        .endpoint_url(&sb.sandbox.endpoints.route53)
        .retry_config(RetryConfig::disabled())
        .load()
        .await;
    Client::new(&config)
}

fn weighted(id: &str, weight: i64) -> ResourceRecordSet {
    ResourceRecordSet::builder()
        .name("app.example.com")
        .r#type(RrType::Cname)
        .set_identifier(id)
        .weight(weight)
        .ttl(60)
        .resource_records(
            ResourceRecord::builder()
                .value(format!("{id}.elb.example.net"))
                .build()
                .expect("record"),
        )
        .build()
        .expect("record set")
}

fn change(action: ChangeAction, set: ResourceRecordSet) -> Change {
    Change::builder()
        .action(action)
        .resource_record_set(set)
        .build()
        .expect("change")
}

#[test]
fn the_sdk_switches_back_to_blue_in_one_change_and_reads_typed_errors() {
    let sb = TestSandbox::start(Some(SCENARIO));
    sb.block_on(async {
        let c = client(&sb).await;
        let zone = c
            .list_hosted_zones_by_name()
            .dns_name("example.com")
            .send()
            .await
            .expect("zones")
            .hosted_zones()[0]
            .id()
            .to_string();
        // Green at 50 %, then all of it back to blue in one batch: the atomic switch back.
        for sets in [
            vec![
                change(ChangeAction::Upsert, weighted("blue", 50)),
                change(ChangeAction::Create, weighted("green", 50)),
            ],
            vec![
                change(ChangeAction::Upsert, weighted("blue", 100)),
                change(ChangeAction::Upsert, weighted("green", 0)),
            ],
        ] {
            let sent = c
                .change_resource_record_sets()
                .hosted_zone_id(&zone)
                .change_batch(
                    ChangeBatch::builder()
                        .set_changes(Some(sets))
                        .build()
                        .expect("batch"),
                )
                .send()
                .await
                .expect("changed");
            let id = sent
                .change_info()
                .map(|i| i.id().to_string())
                .unwrap_or_default();
            poll_async("the change to be INSYNC", POLL_TIMEOUT, async || {
                let got = c
                    .get_change()
                    .id(&id)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                match got.change_info().map(|i| i.status()) {
                    Some(ChangeStatus::Insync) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            })
            .await;
        }
        let listed = c
            .list_resource_record_sets()
            .hosted_zone_id(&zone)
            .start_record_name("app.example.com")
            .start_record_type(RrType::Cname)
            .max_items(2)
            .send()
            .await
            .expect("listed");
        let got: Vec<(Option<&str>, Option<i64>)> = listed
            .resource_record_sets()
            .iter()
            .map(|r| (r.set_identifier(), r.weight()))
            .collect();
        assert_eq!(got, [(Some("blue"), Some(100)), (Some("green"), Some(0))]);
        assert!(listed.is_truncated(), "www follows");
        assert_eq!(listed.next_record_name(), Some("www.example.com."));

        // Deleting green with a weight it does not have: refused, typed.
        let err = c
            .change_resource_record_sets()
            .hosted_zone_id(&zone)
            .change_batch(
                ChangeBatch::builder()
                    .changes(change(ChangeAction::Delete, weighted("green", 7)))
                    .build()
                    .expect("batch"),
            )
            .send()
            .await
            .expect_err("refused");
        let service = err.into_service_error();
        assert!(service.is_invalid_change_batch(), "{service:?}");
        assert!(
            service
                .to_string()
                .contains("do not match the current values"),
            "{service}"
        );
        let err = c
            .get_change()
            .id("CNOSUCHCHANGE")
            .send()
            .await
            .expect_err("unknown change");
        assert!(err.into_service_error().is_no_such_change());
    });
}

/// The tool's own Route 53 code (`cloud/route53.rs`) against the sandbox: the zone by name,
/// the weights of one name, a move in one batch, a replay refused, the switch back.
#[test]
fn the_tool_moves_every_weight_in_one_batch_and_a_replay_is_refused() {
    use eks_upgrade_core::cloud::route53::{self, Weighted};

    let sb = TestSandbox::start(Some(SCENARIO));
    sb.block_on(async {
        let c = client(&sb).await;
        let zone = route53::zone_id(&c, "Example.com").await.expect("zone");
        assert!(zone.starts_with('Z') && !zone.contains('/'), "{zone}");
        let missing = route53::zone_id(&c, "example.org").await.expect_err("no zone");
        assert_eq!(missing.to_string(), "no public hosted zone `example.org.` in this account");

        let before = route53::weighted(&c, &zone, "app.example.com", "cname")
            .await
            .expect("weights");
        let set = |id: &str, weight: i64| Weighted {
            set_identifier: id.into(),
            weight,
            ttl: 60,
            values: vec![format!("{id}.elb.example.net")],
        };
        assert_eq!(before, [set("blue", 100)]);
        let ten = [set("blue", 90), set("green", 10)];
        let id = route53::move_weights(&c, &zone, "app.example.com", "CNAME", &before, &ten, "10%")
            .await
            .expect("moved")
            .expect("a change was sent");
        route53::wait_insync(&c, &id, Duration::from_millis(50), POLL_TIMEOUT)
            .await
            .expect("INSYNC");
        let now = route53::weighted(&c, &zone, "app.example.com", "CNAME")
            .await
            .expect("weights");
        assert_eq!(now, ten);
        // Nothing to do when the sets already are as desired: no call at all.
        assert_eq!(
            route53::move_weights(&c, &zone, "app.example.com", "CNAME", &now, &ten, "again")
                .await
                .expect("no-op"),
            None
        );
        // A replay from the stale reading: blue is no longer at 100, so Route 53 refuses the
        // whole batch and nothing changes twice.
        let replay = route53::move_weights(&c, &zone, "app.example.com", "CNAME", &before, &ten, "replay")
            .await
            .expect_err("refused");
        assert_eq!(replay.code(), Some("InvalidChangeBatch"), "{replay}");
        assert!(
            replay.to_string().starts_with("Route 53 `ChangeResourceRecordSets` failed: InvalidChangeBatch: [Tried to delete resource record set [name='app.example.com.', type='CNAME', set-identifier='blue'] but the values provided do not match the current values"),
            "{replay}"
        );
        // The switch back: both weights in one change.
        let back = [set("blue", 100), set("green", 0)];
        route53::move_weights(&c, &zone, "app.example.com", "CNAME", &now, &back, "back")
            .await
            .expect("switched back");
        assert_eq!(
            route53::weighted(&c, &zone, "app.example.com", "CNAME")
                .await
                .expect("weights"),
            back
        );
    });
    let batches: Vec<String> = sb
        .sandbox
        .world
        .requests
        .snapshot()
        .into_iter()
        .filter(|r| r.service == "route53" && r.operation == "ChangeResourceRecordSets")
        .map(|r| r.detail.unwrap_or_default())
        .collect();
    assert_eq!(
        batches,
        [
            "DELETE app.example.com. CNAME blue weight 100; CREATE app.example.com. CNAME blue weight 90; CREATE app.example.com. CNAME green weight 10",
            "error=InvalidChangeBatch",
            "DELETE app.example.com. CNAME blue weight 90; CREATE app.example.com. CNAME blue weight 100; DELETE app.example.com. CNAME green weight 10; CREATE app.example.com. CNAME green weight 0",
        ]
    );
}
