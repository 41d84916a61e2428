//! Restores: deleted objects come back from the tarball, drift is reverted or left alone by the
//! existing-resource policy, missing backups do not run, and deleting a restore removes its files.

use std::collections::BTreeSet;

use eks_upgrade_sandbox::kube::selector::Selector;
use eks_upgrade_sandbox::kube::store::Subresource;
use eks_upgrade_sandbox::sim::workloads;
use serde_json::json;

use super::{ItemSet, NS, backup, count, eventually, get, json_gz, keys, list_items, restore, rt};
use crate::common::TestSandbox;

fn deployment_available(sb: &TestSandbox, ns: &str, name: &str) -> bool {
    get(sb, "apps", "deployments", Some(ns), name).is_some_and(|d| {
        d["status"]["availableReplicas"].as_u64().is_some()
            && d["status"]["availableReplicas"] == d["spec"]["replicas"]
    })
}

fn restore_list(sb: &TestSandbox, name: &str) -> ItemSet {
    list_items(&json_gz(
        sb,
        &format!("restores/{name}/restore-{name}-resource-list.json.gz"),
    ))
}

#[test]
fn a_restore_brings_back_deleted_objects_from_the_tarball() {
    let sb = TestSandbox::start(None);
    let store = &sb.sandbox.world.store;
    assert_eq!(
        backup(
            &sb,
            "before",
            json!({ "excludedNamespaces": ["kube-system"] })
        )["status"]["phase"],
        "Completed"
    );
    let original = get(&sb, "", "configmaps", Some("shop"), "web-config").expect("configmap");
    store
        .delete(&rt(&sb, "", "configmaps"), Some("shop"), "web-config")
        .expect("delete cm");
    store
        .delete(&rt(&sb, "apps", "deployments"), Some("shop"), "api")
        .expect("delete api");
    store
        .delete(&rt(&sb, "", "namespaces"), None, "payments")
        .expect("delete namespace");
    eventually(&sb, "api's pods to go", || {
        let pods = store
            .list(
                &rt(&sb, "", "pods"),
                Some("shop"),
                &Selector::labels("app.kubernetes.io/name=api").expect("sel"),
            )
            .0;
        pods.is_empty().then_some(())
    });

    let r = restore(&sb, "after", json!({ "backupName": "before" }));
    assert_eq!(r["status"]["phase"], "Completed", "{r}");
    let restored = r["status"]["progress"]["itemsRestored"]
        .as_u64()
        .expect("itemsRestored");
    assert_eq!(
        r["status"]["progress"]["totalItems"].as_u64(),
        Some(restored)
    );
    assert!(r["status"]["completionTimestamp"].is_string());
    assert!(
        r["metadata"]["finalizers"]
            .to_string()
            .contains("restores.velero.io/external-resources-finalizer")
    );

    let cm = get(&sb, "", "configmaps", Some("shop"), "web-config").expect("web-config is back");
    assert_eq!(cm["data"], original["data"]);
    assert_eq!(cm["metadata"]["labels"]["velero.io/backup-name"], "before");
    assert_eq!(cm["metadata"]["labels"]["velero.io/restore-name"], "after");
    assert_ne!(
        cm["metadata"]["uid"], original["metadata"]["uid"],
        "a new object"
    );
    assert!(get(&sb, "", "namespaces", None, "payments").is_some());
    eventually(&sb, "api and gateway to run again", || {
        (deployment_available(&sb, "shop", "api")
            && deployment_available(&sb, "payments", "gateway"))
        .then_some(())
    });

    let dir = "restores/after/";
    let expected: BTreeSet<String> = [
        "restore-after-logs.gz",
        "restore-after-results.gz",
        "restore-after-resource-list.json.gz",
        "restore-after-itemoperations.json.gz",
        "after-volumeinfo.json.gz",
    ]
    .iter()
    .map(|f| format!("{dir}{f}"))
    .collect();
    assert_eq!(keys(&sb, dir), expected);
    let list = restore_list(&sb, "after");
    assert!(list["v1/ConfigMap"].contains("shop/web-config(created)"));
    assert!(list["apps/v1/Deployment"].contains("shop/api(created)"));
    assert!(
        list["apps/v1/Deployment"].contains("shop/web(skipped)"),
        "unchanged objects are left alone"
    );
    assert!(
        list["v1/Pod"].iter().all(|p| p.ends_with("(skipped)")),
        "controllers own their pods"
    );
    assert!(
        !list.contains_key("velero.io/v1/Backup"),
        "Backups are never restored"
    );
    assert_eq!(count(&list) as u64, restored);
    assert_eq!(
        json_gz(&sb, &format!("{dir}restore-after-results.gz")),
        json!({ "errors": {}, "warnings": {} })
    );
}

/// Breaks `shop/web` and edits `shop/web-config` after a backup.
fn drift(sb: &TestSandbox) {
    let store = &sb.sandbox.world.store;
    workloads::set_broken(store, "Deployment", "shop", "web", true).expect("break web");
    store
        .patch(
            &rt(sb, "", "configmaps"),
            Some("shop"),
            "web-config",
            &json!({ "data": { "LOG_LEVEL": "debug", "ADDED": "later" } }),
            Subresource::Main,
        )
        .expect("edit configmap");
    eventually(sb, "web to break", || {
        (!deployment_available(sb, "shop", "web")).then_some(())
    });
}

