//! The bucket as other tools see it: a location prefix holds every key, the real `aws` CLI lists
//! a backup's files, and a large tarball is uploaded in parts.

use std::collections::BTreeSet;

use serde_json::json;

use super::{
    BUCKET, SIBLINGS, backup, json_gz, keys, list_items, object, restore, rt, s3, tar_entries,
    tar_items,
};
use crate::common::{TestSandbox, Timed};

#[test]
fn a_location_prefix_holds_every_key() {
    let sb = TestSandbox::start(Some(
        r#"
apiVersion: eks-upgrade/v1
kind: Scenario
metadata: { name: prefixed }
spec:
  cluster: { name: demo, region: us-east-1, version: "1.33" }
  nodegroups: [ { name: general, nodes: 1 } ]
  velero: { prefix: team-a }
"#,
    ));
    assert_eq!(backup(&sb, "b", json!({}))["status"]["phase"], "Completed");
    assert_eq!(
        restore(&sb, "r", json!({ "backupName": "b" }))["status"]["phase"],
        "Completed"
    );
    let all = keys(&sb, "");
    assert!(all.iter().all(|k| k.starts_with("team-a/")), "{all:?}");
    assert!(all.contains("team-a/backups/b/velero-backup.json"));
    assert!(all.contains("team-a/restores/r/restore-r-logs.gz"));
}

#[test]
fn the_aws_cli_lists_a_backup_files() {
    let sb = TestSandbox::start(None);
    assert_eq!(
        backup(&sb, "cli", json!({ "includedNamespaces": ["shop"] }))["status"]["phase"],
        "Completed"
    );
    let out = std::process::Command::new("aws")
        .args(["s3", "ls", "s3://velero-backups/backups/", "--recursive"])
        .envs(sb.env())
        .output_timed()
        .expect("the aws CLI is installed");
    let stdout = &out.stdout;
    assert!(out.code == Some(0), "aws s3 ls failed: {}", out.stderr);
    let listed: BTreeSet<&str> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    let mut expected: BTreeSet<String> = SIBLINGS
        .iter()
        .map(|s| format!("backups/cli/cli{s}"))
        .collect();
    expected.insert("backups/cli/velero-backup.json".into());
    assert_eq!(
        listed,
        expected
            .iter()
            .map(String::as_str)
            .collect::<BTreeSet<&str>>()
    );
}

#[test]
fn a_large_tarball_is_streamed_to_s3_in_parts() {
    let sb = TestSandbox::start(None);
    let store = &sb.sandbox.world.store;
    store
        .create(
            &rt(&sb, "", "namespaces"),
            None,
            json!({ "metadata": { "name": "bulk" } }),
        )
        .expect("namespace");
    // Incompressible data, so the tarball spans several 5 MiB upload parts.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for i in 0..16 {
        let blob: String = (0..256 * 1024)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                char::from(b'!' + (seed % 90) as u8)
            })
            .collect();
        store
            .create(
                &rt(&sb, "", "configmaps"),
                Some("bulk"),
                json!({ "metadata": { "name": format!("blob-{i:02}") }, "data": { "blob": blob } }),
            )
            .expect("configmap");
    }
    let b = backup(&sb, "bulk", json!({ "includedNamespaces": ["bulk"] }));
    assert_eq!(b["status"]["phase"], "Completed", "{b}");
    let key = "backups/bulk/bulk.tar.gz";
    let client = s3(&sb);
    let head = sb
        .block_on(client.head_object().bucket(BUCKET).key(key).send())
        .expect("head");
    assert!(head.content_length().unwrap_or(0) > 5 * 1024 * 1024);
    let etag = head.e_tag().unwrap_or("").trim_matches('"').to_string();
    assert!(etag.contains('-'), "a multipart upload's ETag: {etag}");
    let entries = tar_entries(&object(&sb, key)).expect("tarball reads");
    let list = list_items(&json_gz(&sb, "backups/bulk/bulk-resource-list.json.gz"));
    assert_eq!(tar_items(&entries), list);
    assert_eq!(list["v1/ConfigMap"].len(), 16);
}
