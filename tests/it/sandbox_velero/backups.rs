//! Backups: what lands in the bucket and how it hangs together, progress while running, the
//! resource filters, and the backups Velero refuses.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::{
    ItemSet, NS, SIBLINGS, backup, count, eventually, get, gunzip, json_gz, keys, list_items,
    object, restore, rt, tar_entries, tar_items,
};
use crate::common::TestSandbox;

#[test]
fn a_backup_is_internally_consistent_in_the_bucket() {
    let sb = TestSandbox::start(None);
    // A name too long for a plain USTAR header, to exercise long tar paths.
    let long = format!("config-{}", "x".repeat(200));
    sb.sandbox
        .world
        .store
        .create(
            &rt(&sb, "", "configmaps"),
            Some("shop"),
            json!({ "metadata": { "name": long }, "data": { "a": "<&>" } }),
        )
        .expect("configmap");

    let b = backup(&sb, "nightly", json!({}));
    assert_eq!(b["status"]["phase"], "Completed", "{b}");
    assert_eq!(
        b["metadata"]["labels"]["velero.io/storage-location"],
        "default"
    );
    assert_eq!(
        b["metadata"]["annotations"]["velero.io/source-cluster-k8s-minor-version"],
        "33"
    );
    assert_eq!(b["spec"]["ttl"], "720h0m0s");
    assert_eq!(b["spec"]["storageLocation"], "default");
    assert_eq!(b["spec"]["csiSnapshotTimeout"], "10m0s");
    assert_eq!(b["spec"]["itemOperationTimeout"], "4h0m0s");
    assert_eq!(b["status"]["version"], 1);
    assert_eq!(b["status"]["formatVersion"], "1.1.0");
    for field in ["expiration", "startTimestamp", "completionTimestamp"] {
        assert!(b["status"][field].is_string(), "{field}: {b}");
    }
    let backed_up = b["status"]["progress"]["itemsBackedUp"]
        .as_u64()
        .expect("itemsBackedUp");
    assert_eq!(
        b["status"]["progress"]["totalItems"].as_u64(),
        Some(backed_up)
    );

    let dir = "backups/nightly/";
    let mut expected: BTreeSet<String> = SIBLINGS
        .iter()
        .map(|s| format!("{dir}nightly{s}"))
        .collect();
    expected.insert(format!("{dir}velero-backup.json"));
    assert_eq!(keys(&sb, dir), expected);
    for key in expected.iter().filter(|k| k.ends_with(".gz")) {
        gunzip(&object(&sb, key)).unwrap_or_else(|e| panic!("{key} decodes: {e}"));
    }

    let meta: Value = serde_json::from_slice(&object(&sb, &format!("{dir}velero-backup.json")))
        .expect("metadata JSON");
    assert_eq!(meta["kind"], "Backup");
    assert_eq!(meta["apiVersion"], "velero.io/v1");
    assert_eq!(meta["metadata"]["name"], "nightly");
    assert_eq!(meta["metadata"]["uid"], b["metadata"]["uid"]);
    assert_eq!(meta["status"]["phase"], "Completed");
    assert_eq!(meta["status"]["formatVersion"], "1.1.0");
    assert!(meta["status"]["completionTimestamp"].is_string());
    assert_eq!(
        meta["status"]["progress"]["itemsBackedUp"].as_u64(),
        Some(backed_up)
    );

    let entries =
        tar_entries(&object(&sb, &format!("{dir}nightly.tar.gz"))).expect("tarball reads");
    assert_eq!(entries[0].0, "metadata/version");
    assert_eq!(entries[0].2, b"1.1.0\n");
    assert!(
        entries.iter().all(|(_, regular, _)| *regular),
        "regular files only"
    );
    let by_path: BTreeMap<&str, &Vec<u8>> =
        entries.iter().map(|(p, _, b)| (p.as_str(), b)).collect();
    for (path, _, bytes) in &entries {
        let parts: Vec<&str> = path.split('/').collect();
        if parts[0] == "resources" && matches!(parts[2], "cluster" | "namespaces") {
            let twin = entries
                .iter()
                .find(|(p, _, _)| {
                    let q: Vec<&str> = p.split('/').collect();
                    q.len() == parts.len() + 1
                        && q[1] == parts[1]
                        && q[2].ends_with("-preferredversion")
                        && q[3..] == parts[2..]
                })
                .unwrap_or_else(|| panic!("{path} has a preferred-version twin"));
            assert_eq!(&twin.2, bytes, "{path}");
        }
    }
    assert!(
        by_path
            .keys()
            .any(|p| p.len() > 200 && p.ends_with(&format!("{long}.json")))
    );

    let tar = tar_items(&entries);
    let list = list_items(&json_gz(
        &sb,
        &format!("{dir}nightly-resource-list.json.gz"),
    ));
    assert_eq!(tar, list, "tarball items = resource list");
    assert_eq!(
        count(&list) as u64,
        backed_up,
        "resource list = itemsBackedUp"
    );
    assert!(list["apps/v1/Deployment"].contains("shop/web"));
    assert!(list["v1/Namespace"].contains("shop"));
    // A whole-cluster backup takes cluster-scoped objects, nodes included (restores skip them).
    assert!(list.contains_key("v1/Node"));
    assert!(list["velero.io/v1/BackupStorageLocation"].contains("velero/default"));

    let web: Value =
        serde_json::from_slice(by_path["resources/deployments.apps/namespaces/shop/web.json"])
            .expect("item");
    assert_eq!(
        web["status"]["availableReplicas"], 3,
        "items keep their status"
    );
    assert!(web["metadata"]["uid"].is_string());
    assert_eq!(
        json_gz(&sb, &format!("{dir}nightly-results.gz")),
        json!({ "errors": {}, "warnings": {} })
    );
    assert_eq!(
        json_gz(&sb, &format!("{dir}nightly-podvolumebackups.json.gz")),
        Value::Null
    );
    assert_eq!(
        json_gz(&sb, &format!("{dir}nightly-itemoperations.json.gz")),
        json!([])
    );
    let logs =
        String::from_utf8(gunzip(&object(&sb, &format!("{dir}nightly-logs.gz"))).expect("logs"))
            .expect("text");
    assert!(logs.lines().all(|l| l.starts_with("time=\"")), "{logs}");
    assert!(logs.contains("backup=velero/nightly"));
}

