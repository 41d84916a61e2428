//! Injected faults: backups that end in another phase, damage to what lands in the bucket, and
//! failing restores.

use serde_json::{Value, json};

use super::{
    backup, count, gunzip, json_gz, keys, list_items, object, restore, tar_entries, tar_items,
};
use crate::common::TestSandbox;

fn scenario_with_faults(faults: &str) -> String {
    format!(
        r#"
apiVersion: eks-upgrade/v1
kind: Scenario
metadata: {{ name: faulty }}
spec:
  cluster: {{ name: demo, region: us-east-1, version: "1.33" }}
  nodegroups: [ {{ name: general, nodes: 2 }} ]
  workloads:
    - {{ kind: Deployment, namespace: shop, name: web, replicas: 2 }}
  faults:
{faults}
"#
    )
}

#[test]
fn backup_phase_faults_end_in_their_phase() {
    let sb = TestSandbox::start(Some(&scenario_with_faults(
        "    backupPhase: PartiallyFailed",
    )));
    let b = backup(&sb, "partial", json!({}));
    assert_eq!(b["status"]["phase"], "PartiallyFailed", "{b}");
    assert_eq!(b["status"]["errors"], 1);
    assert!(b["status"]["completionTimestamp"].is_string());
    let dir = "backups/partial/";
    let meta: Value =
        serde_json::from_slice(&object(&sb, &format!("{dir}velero-backup.json"))).expect("JSON");
    assert_eq!(meta["status"]["phase"], "PartiallyFailed");
    let results = json_gz(&sb, &format!("{dir}partial-results.gz"));
    assert_eq!(
        results["errors"]["namespaces"]["shop"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{results}"
    );
    let list = list_items(&json_gz(
        &sb,
        &format!("{dir}partial-resource-list.json.gz"),
    ));
    let tar = tar_items(&tar_entries(&object(&sb, &format!("{dir}partial.tar.gz"))).expect("tar"));
    assert_eq!(
        count(&list),
        count(&tar) + 1,
        "the failed item is listed but has no file"
    );
    assert_eq!(
        count(&list) as u64,
        b["status"]["progress"]["itemsBackedUp"]
            .as_u64()
            .unwrap_or(0)
    );

    let sb = TestSandbox::start(Some(&scenario_with_faults("    backupPhase: Failed")));
    let b = backup(&sb, "failed", json!({}));
    assert_eq!(b["status"]["phase"], "Failed");
    assert!(
        b["status"]["failureReason"]
            .as_str()
            .unwrap_or("")
            .contains("injected")
    );
    let meta: Value =
        serde_json::from_slice(&object(&sb, "backups/failed/velero-backup.json")).expect("JSON");
    assert_eq!(
        meta["status"]["phase"], "Failed",
        "a run that failed still uploads, as Velero does"
    );
    // Velero restores from any Backup that exists, whatever its phase: the tool must gate.
    let r = restore(&sb, "from-failed", json!({ "backupName": "failed" }));
    assert_eq!(r["status"]["phase"], "Completed", "{r}");

    let sb = TestSandbox::start(Some(&scenario_with_faults(
        "    backupPhase: FailedValidation",
    )));
    let b = backup(&sb, "invalid", json!({}));
    assert_eq!(b["status"]["phase"], "FailedValidation");
    assert!(keys(&sb, "backups/invalid/").is_empty());
    // Its location exists, so Velero accepts the restore and fails on the missing tarball.
    let r = restore(&sb, "from-invalid", json!({ "backupName": "invalid" }));
    assert_eq!(r["status"]["phase"], "Failed", "{r}");
    assert!(
        r["status"]["failureReason"]
            .as_str()
            .unwrap_or("")
            .starts_with("error downloading backup"),
        "{r}"
    );
}

#[test]
fn bucket_faults_damage_what_lands_in_s3_while_the_cr_says_completed() {
    type Check = fn(&TestSandbox, &Value);
    let cases: [(&str, Check); 5] = [
        (
            "    bucket:\n      - { object: tarball, fault: corrupt }\n      - { object: velero-backup.json, fault: uid-mismatch }\n      - { object: results, fault: truncate }\n      - { object: logs, fault: missing }",
            |sb, b| {
                let data = object(sb, "backups/b/b.tar.gz");
                assert_eq!(&data[..2], &[0x1f, 0x8b], "still looks like gzip");
                assert!(
                    gunzip(&data).is_err(),
                    "a corrupted byte inside the gzip stream"
                );
                let meta: Value =
                    serde_json::from_slice(&object(sb, "backups/b/velero-backup.json"))
                        .expect("JSON");
                assert_ne!(meta["metadata"]["uid"], b["metadata"]["uid"]);
                assert!(gunzip(&object(sb, "backups/b/b-results.gz")).is_err());
                assert!(!keys(sb, "backups/b/").contains("backups/b/b-logs.gz"));
            },
        ),
        (
            "    bucket:\n      - { object: tarball, fault: truncate }\n      - { object: velero-backup.json, fault: phase-finalizing }\n      - { object: volumeinfo, fault: missing }",
            |sb, _| {
                assert!(tar_entries(&object(sb, "backups/b/b.tar.gz")).is_err());
                let meta: Value =
                    serde_json::from_slice(&object(sb, "backups/b/velero-backup.json"))
                        .expect("JSON");
                assert_eq!(meta["status"]["phase"], "Finalizing");
                assert!(!keys(sb, "backups/b/").contains("backups/b/b-volumeinfo.json.gz"));
            },
        ),
        (
            "    bucket:\n      - { object: tarball, fault: extra-item }",
            |sb, _| {
                let tar = tar_items(&tar_entries(&object(sb, "backups/b/b.tar.gz")).expect("tar"));
                let list = list_items(&json_gz(sb, "backups/b/b-resource-list.json.gz"));
                assert_eq!(count(&tar), count(&list) + 1);
                assert!(
                    tar["v1/ConfigMap"]
                        .iter()
                        .any(|e| e.ends_with("/sandbox-extra-item"))
                );
            },
        ),
        (
            "    bucket:\n      - { object: tarball, fault: missing-item }\n      - { object: velero-backup.json, fault: corrupt }",
            |sb, b| {
                let tar = tar_items(&tar_entries(&object(sb, "backups/b/b.tar.gz")).expect("tar"));
                let list = list_items(&json_gz(sb, "backups/b/b-resource-list.json.gz"));
                assert_eq!(count(&list), count(&tar) + 1);
                assert_eq!(
                    count(&list) as u64,
                    b["status"]["progress"]["itemsBackedUp"]
                        .as_u64()
                        .unwrap_or(0)
                );
                assert!(
                    serde_json::from_slice::<Value>(&object(sb, "backups/b/velero-backup.json"))
                        .is_err()
                );
            },
        ),
        (
            "    bucket:\n      - { object: tarball, fault: missing }\n      - { object: resource-list, fault: missing-item }",
            |sb, _| {
                assert!(!keys(sb, "backups/b/").contains("backups/b/b.tar.gz"));
                let list = list_items(&json_gz(sb, "backups/b/b-resource-list.json.gz"));
                assert!(
                    list["v1/ConfigMap"]
                        .iter()
                        .any(|e| e.ends_with("/sandbox-phantom-item"))
                );
            },
        ),
    ];
    for (faults, check) in cases {
        let sb = TestSandbox::start(Some(&scenario_with_faults(faults)));
        let b = backup(&sb, "b", json!({}));
        assert_eq!(
            b["status"]["phase"], "Completed",
            "{faults}: the CR still says Completed"
        );
        check(&sb, &b);
    }
}

#[test]
fn the_restore_fails_fault_fails_restores() {
    let sb = TestSandbox::start(Some(&scenario_with_faults("    restoreFails: true")));
    assert_eq!(backup(&sb, "b", json!({}))["status"]["phase"], "Completed");
    let r = restore(&sb, "r", json!({ "backupName": "b" }));
    assert_eq!(r["status"]["phase"], "Failed");
    assert!(
        r["status"]["failureReason"]
            .as_str()
            .unwrap_or("")
            .contains("injected")
    );
    assert!(r["status"]["completionTimestamp"].is_string());
}
