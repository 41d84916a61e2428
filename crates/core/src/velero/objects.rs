//! Velero's custom resources as the tool reads and writes them: `velero.io/v1` Backup, Restore
//! and BackupStorageLocation, through kube's dynamic API (Velero's types are not compiled in).
//!
//! The tool never writes `status`: Velero's CRDs have no status subresource, so a write to
//! `status` would be accepted and would corrupt Velero's bookkeeping.

use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher;
use serde::Serialize;
use serde_json::Value;

/// Labels that link Velero objects to the run that created them.
pub const LABEL_RUN: &str = "eks-upgrade.io/run-id";
pub const LABEL_CLUSTER: &str = "eks-upgrade.io/cluster";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "eks-upgrade";

pub fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("velero.io", "v1", kind), plural)
}

pub fn backups(client: kube::Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client, namespace, &resource("Backup", "backups"))
}

pub fn restores(client: kube::Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client, namespace, &resource("Restore", "restores"))
}

/// Why [`create_or_adopt`] could not give the run its object.
#[derive(Debug)]
pub enum AdoptError {
    /// An object of that name exists with another run's label (`found`), or none.
    Taken { found: Option<String> },
    /// The API server refused the read or the create.
    Api(kube::Error),
}

/// Creates `object`, or returns the one of the same name this run created before (its
/// [`LABEL_RUN`] is `run_id`), so a resumed run never makes a second Backup or Restore.
pub async fn create_or_adopt(
    api: &Api<DynamicObject>,
    object: &DynamicObject,
    run_id: &str,
) -> Result<DynamicObject, AdoptError> {
    let name = object.metadata.name.clone().unwrap_or_default();
    if let Some(existing) = api.get_opt(&name).await.map_err(AdoptError::Api)? {
        let found = existing
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_RUN))
            .cloned();
        return if found.as_deref() == Some(run_id) {
            Ok(existing)
        } else {
            Err(AdoptError::Taken { found })
        };
    }
    api.create(&kube::api::PostParams::default(), object)
        .await
        .map_err(AdoptError::Api)
}

pub fn storage_locations(client: kube::Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client,
        namespace,
        &resource("BackupStorageLocation", "backupstoragelocations"),
    )
}

/// Velero phases that end a Backup or a Restore.
pub const TERMINAL_PHASES: [&str; 4] =
    ["Completed", "PartiallyFailed", "Failed", "FailedValidation"];

/// What a Backup or Restore object says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub uid: Option<String>,
    pub phase: Option<String>,
    pub total_items: Option<u64>,
    /// Items backed up, or for a restore items restored.
    pub items_done: Option<u64>,
    pub errors: u64,
    pub warnings: u64,
    pub validation_errors: Vec<String>,
    pub failure_reason: Option<String>,
    /// Velero 1.18 and later: the backup's place in the queue while it is `Queued`.
    pub queue_position: Option<u64>,
}

impl Status {
    pub fn of(obj: &DynamicObject) -> Status {
        let status = obj.data.get("status").cloned().unwrap_or(Value::Null);
        let num = |ptr: &str| status.pointer(ptr).and_then(Value::as_u64);
        Status {
            uid: obj.metadata.uid.clone(),
            phase: status
                .get("phase")
                .and_then(Value::as_str)
                .map(str::to_string),
            total_items: num("/progress/totalItems"),
            items_done: num("/progress/itemsBackedUp").or_else(|| num("/progress/itemsRestored")),
            errors: num("/errors").unwrap_or(0),
            warnings: num("/warnings").unwrap_or(0),
            validation_errors: status
                .get("validationErrors")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            failure_reason: status
                .get("failureReason")
                .and_then(Value::as_str)
                .map(str::to_string),
            queue_position: num("/queuePosition"),
        }
    }

    pub fn is_terminal(&self) -> bool {
        self.phase
            .as_deref()
            .is_some_and(|p| TERMINAL_PHASES.contains(&p))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("`{name}` did not reach a final phase within {timeout:?} (last phase: {last})")]
    Timeout {
        name: String,
        timeout: Duration,
        last: String,
    },
    #[error("`{name}` was deleted while waiting for it")]
    Deleted { name: String },
    #[error("watching `{name}` failed: {message}")]
    Watch { name: String, message: String },
}

/// Waits by watch (not polling) until the named object reaches a terminal phase, calling
/// `progress` with every status seen. The timeout is the caller's.
pub async fn wait_terminal(
    api: &Api<DynamicObject>,
    name: &str,
    timeout: Duration,
    mut progress: impl FnMut(&Status),
) -> Result<(DynamicObject, Status), WaitError> {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher::watcher(api.clone(), config).boxed();
    let mut last = String::from("none yet");
    let wait = async {
        // Transient watch errors are retried a few times: a long wait outlives API hiccups.
        let mut errors = 0u32;
        while let Some(event) = events.next().await {
            let obj = match event {
                Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => o,
                Ok(watcher::Event::Delete(_)) => {
                    return Err(WaitError::Deleted {
                        name: name.to_string(),
                    });
                }
                Ok(_) => continue,
                Err(e) => {
                    errors += 1;
                    if errors > 5 {
                        return Err(WaitError::Watch {
                            name: name.to_string(),
                            message: crate::errors::chain(&e),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(errors))).await;
                    continue;
                }
            };
            errors = 0;
            let status = Status::of(&obj);
            last = status.phase.clone().unwrap_or_else(|| "New".into());
            progress(&status);
            if status.is_terminal() {
                return Ok((obj, status));
            }
        }
        Err(WaitError::Watch {
            name: name.to_string(),
            message: "the watch ended".into(),
        })
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(result) => result,
        Err(_) => Err(WaitError::Timeout {
            name: name.to_string(),
            timeout,
            last,
        }),
    }
}
