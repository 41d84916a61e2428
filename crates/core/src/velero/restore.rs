//! Creating a Velero Restore from a verified backup and waiting for it.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{DynamicObject, ObjectMeta};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::objects::{
    self, LABEL_CLUSTER, LABEL_MANAGED_BY, LABEL_RUN, MANAGED_BY, Status, WaitError,
};

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("cannot create Restore `{name}` in namespace `{namespace}`: {message}")]
    Create {
        name: String,
        namespace: String,
        message: String,
    },
    #[error("a Restore named `{name}` already exists and was not made by this run")]
    NameTaken { name: String },
    #[error(transparent)]
    Wait(#[from] WaitError),
}

/// What a restore does to objects that still exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ExistingResourcePolicy {
    /// Leave them as they are.
    None,
    /// Update them to the backed-up state (default).
    Update,
}

/// What to restore: the options of a Velero Restore the tool creates, from a `veleroRestore`
/// step or `eks-upgrade backup restore`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSpec {
    pub existing_resource_policy: ExistingResourcePolicy,
    pub included_namespaces: Option<Vec<String>>,
    pub excluded_namespaces: Vec<String>,
    /// Backed-up namespace → namespace to restore into (Velero's `namespaceMapping`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub namespace_mapping: BTreeMap<String, String>,
}

/// The Restore object of `backup` for `spec`, labelled with the run that makes it.
pub fn restore_object(
    name: &str,
    backup: &str,
    run_id: &str,
    cluster: &str,
    step: &RestoreSpec,
) -> DynamicObject {
    let mut labels = BTreeMap::new();
    labels.insert(LABEL_RUN.to_string(), run_id.to_string());
    labels.insert(
        LABEL_CLUSTER.to_string(),
        super::backup::label_value(cluster),
    );
    labels.insert(LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string());
    let policy = match step.existing_resource_policy {
        ExistingResourcePolicy::Update => "update",
        ExistingResourcePolicy::None => "none",
    };
    let mut spec = json!({
        "backupName": backup,
        "existingResourcePolicy": policy,
        "excludedNamespaces": step.excluded_namespaces,
        // Velero must not restore its own objects or cluster state the upgrade owns.
        "excludedResources": ["nodes", "events", "events.events.k8s.io", "backups.velero.io", "restores.velero.io", "resticrepositories.velero.io"],
    });
    if let Some(ns) = &step.included_namespaces {
        spec["includedNamespaces"] = json!(ns);
    }
    if !step.namespace_mapping.is_empty() {
        spec["namespaceMapping"] = json!(step.namespace_mapping);
    }
    let mut obj = DynamicObject::new(name, &objects::resource("Restore", "restores"));
    obj.metadata = ObjectMeta {
        name: Some(name.to_string()),
        labels: Some(labels),
        ..ObjectMeta::default()
    };
    obj.data = json!({ "spec": spec });
    obj
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreOutcome {
    pub name: String,
    pub backup: String,
    pub status: Status,
}

impl RestoreOutcome {
    pub fn completed(&self) -> bool {
        self.status.phase.as_deref() == Some("Completed")
    }
}

/// Creates the Restore, or adopts the one this run created before.
pub async fn create_or_adopt(
    client: kube::Client,
    namespace: &str,
    object: &DynamicObject,
    run_id: &str,
) -> Result<DynamicObject, RestoreError> {
    let api = objects::restores(client, namespace);
    let name = object.metadata.name.clone().unwrap_or_default();
    match objects::create_or_adopt(&api, object, run_id).await {
        Ok(obj) => Ok(obj),
        Err(objects::AdoptError::Taken { .. }) => Err(RestoreError::NameTaken { name }),
        Err(objects::AdoptError::Api(e)) => Err(RestoreError::Create {
            name,
            namespace: namespace.into(),
            message: crate::errors::kube(&e),
        }),
    }
}

pub async fn wait(
    client: kube::Client,
    namespace: &str,
    name: &str,
    backup: &str,
    timeout: Duration,
    progress: impl FnMut(&Status),
) -> Result<RestoreOutcome, RestoreError> {
    let api = objects::restores(client, namespace);
    let (_, status) = objects::wait_terminal(&api, name, timeout, progress).await?;
    Ok(RestoreOutcome {
        name: name.to_string(),
        backup: backup.to_string(),
        status,
    })
}