#[test]
fn progress_is_reported_while_the_backup_runs() {
    let sb = TestSandbox::start(Some(
        r#"
apiVersion: eks-upgrade/v1
kind: Scenario
metadata: { name: slow-backup }
spec:
  cluster: { name: demo, region: us-east-1, version: "1.33" }
  nodegroups: [ { name: general, nodes: 2 } ]
  workloads:
    - { kind: Deployment, namespace: shop, name: web, replicas: 10 }
    - { kind: Deployment, namespace: shop, name: api, replicas: 10 }
  timings:
    controlPlaneUpdate: 12m
    controlPlaneRollback: 15m
    nodegroupUpdatePerNode: 4m
    addonUpdate: 2m
    backupPerItem: 15s
    restorePerItem: 3s
    statusLag: 5s
"#,
    ));
    let mut changes = sb.sandbox.world.store.subscribe();
    let b = backup(&sb, "slow", json!({}));
    assert_eq!(b["status"]["phase"], "Completed");
    let total = b["status"]["progress"]["totalItems"]
        .as_u64()
        .expect("total");
    let mut phases = Vec::new();
    let mut partial = 0;
    while let Ok(change) = changes.try_recv() {
        if change.resource.plural != "backups" || change.name() != "slow" {
            continue;
        }
        let phase = change.object["status"]["phase"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let done = change.object["status"]["progress"]["itemsBackedUp"]
            .as_u64()
            .unwrap_or(0);
        if phase == "InProgress" && done > 0 && done < total {
            assert_eq!(
                change.object["status"]["progress"]["totalItems"].as_u64(),
                Some(total)
            );
            partial += 1;
        }
        if phases.last() != Some(&phase) {
            phases.push(phase);
        }
    }
    assert!(partial >= 2, "progress updates while InProgress: {partial}");
    assert_eq!(phases, ["", "InProgress", "Finalizing", "Completed"]);
}

#[test]
fn filters_select_what_velero_selects() {
    let sb = TestSandbox::start(None);
    let store = &sb.sandbox.world.store;
    store
        .create(
            &rt(&sb, "", "configmaps"),
            Some("shop"),
            json!({ "metadata": { "name": "private", "labels": { "velero.io/exclude-from-backup": "true" } } }),
        )
        .expect("configmap");
    let list = |name: &str, spec: Value| -> ItemSet {
        let b = backup(&sb, name, spec);
        assert_eq!(b["status"]["phase"], "Completed", "{b}");
        list_items(&json_gz(
            &sb,
            &format!("backups/{name}/{name}-resource-list.json.gz"),
        ))
    };
    let namespaces_of = |items: &ItemSet| -> BTreeSet<String> {
        items
            .values()
            .flatten()
            .filter_map(|e| e.split_once('/').map(|(ns, _)| ns.to_string()))
            .collect()
    };

    let shop = list("shop-only", json!({ "includedNamespaces": ["shop"] }));
    assert_eq!(namespaces_of(&shop), BTreeSet::from(["shop".to_string()]));
    assert_eq!(shop["v1/Namespace"], BTreeSet::from(["shop".to_string()]));
    assert!(
        !shop.contains_key("v1/Node"),
        "no cluster-scoped objects in a namespace backup"
    );
    assert!(
        !shop["v1/ConfigMap"].contains("shop/private"),
        "velero.io/exclude-from-backup"
    );

    let web = list(
        "web-only",
        json!({ "labelSelector": { "matchLabels": { "app.kubernetes.io/name": "web" } } }),
    );
    assert!(web["apps/v1/Deployment"].contains("shop/web"));
    assert!(!web["apps/v1/Deployment"].contains("shop/api"));
    assert!(web["v1/Pod"].iter().all(|p| p.starts_with("shop/web-")));
    assert_eq!(
        web["v1/Namespace"],
        BTreeSet::from(["shop".to_string()]),
        "namespaces of selected items"
    );

    let no_pods = list(
        "no-pods",
        json!({ "includedNamespaces": ["shop"], "excludedResources": ["pods"] }),
    );
    assert!(!no_pods.contains_key("v1/Pod"));
    assert!(no_pods.contains_key("apps/v1/Deployment"));

    let no_system = list("no-system", json!({ "excludedNamespaces": ["kube-*"] }));
    assert!(
        namespaces_of(&no_system)
            .iter()
            .all(|ns| !ns.starts_with("kube-"))
    );
    assert!(!no_system.contains_key("v1/Node"));

    let with_cluster = list(
        "with-cluster",
        json!({ "includedNamespaces": ["shop"], "includeClusterResources": true }),
    );
    assert!(with_cluster.contains_key("v1/Node"));

    // Nothing selected: a tarball with only `metadata/version`, as Velero writes it.
    let empty = list(
        "empty",
        json!({ "labelSelector": { "matchLabels": { "no": "such" } } }),
    );
    assert!(empty.is_empty());
    let entries = tar_entries(&object(&sb, "backups/empty/empty.tar.gz")).expect("tar");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, "metadata/version");
    let r = restore(&sb, "from-empty", json!({ "backupName": "empty" }));
    assert_eq!(r["status"]["phase"], "Completed");
    assert_eq!(r["status"]["warnings"], 1, "zero items to be restored");

    let only_deployments = list(
        "deployments",
        json!({ "includedNamespaces": ["shop", "payments"], "includedNamespaceScopedResources": ["deployments"] }),
    );
    let kinds: BTreeSet<&str> = only_deployments.keys().map(String::as_str).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["apps/v1/Deployment", "v1/Namespace"])
    );
}

