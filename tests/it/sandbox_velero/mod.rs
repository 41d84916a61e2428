//! The emulated Velero server: Backups and Restores through the object store, and what lands
//! in the bucket read back through S3 (and the real `aws` CLI), independently of the emulator's
//! own code.
//!
//! By topic: `backups` (what a backup writes, its progress, filters and refusals), `faults`
//! (injected backup, bucket and restore failures), `queue` (Velero 1.18's backup queue),
//! `restores`, `storage` (location prefixes, the `aws` CLI, multipart uploads), and `sync` (the
//! backup sync controller, read-only locations, partly failed restores).

mod backups;
mod faults;
mod queue;
mod restores;
mod storage;
mod sync;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::Arc;

use eks_upgrade_sandbox::kube::selector::Selector;
use eks_upgrade_sandbox::kube::store::ResourceType;
use serde_json::{Value, json};

use crate::common::{POLL_TIMEOUT, TestSandbox, poll};

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

/// [`poll`] with every Velero object's status in the message if it times out.
fn eventually<T>(sb: &TestSandbox, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    poll(what, POLL_TIMEOUT, || {
        check().ok_or_else(|| velero_state(sb))
    })
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
    eks_upgrade_sandbox::s3_client(&sb.sandbox.endpoints.s3, "us-east-1")
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
