//! The tool's own Velero side: verification in S3 against every kind of damage the sandbox's
//! Velero can inflict, each caught with a finding that names the object key.

use eks_upgrade_core::velero::layout::BackupLocation;
use eks_upgrade_core::velero::verify::VerifyDepth;
use eks_upgrade_core::velero::verify::{self, Severity, Verification};
use serde_json::{Value, json};

use crate::common::{POLL_TIMEOUT, TestSandbox, poll};

const NS: &str = "velero";

pub fn scenario(faults: &str) -> String {
    format!(
        r#"apiVersion: eks-upgrade/v1
kind: Scenario
metadata: {{ name: verify }}
spec:
  cluster: {{ name: demo, region: us-east-1, version: "1.33" }}
  nodegroups: [ {{ name: general, nodes: 2 }} ]
  workloads:
    - {{ kind: Deployment, namespace: shop, name: web, replicas: 2 }}
    - {{ kind: StatefulSet, namespace: shop, name: db, replicas: 1 }}
  objects:
    - {{ apiVersion: v1, kind: ConfigMap, metadata: {{ name: settings, namespace: shop }}, data: {{ a: b }} }}
  timings: {{ backupPerItem: 10ms }}
  faults:
    {faults}
"#
    )
}

/// Creates a Backup of namespace `shop` in the sandbox and waits for Velero to finish it.
pub fn backup(sb: &TestSandbox, name: &str) -> Value {
    let store = &sb.sandbox.world.store;
    let rt = store
        .resource("velero.io", "v1", "backups")
        .expect("backups type");
    store
        .create(&rt, Some(NS), json!({ "metadata": { "name": name }, "spec": { "includedNamespaces": ["shop"], "storageLocation": "default" } }))
        .expect("create Backup");
    poll(&format!("Backup `{name}` to finish"), POLL_TIMEOUT, || {
        let b = store.get(&rt, Some(NS), name).expect("get Backup");
        matches!(
            b["status"]["phase"].as_str(),
            Some("Completed" | "PartiallyFailed" | "Failed" | "FailedValidation")
        )
        .then_some(b)
    })
}

fn verify_it(sb: &TestSandbox, name: &str, uid: Option<&str>, depth: VerifyDepth) -> Verification {
    let s3 = eks_upgrade_sandbox::s3_client(&sb.sandbox.endpoints.s3, "us-east-1");
    let loc = BackupLocation {
        bucket: "velero-backups".into(),
        prefix: None,
        name: name.into(),
    };
    sb.block_on(verify::verify(&s3, &loc, uid, depth, None))
        .expect("verification runs")
}

fn errors(v: &Verification) -> Vec<String> {
    v.findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| format!("{} | {}", f.key, f.message))
        .collect()
}

#[track_caller]
fn assert_finding(v: &Verification, key_part: &str, message_part: &str) {
    let errs = errors(v);
    assert!(!v.sound, "expected an unsound backup");
    assert!(
        errs.iter().any(
            |e| e.split(" | ").next().is_some_and(|k| k.contains(key_part))
                && e.contains(message_part)
        ),
        "no finding on `{key_part}` saying `{message_part}`; findings:\n{}",
        errs.join("\n")
    );
}

#[test]
fn a_good_backup_verifies_at_both_depths() {
    let sb = TestSandbox::start(Some(&scenario("{}")));
    let b = backup(&sb, "good");
    assert_eq!(b["status"]["phase"], "Completed");
    let uid = b["metadata"]["uid"].as_str();
    let meta = verify_it(&sb, "good", uid, VerifyDepth::Metadata);
    assert!(meta.sound, "{:?}", meta.findings);
    assert_eq!(meta.items_in_tarball, None);
    let full = verify_it(&sb, "good", uid, VerifyDepth::Full);
    assert!(full.sound, "{:?}", full.findings);
    let backed_up = b["status"]["progress"]["itemsBackedUp"].as_u64();
    assert!(backed_up.is_some_and(|n| n > 5));
    assert_eq!(full.items_in_tarball, backed_up);
    assert_eq!(full.items_in_resource_list, backed_up);
    // A different uid means the files belong to another backup of the same name.
    let other = verify_it(
        &sb,
        "good",
        Some("00000000-0000-0000-0000-000000000000"),
        VerifyDepth::Metadata,
    );
    assert_finding(
        &other,
        "backups/good/velero-backup.json",
        "another backup of the same name",
    );
}

