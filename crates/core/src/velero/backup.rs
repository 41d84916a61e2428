//! Creating a Velero Backup and waiting for it, or re-attaching to the one a run already made.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{DynamicObject, ObjectMeta};
use serde::Serialize;
use serde_json::{Value, json};

use super::objects::{
    self, LABEL_CLUSTER, LABEL_MANAGED_BY, LABEL_RUN, MANAGED_BY, Status, WaitError,
};
use crate::types::HumanDuration;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("cannot create Backup `{name}` in namespace `{namespace}`: {message}")]
    Create {
        name: String,
        namespace: String,
        message: String,
    },
    #[error(
        "a Backup named `{name}` already exists and was not made by this run (its run label is {found:?})"
    )]
    NameTaken { name: String, found: Option<String> },
    #[error(transparent)]
    Wait(#[from] WaitError),
}

/// What to back up and where: the options of a Velero Backup the tool creates, from a
/// `veleroBackup` step or `eks-upgrade backup create`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    pub included_namespaces: Option<Vec<String>>,
    pub excluded_namespaces: Vec<String>,
    pub included_resources: Option<Vec<String>>,
    pub excluded_resources: Vec<String>,
    pub label_selector: Option<BTreeMap<String, String>>,
    pub snapshot_volumes: Option<bool>,
    pub ttl: HumanDuration,
    pub storage_location: String,
}

/// The Backup object for `spec`, labelled with the run that makes it.
pub fn backup_object(name: &str, run_id: &str, cluster: &str, step: &BackupSpec) -> DynamicObject {
    let mut labels = BTreeMap::new();
    labels.insert(LABEL_RUN.to_string(), run_id.to_string());
    labels.insert(LABEL_CLUSTER.to_string(), label_value(cluster));
    labels.insert(LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string());
    let mut spec = json!({
        "excludedNamespaces": step.excluded_namespaces,
        "excludedResources": step.excluded_resources,
        // Velero's duration format; `HumanDuration` displays hours, minutes, seconds.
        "ttl": go_duration(step.ttl.0),
        "storageLocation": step.storage_location,
    });
    if let Some(ns) = &step.included_namespaces {
        spec["includedNamespaces"] = json!(ns);
    }
    if let Some(r) = &step.included_resources {
        spec["includedResources"] = json!(r);
    }
    if let Some(sel) = &step.label_selector {
        spec["labelSelector"] = json!({ "matchLabels": sel });
    }
    if let Some(snap) = step.snapshot_volumes {
        spec["snapshotVolumes"] = json!(snap);
    }
    let mut obj = DynamicObject::new(name, &objects::resource("Backup", "backups"));
    obj.metadata = ObjectMeta {
        name: Some(name.to_string()),
        labels: Some(labels),
        ..ObjectMeta::default()
    };
    obj.data = json!({ "spec": spec });
    obj
}

/// Label values are at most 63 characters of a restricted alphabet.
pub fn label_value(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    cleaned
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .chars()
        .take(63)
        .collect()
}

/// A `time.Duration` string as Go prints it (`720h0m0s`).
pub fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    format!("{}h{}m{}s", secs / 3600, (secs % 3600) / 60, secs % 60)
}

/// The result of a finished backup.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupOutcome {
    pub name: String,
    pub namespace: String,
    pub uid: Option<String>,
    pub storage_location: Option<String>,
    pub status: Status,
}

impl BackupOutcome {
    pub fn completed(&self) -> bool {
        self.status.phase.as_deref() == Some("Completed")
    }
}

/// Creates the Backup, or finds the one this run created before (a resumed run must never
/// make a second backup). Returns the object's uid.
pub async fn create_or_adopt(
    client: kube::Client,
    namespace: &str,
    object: &DynamicObject,
    run_id: &str,
) -> Result<DynamicObject, BackupError> {
    let api = objects::backups(client, namespace);
    let name = object.metadata.name.clone().unwrap_or_default();
    match objects::create_or_adopt(&api, object, run_id).await {
        Ok(obj) => Ok(obj),
        Err(objects::AdoptError::Taken { found }) => Err(BackupError::NameTaken { name, found }),
        Err(objects::AdoptError::Api(e)) => Err(BackupError::Create {
            name,
            namespace: namespace.into(),
            message: crate::errors::kube(&e),
        }),
    }
}

/// Waits for the Backup to finish, reporting progress.
pub async fn wait(
    client: kube::Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
    progress: impl FnMut(&Status),
) -> Result<BackupOutcome, BackupError> {
    let api = objects::backups(client, namespace);
    let (obj, status) = objects::wait_terminal(&api, name, timeout, progress).await?;
    Ok(BackupOutcome {
        name: name.to_string(),
        namespace: namespace.to_string(),
        uid: obj.metadata.uid.clone(),
        storage_location: obj
            .data
            .pointer("/spec/storageLocation")
            .and_then(Value::as_str)
            .map(str::to_string),
        status,
    })
}
