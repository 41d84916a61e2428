//! The backup sync controller and read-only locations: a second cluster sees the backups another
//! cluster wrote (through a `ReadOnly` location on their prefix), restores from them and cannot
//! write there; the bucket is the source of truth for which Backups exist; and a restore that
//! fails in some namespaces ends `PartiallyFailed`.

use serde_json::{Value, json};

use super::{BUCKET, NS, backup, create, eventually, get, json_gz, keys, restore, rt, s3};
use crate::common::TestSandbox;

/// A cluster whose default location keeps its backups under `prefix`, so that another
/// location's prefix is not a stray top-level folder of its own.
fn cluster(prefix: &str, faults: &str) -> TestSandbox {
    TestSandbox::start(Some(&format!(
        r#"
apiVersion: eks-upgrade/v1
kind: Scenario
metadata: {{ name: sync }}
spec:
  cluster: {{ name: demo, region: us-east-1, version: "1.33" }}
  nodegroups: [ {{ name: general, nodes: 2 }} ]
  workloads:
    - {{ kind: Deployment, namespace: shop, name: web, replicas: 2 }}
    - {{ kind: Deployment, namespace: payments, name: ledger, replicas: 1 }}
  velero: {{ prefix: {prefix} }}
  faults: {{ {faults} }}
"#
    )))
}

/// Copies every object under `from` in one sandbox's bucket to `to` in another's: what a
/// second cluster's location on the same bucket and prefix would see.
fn copy(src: &TestSandbox, from: &str, dst: &TestSandbox, to: &str) -> usize {
    let (a, b) = (s3(src), s3(dst));
    let all = keys(src, from);
    for key in &all {
        let body = src.block_on(async {
            a.get_object()
                .bucket(BUCKET)
                .key(key)
                .send()
                .await
                .expect("get")
                .body
                .collect()
                .await
                .expect("body")
                .into_bytes()
        });
        let target = format!("{to}{}", &key[from.len()..]);
        dst.block_on(async {
            b.put_object()
                .bucket(BUCKET)
                .key(&target)
                .body(body.to_vec().into())
                .send()
                .await
                .expect("put")
        });
    }
    all.len()
}

fn delete_all(sb: &TestSandbox, prefix: &str) {
    let client = s3(sb);
    for key in keys(sb, prefix) {
        sb.block_on(async {
            client
                .delete_object()
                .bucket(BUCKET)
                .key(&key)
                .send()
                .await
                .expect("delete")
        });
    }
}

fn backup_cr(sb: &TestSandbox, name: &str) -> Option<Value> {
    get(sb, "velero.io", "backups", Some(NS), name)
}

#[test]
fn a_read_only_location_syncs_another_clusters_backups_and_refuses_new_ones() {
    let blue = cluster("blue", "");
    let written = backup(
        &blue,
        "from-blue",
        json!({ "includedNamespaces": ["shop"] }),
    );
    assert_eq!(written["status"]["phase"], "Completed", "{written}");

    let green = cluster("green", "");
    assert!(
        copy(
            &blue,
            "blue/backups/from-blue/",
            &green,
            "blue/backups/from-blue/"
        ) >= 9,
        "every file of the backup is copied"
    );
    // A location on blue's prefix, as the tool attaches one to a new cluster.
    let mut spec = get(
        &green,
        "velero.io",
        "backupstoragelocations",
        Some(NS),
        "default",
    )
    .expect("green's default location")["spec"]
        .clone();
    spec["objectStorage"]["prefix"] = json!("blue");
    spec["accessMode"] = json!("ReadOnly");
    spec["default"] = json!(false);
    create(&green, "backupstoragelocations", "blue", spec);

    let synced = eventually(&green, "blue's backup to be synced into green", || {
        backup_cr(&green, "from-blue")
    });
    assert_eq!(synced["status"]["phase"], "Completed", "{synced}");
    assert_eq!(synced["spec"]["storageLocation"], "blue");
    assert_eq!(
        synced["metadata"]["labels"]["velero.io/storage-location"],
        "blue"
    );
    assert_eq!(synced["spec"]["includedNamespaces"], json!(["shop"]));
    assert_ne!(
        synced["metadata"]["uid"], written["metadata"]["uid"],
        "the API server gives the synced Backup a uid of its own"
    );
    assert_eq!(
        synced["status"]["completionTimestamp"],
        written["status"]["completionTimestamp"]
    );
    let location = eventually(&green, "the location's last sync time", || {
        get(
            &green,
            "velero.io",
            "backupstoragelocations",
            Some(NS),
            "blue",
        )
        .filter(|l| l["status"]["lastSyncedTime"].is_string())
    });
    assert_eq!(location["status"]["phase"], "Available", "{location}");

    // A read-only location serves restores...
    let r = restore(&green, "into-green", json!({ "backupName": "from-blue" }));
    assert_eq!(r["status"]["phase"], "Completed", "{r}");
    assert!(
        keys(&green, "blue/restores/into-green/")
            .iter()
            .any(|k| k.ends_with("restore-into-green-results.gz")),
        "the restore's files go to the location's prefix"
    );

    // ...and refuses backups, writing nothing.
    let refused = backup(&green, "into-blue", json!({ "storageLocation": "blue" }));
    assert_eq!(refused["status"]["phase"], "FailedValidation", "{refused}");
    assert_eq!(
        refused["status"]["validationErrors"],
        json!([
            "backup can't be created because backup storage location blue is currently in read-only mode"
        ])
    );
    assert!(keys(&green, "blue/backups/into-blue/").is_empty());
    assert!(keys(&green, "green/backups/into-blue/").is_empty());

    // Green's own backups stay its own: blue's location never sees them.
    let own = backup(
        &green,
        "green-own",
        json!({ "includedNamespaces": ["shop"] }),
    );
    assert_eq!(own["status"]["phase"], "Completed", "{own}");
    assert_eq!(
        own["metadata"]["labels"]["velero.io/storage-location"],
        "default"
    );
    assert!(keys(&green, "blue/backups/green-own/").is_empty());
    assert!(!keys(&green, "green/backups/green-own/").is_empty());
}