#[test]
fn each_kind_of_damage_is_found_and_named() {
    let cases: [(&str, &str, &str, VerifyDepth); 9] = [
        (
            "{ object: velero-backup.json, fault: missing }",
            "backups/b/velero-backup.json",
            "is missing",
            VerifyDepth::Metadata,
        ),
        (
            "{ object: velero-backup.json, fault: uid-mismatch }",
            "backups/b/velero-backup.json",
            "another backup of the same name",
            VerifyDepth::Metadata,
        ),
        (
            "{ object: velero-backup.json, fault: phase-finalizing }",
            "backups/b/velero-backup.json",
            "`Finalizing`, not `Completed`",
            VerifyDepth::Metadata,
        ),
        (
            "{ object: tarball, fault: truncate }",
            "backups/b/b.tar.gz",
            "",
            VerifyDepth::Full,
        ),
        (
            "{ object: tarball, fault: corrupt }",
            "backups/b/b.tar.gz",
            "corrupt",
            VerifyDepth::Full,
        ),
        (
            "{ object: tarball, fault: extra-item }",
            "backups/b/b.tar.gz",
            "missing from the resource list",
            VerifyDepth::Full,
        ),
        (
            "{ object: tarball, fault: missing-item }",
            "backups/b/b.tar.gz",
            "missing from the tarball",
            VerifyDepth::Full,
        ),
        (
            "{ object: resource-list, fault: truncate }",
            "backups/b/b-resource-list.json.gz",
            "truncated",
            VerifyDepth::Metadata,
        ),
        (
            "{ object: results, fault: missing }",
            "backups/b/b-results.gz",
            "the file is missing",
            VerifyDepth::Metadata,
        ),
    ];
    for (fault, key, message, depth) in cases {
        let sb = TestSandbox::start(Some(&scenario(&format!("bucket: [ {fault} ]"))));
        let b = backup(&sb, "b");
        // Velero says all is well; only the bucket knows better.
        assert_eq!(b["status"]["phase"], "Completed", "{fault}");
        let v = verify_it(&sb, "b", b["metadata"]["uid"].as_str(), depth);
        assert_finding(&v, key, message);
        // What the metadata depth misses, the full depth still finds.
        if depth == VerifyDepth::Metadata {
            assert!(
                !verify_it(&sb, "b", b["metadata"]["uid"].as_str(), VerifyDepth::Full).sound,
                "{fault}"
            );
        }
    }
}

#[test]
fn a_partially_failed_backup_is_not_sound() {
    let sb = TestSandbox::start(Some(&scenario("backupPhase: PartiallyFailed")));
    let b = backup(&sb, "pf");
    assert_eq!(b["status"]["phase"], "PartiallyFailed");
    let v = verify_it(&sb, "pf", b["metadata"]["uid"].as_str(), VerifyDepth::Full);
    assert_finding(&v, "backups/pf/velero-backup.json", "not `Completed`");
    assert_finding(&v, "backups/pf/pf-results.gz", "errors");
}

#[test]
fn findings_are_serializable_for_machines() {
    let sb = TestSandbox::start(Some(&scenario(
        "bucket: [ { object: tarball, fault: missing } ]",
    )));
    let b = backup(&sb, "m");
    let v = verify_it(&sb, "m", b["metadata"]["uid"].as_str(), VerifyDepth::Full);
    let json = serde_json::to_value(&v).expect("serializable");
    assert_eq!(json["sound"], false);
    assert_eq!(json["findings"][0]["severity"], "error");
    assert!(json["findings"].as_array().is_some_and(|f| {
        f.iter()
            .any(|x| x["key"] == "backups/m/m.tar.gz" && x["message"] == "the tarball is missing")
    }));
}

#[test]
fn a_tarball_read_in_ranged_parts_arrives_whole_and_in_order() {
    use eks_upgrade_core::velero::verify::{ranged, stream};
    use std::io::Read;
    let sb = TestSandbox::start(Some(&scenario("{}")));
    backup(&sb, "parts");
    let s3 = eks_upgrade_sandbox::s3_client(&sb.sandbox.endpoints.s3, "us-east-1");
    let key = "backups/parts/parts.tar.gz";
    let whole = sb.block_on(async {
        s3.get_object()
            .bucket("velero-backups")
            .key(key)
            .send()
            .await
            .expect("get the tarball")
            .body
            .collect()
            .await
            .expect("read it")
            .into_bytes()
    });
    assert!(
        whole.len() > 1000,
        "a tarball of several parts: {}",
        whole.len()
    );
    // Odd part sizes, so parts and slices never line up with anything in the file.
    for part in [97u64, 500, whole.len() as u64 + 1] {
        let (tx, mut reader) = stream::channel();
        let reading = std::thread::spawn(move || {
            let mut out = Vec::new();
            reader.read_to_end(&mut out).map(|_| out)
        });
        let mut last = (0, 0);
        let sent = sb
            .block_on(ranged::send(
                &s3,
                "velero-backups",
                key,
                part,
                &tx,
                |r, t| last = (r, t),
            ))
            .unwrap_or_else(|e| panic!("ranged read: {e:?}"));
        drop(tx);
        let got = reading.join().expect("reader thread").expect("read");
        assert_eq!(sent, whole.len() as u64);
        assert_eq!(last, (sent, sent), "progress ends at the size");
        assert!(got == whole, "part size {part}: the bytes differ");
    }
    let (tx, _reader) = stream::channel();
    let missing = sb.block_on(ranged::send(
        &s3,
        "velero-backups",
        "backups/none/none.tar.gz",
        997,
        &tx,
        |_, _| {},
    ));
    assert!(
        matches!(missing, Err(ranged::RangedError::NotFound)),
        "{missing:?}"
    );
}
