//! The emulated Velero server: Backups and Restores through the object store, and what lands
//! in the bucket read back through S3 (and the real `aws` CLI), independently of the emulator's
//! own code.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use eks_upgrade::sandbox::kube::selector::Selector;
use eks_upgrade::sandbox::kube::store::{ResourceType, Subresource};
use eks_upgrade::sandbox::sim::workloads;
use serde_json::{Value, json};

use crate::common::TestSandbox;

const NS: &str = "velero";
const BUCKET: &str = "velero-backups";

/// The files of a Velero 1.17 backup under `backups/NAME/`.
const SIBLINGS: [&str; 9] = [
    "-logs.gz",
    ".tar.gz",
    "-podvolumebackups.json.gz",
    "-volumesnapshots.json.gz",
    "-itemoperations.json.gz",
    "-resource-list.json.gz",
    "-results.gz",
    "-volumeinfo.json.gz",
    "-csi-volumesnapshotclasses.json.gz",
];

fn rt(sb: &TestSandbox, group: &str, plural: &str) -> Arc<ResourceType> {
    sb.sandbox
        .world
        .store
        .resource(group, "v1", plural)
        .expect("resource type")
}

fn sleep(sb: &TestSandbox, ms: u64) {
    sb.block_on(async { tokio::time::sleep(Duration::from_millis(ms)).await });
}

/// Polls until `check` returns something; generous, because a hang must fail, not timing.
fn eventually<T>(sb: &TestSandbox, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    for _ in 0..3000 {
        if let Some(v) = check() {
            return v;
        }
        sleep(sb, 10);
    }
    panic!("timed out waiting for: {what}\n{}", velero_state(sb));
}

/// Every Velero object's name and status, for failure messages.
fn velero_state(sb: &TestSandbox) -> String {
    ["backupstoragelocations", "backups", "restores"]
        .iter()
        .flat_map(|plural| {
            let (items, _) = sb.sandbox.world.store.list(
                &rt(sb, "velero.io", plural),
                None,
                &Selector::default(),
            );
            items
                .into_iter()
                .map(move |o| format!("{plural}/{}: {}", o["metadata"]["name"], o["status"]))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn get(sb: &TestSandbox, group: &str, plural: &str, ns: Option<&str>, name: &str) -> Option<Value> {
    sb.sandbox
        .world
        .store
        .get(&rt(sb, group, plural), ns, name)
        .ok()
}

fn create(sb: &TestSandbox, plural: &str, name: &str, spec: Value) -> Value {
    sb.sandbox
        .world
        .store
        .create(
            &rt(sb, "velero.io", plural),
            Some(NS),
            json!({ "metadata": { "name": name }, "spec": spec }),
        )
        .expect("create")
}

/// Waits for a Backup or Restore to reach a terminal phase and returns it.
fn finished(sb: &TestSandbox, plural: &str, name: &str) -> Value {
    eventually(sb, &format!("{plural}/{name} to finish"), || {
        get(sb, "velero.io", plural, Some(NS), name).filter(|o| {
            matches!(
                o["status"]["phase"].as_str(),
                Some("Completed" | "PartiallyFailed" | "Failed" | "FailedValidation")
            )
        })
    })
}

fn backup(sb: &TestSandbox, name: &str, spec: Value) -> Value {
    create(sb, "backups", name, spec);
    finished(sb, "backups", name)
}

fn restore(sb: &TestSandbox, name: &str, spec: Value) -> Value {
    create(sb, "restores", name, spec);
    finished(sb, "restores", name)
}

fn s3(sb: &TestSandbox) -> aws_sdk_s3::Client {
    eks_upgrade::sandbox::s3_client(&sb.sandbox.endpoints.s3, "us-east-1")
}

fn keys(sb: &TestSandbox, prefix: &str) -> BTreeSet<String> {
    let client = s3(sb);
    sb.block_on(async {
        client
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix(prefix)
            .send()
            .await
            .expect("list")
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    })
}

fn object(sb: &TestSandbox, key: &str) -> Vec<u8> {
    let client = s3(sb);
    sb.block_on(async {
        let out = client
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get {key}: {e:?}"));
        out.body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .to_vec()
    })
}

fn gunzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data).read_to_end(&mut out)?;
    Ok(out)
}

fn json_gz(sb: &TestSandbox, key: &str) -> Value {
    let data = gunzip(&object(sb, key)).unwrap_or_else(|e| panic!("{key} decodes: {e}"));
    serde_json::from_slice(&data).unwrap_or_else(|e| panic!("{key} is JSON: {e}"))
}

/// Every tar entry: (path, type is regular file, bytes).
fn tar_entries(data: &[u8]) -> std::io::Result<Vec<(String, bool, Vec<u8>)>> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(data));
    let mut out = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let regular = entry.header().entry_type().is_file();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        out.push((path, regular, bytes));
    }
    Ok(out)
}

type ItemSet = BTreeMap<String, BTreeSet<String>>;

/// The resource-list view of a tarball: unversioned item files, by `apiVersion/Kind`.
fn tar_items(entries: &[(String, bool, Vec<u8>)]) -> ItemSet {
    let mut out = ItemSet::new();
    for (path, _, bytes) in entries {
        let parts: Vec<&str> = path.split('/').collect();
        let unversioned = parts.len() >= 4
            && parts[0] == "resources"
            && matches!(parts[2], "cluster" | "namespaces");
        if !unversioned {
            continue;
        }
        let item: Value = serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
        let key = format!(
            "{}/{}",
            item["apiVersion"].as_str().unwrap_or(""),
            item["kind"].as_str().unwrap_or("")
        );
        let name = item["metadata"]["name"].as_str().unwrap_or("");
        let entry = match item["metadata"]["namespace"].as_str() {
            Some(ns) if parts[2] == "namespaces" => {
                assert_eq!(parts[3], ns, "{path}");
                format!("{ns}/{name}")
            }
            _ => name.to_string(),
        };
        assert!(
            path.ends_with(&format!("/{name}.json")),
            "{path} names its item"
        );
        out.entry(key).or_default().insert(entry);
    }
    out
}

fn list_items(list: &Value) -> ItemSet {
    list.as_object()
        .expect("resource list is an object")
        .iter()
        .map(|(k, v)| {
            let entries = v
                .as_array()
                .expect("array")
                .iter()
                .map(|e| e.as_str().unwrap_or("").to_string())
                .collect();
            (k.clone(), entries)
        })
        .collect()
}

fn count(items: &ItemSet) -> usize {
    items.values().map(BTreeSet::len).sum()
}

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
        .output()
        .expect("the aws CLI is installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "aws s3 ls failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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