#[test]
fn the_bucket_decides_which_backups_exist() {
    let sb = cluster("demo", "");
    for name in ["kept", "gone"] {
        assert_eq!(
            backup(&sb, name, json!({ "includedNamespaces": ["shop"] }))["status"]["phase"],
            "Completed"
        );
    }
    let kept_uid = backup_cr(&sb, "kept").expect("kept")["metadata"]["uid"].clone();

    // A folder deleted from storage takes its Backup with it.
    delete_all(&sb, "demo/backups/gone/");
    eventually(&sb, "the Backup whose folder is gone to be deleted", || {
        backup_cr(&sb, "gone").is_none().then_some(())
    });

    // A Backup deleted alone comes back from storage.
    sb.sandbox
        .world
        .store
        .delete(&rt(&sb, "velero.io", "backups"), Some(NS), "kept")
        .expect("delete the Backup");
    let back = eventually(&sb, "the deleted Backup to be synced back", || {
        backup_cr(&sb, "kept")
    });
    assert_eq!(back["status"]["phase"], "Completed", "{back}");
    assert_eq!(
        back["metadata"]["labels"]["velero.io/storage-location"],
        "default"
    );
    assert_ne!(back["metadata"]["uid"], kept_uid);
    assert!(!keys(&sb, "demo/backups/kept/").is_empty());
    // The sync never touched storage.
    assert!(keys(&sb, "demo/backups/gone/").is_empty());
}

#[test]
fn a_restore_partially_fails_in_the_namespaces_the_scenario_names() {
    let sb = cluster("demo", "restoreErrors: [payments]");
    let b = backup(
        &sb,
        "all",
        json!({ "includedNamespaces": ["shop", "payments"] }),
    );
    assert_eq!(b["status"]["phase"], "Completed", "{b}");
    let store = &sb.sandbox.world.store;
    for (ns, name) in [("shop", "web"), ("payments", "ledger")] {
        store
            .delete(&rt(&sb, "apps", "deployments"), Some(ns), name)
            .expect("delete");
    }

    let r = restore(&sb, "r", json!({ "backupName": "all" }));
    assert_eq!(r["status"]["phase"], "PartiallyFailed", "{r}");
    let errors = r["status"]["errors"].as_u64().expect("an error count");
    assert!(errors > 0, "{r}");
    assert!(r["status"]["completionTimestamp"].is_string());

    let results = json_gz(&sb, "demo/restores/r/restore-r-results.gz");
    let by_namespace = results["errors"]["namespaces"]
        .as_object()
        .expect("errors by namespace");
    assert_eq!(
        by_namespace.keys().collect::<Vec<_>>(),
        ["payments"],
        "{results}"
    );
    let messages = by_namespace["payments"].as_array().expect("messages");
    assert_eq!(messages.len() as u64, errors);
    assert!(
        messages.iter().any(|m| m
            .as_str()
            .is_some_and(|m| m.contains("deployments.apps/payments/ledger"))),
        "{messages:?}"
    );
    let list = json_gz(&sb, "demo/restores/r/restore-r-resource-list.json.gz");
    let deployments = list["apps/v1/Deployment"].to_string();
    assert!(deployments.contains("payments/ledger(failed)"), "{list}");
    assert!(deployments.contains("shop/web(created)"), "{list}");
    assert!(get(&sb, "apps", "deployments", Some("shop"), "web").is_some());
    assert!(get(&sb, "apps", "deployments", Some("payments"), "ledger").is_none());
}