#[test]
fn invalid_backups_fail_validation_and_upload_nothing() {
    let sb = TestSandbox::start(None);
    let cases = [
        ("no-location", json!({ "storageLocation": "nope" }), "nope"),
        (
            "mixed",
            json!({ "includedResources": ["pods"], "includedNamespaceScopedResources": ["pods"] }),
            "They cannot be used together",
        ),
        (
            "two-selectors",
            json!({ "labelSelector": { "matchLabels": { "a": "b" } }, "orLabelSelectors": [ { "matchLabels": { "a": "c" } } ] }),
            "only one can be specified",
        ),
        ("bad-ttl", json!({ "ttl": "forever" }), "invalid duration"),
    ];
    for (name, spec, message) in cases {
        let b = backup(&sb, name, spec);
        assert_eq!(b["status"]["phase"], "FailedValidation", "{b}");
        let errors = b["status"]["validationErrors"].to_string();
        assert!(errors.contains(message), "{name}: {errors}");
        assert!(
            keys(&sb, &format!("backups/{name}/")).is_empty(),
            "{name} uploaded nothing"
        );
    }
}

#[test]
fn an_unavailable_location_is_reported_and_blocks_backups() {
    let sb = TestSandbox::start(Some(
        r#"
apiVersion: eks-upgrade/v1
kind: Scenario
metadata: { name: bsl-down }
spec:
  cluster: { name: demo, region: us-east-1, version: "1.33" }
  nodegroups: [ { name: general, nodes: 1 } ]
  velero: { unavailable: true }
"#,
    ));
    let bsl = eventually(&sb, "the location to be validated", || {
        get(
            &sb,
            "velero.io",
            "backupstoragelocations",
            Some(NS),
            "default",
        )
        .filter(|l| l["status"]["phase"].is_string())
    });
    assert_eq!(bsl["status"]["phase"], "Unavailable");
    assert!(
        bsl["status"]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("BackupStorageLocation \"default\" is unavailable:")
    );
    assert!(bsl["status"]["lastValidationTime"].is_string());
    let b = backup(&sb, "blocked", json!({}));
    assert_eq!(b["status"]["phase"], "FailedValidation");
    assert!(
        b["status"]["validationErrors"]
            .to_string()
            .contains("is in Unavailable status")
    );
}

#[test]
fn a_backup_name_already_in_the_bucket_fails() {
    let sb = TestSandbox::start(None);
    let first = backup(&sb, "again", json!({}));
    assert_eq!(first["status"]["phase"], "Completed");
    let before = object(&sb, "backups/again/velero-backup.json");
    // Deleting the CR leaves the bucket as it is, as with Velero.
    sb.sandbox
        .world
        .store
        .delete(&rt(&sb, "velero.io", "backups"), Some(NS), "again")
        .expect("delete");
    let second = backup(&sb, "again", json!({}));
    assert_eq!(second["status"]["phase"], "Failed");
    assert_eq!(
        second["status"]["failureReason"],
        "backup already exists in object storage"
    );
    assert!(second["status"]["completionTimestamp"].is_string());
    assert_eq!(
        object(&sb, "backups/again/velero-backup.json"),
        before,
        "the first backup's files are untouched"
    );
}