#[test]
fn a_restore_with_update_reverts_drift_and_repairs_a_broken_workload() {
    let sb = TestSandbox::start(None);
    assert_eq!(
        backup(&sb, "good", json!({ "includedNamespaces": ["shop"] }))["status"]["phase"],
        "Completed"
    );
    let original = get(&sb, "", "configmaps", Some("shop"), "web-config").expect("configmap");
    drift(&sb);

    let r = restore(
        &sb,
        "repair",
        json!({ "backupName": "good", "existingResourcePolicy": "update" }),
    );
    assert_eq!(r["status"]["phase"], "Completed", "{r}");
    let cm = get(&sb, "", "configmaps", Some("shop"), "web-config").expect("configmap");
    assert_eq!(
        cm["data"], original["data"],
        "fields the backup lacks are removed"
    );
    assert_eq!(
        cm["metadata"]["uid"], original["metadata"]["uid"],
        "patched in place"
    );
    let web = get(&sb, "apps", "deployments", Some("shop"), "web").expect("web");
    assert!(
        web["spec"]["template"]["metadata"]["annotations"]
            .get(workloads::BROKEN_ANNOTATION)
            .is_none()
    );
    eventually(&sb, "web to be available again", || {
        deployment_available(&sb, "shop", "web").then_some(())
    });
    let list = restore_list(&sb, "repair");
    assert!(list["apps/v1/Deployment"].contains("shop/web(updated)"));
    assert!(list["v1/ConfigMap"].contains("shop/web-config(updated)"));
    let api = get(&sb, "apps", "deployments", Some("shop"), "api").expect("api");
    assert_eq!(
        api["metadata"]["labels"]["velero.io/restore-name"], "repair",
        "unchanged objects get the labels"
    );
}

#[test]
fn a_restore_with_none_leaves_changed_objects_and_warns() {
    let sb = TestSandbox::start(None);
    assert_eq!(
        backup(&sb, "good", json!({ "includedNamespaces": ["shop"] }))["status"]["phase"],
        "Completed"
    );
    drift(&sb);
    let r = restore(
        &sb,
        "gentle",
        json!({ "backupName": "good", "existingResourcePolicy": "none" }),
    );
    assert_eq!(r["status"]["phase"], "Completed", "{r}");
    assert!(r["status"]["warnings"].as_u64().unwrap_or(0) >= 2, "{r}");
    let cm = get(&sb, "", "configmaps", Some("shop"), "web-config").expect("configmap");
    assert_eq!(cm["data"]["ADDED"], "later", "left as it is");
    assert!(!deployment_available(&sb, "shop", "web"), "still broken");
    let results = json_gz(&sb, "restores/gentle/restore-gentle-results.gz");
    let warnings = results["warnings"]["namespaces"]["shop"].to_string();
    assert!(
        warnings.contains(r#"could not restore, ConfigMap \"web-config\" already exists"#),
        "{warnings}"
    );
    let list = restore_list(&sb, "gentle");
    assert!(list["v1/ConfigMap"].contains("shop/web-config(failed)"));
    assert!(list["apps/v1/Deployment"].contains("shop/api(skipped)"));
}

#[test]
fn restores_of_missing_or_unuploaded_backups_do_not_run() {
    let sb = TestSandbox::start(None);
    let r = restore(&sb, "ghost", json!({ "backupName": "never-made" }));
    assert_eq!(r["status"]["phase"], "FailedValidation");
    assert!(
        r["status"]["validationErrors"]
            .to_string()
            .contains("Error retrieving backup"),
        "{r}"
    );
    let r = restore(&sb, "sourceless", json!({}));
    assert_eq!(r["status"]["phase"], "FailedValidation");
    assert!(
        r["status"]["validationErrors"]
            .to_string()
            .contains("Either a backup or schedule")
    );
    let r = restore(
        &sb,
        "bad-policy",
        json!({ "backupName": "x", "existingResourcePolicy": "replace" }),
    );
    assert!(
        r["status"]["validationErrors"]
            .to_string()
            .contains("Invalid ExistingResourcePolicy: replace")
    );

    // A backup that failed validation exists as a CR but has nothing in the bucket.
    let b = backup(&sb, "invalid", json!({ "storageLocation": "nope" }));
    assert_eq!(b["status"]["phase"], "FailedValidation");
    let r = restore(&sb, "from-invalid", json!({ "backupName": "invalid" }));
    assert_eq!(r["status"]["phase"], "FailedValidation", "{r}");
}

#[test]
fn deleting_a_restore_removes_its_files() {
    let sb = TestSandbox::start(None);
    assert_eq!(
        backup(&sb, "b", json!({ "includedNamespaces": ["shop"] }))["status"]["phase"],
        "Completed"
    );
    assert_eq!(
        restore(&sb, "r", json!({ "backupName": "b" }))["status"]["phase"],
        "Completed"
    );
    assert_eq!(keys(&sb, "restores/r/").len(), 5);
    // What an API server does on DELETE of an object with finalizers.
    sb.sandbox
        .world
        .store
        .patch(
            &rt(&sb, "velero.io", "restores"),
            Some(NS),
            "r",
            &json!({ "metadata": { "deletionTimestamp": "2026-01-01T00:00:00Z" } }),
            Subresource::Main,
        )
        .expect("mark deleted");
    eventually(&sb, "the restore to go", || {
        get(&sb, "velero.io", "restores", Some(NS), "r")
            .is_none()
            .then_some(())
    });
    assert!(keys(&sb, "restores/r/").is_empty());
    assert!(!keys(&sb, "backups/b/").is_empty(), "the backup stays");

    // Deleted outright (no graceful deletion): the finalizer's work still happens.
    assert_eq!(
        restore(&sb, "r2", json!({ "backupName": "b" }))["status"]["phase"],
        "Completed"
    );
    assert_eq!(keys(&sb, "restores/r2/").len(), 5);
    sb.sandbox
        .world
        .store
        .delete(&rt(&sb, "velero.io", "restores"), Some(NS), "r2")
        .expect("delete");
    eventually(&sb, "r2's files to go", || {
        keys(&sb, "restores/r2/").is_empty().then_some(())
    });
}
