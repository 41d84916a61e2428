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

/// Velero's results file of a restore (`restores/NAME/restore-NAME-results.gz`): its errors and
/// warnings, for Velero itself, for cluster-scoped items and per namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreResults {
    #[serde(default)]
    pub errors: Messages,
    #[serde(default)]
    pub warnings: Messages,
}

/// One part of the results file. Go leaves empty parts out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Messages {
    #[serde(default)]
    pub velero: Vec<String>,
    #[serde(default)]
    pub cluster: Vec<String>,
    #[serde(default)]
    pub namespaces: BTreeMap<String, Vec<String>>,
}

impl Messages {
    pub fn is_empty(&self) -> bool {
        self.velero.is_empty() && self.cluster.is_empty() && self.namespaces.is_empty()
    }

    /// `namespace `shop`: 6 errors (first: …)`, one part per place, at most `shown` messages in
    /// all: what a failure message can carry without becoming the whole file.
    pub fn summary(&self, shown: usize) -> Vec<String> {
        let mut parts = Vec::new();
        let mut add = |place: String, messages: &[String]| {
            if messages.is_empty() {
                return;
            }
            let first = messages.first().map(String::as_str).unwrap_or_default();
            parts.push(if messages.len() == 1 {
                format!("{place}: {first}")
            } else {
                format!("{place}: {} errors (first: {first})", messages.len())
            });
        };
        add("Velero".into(), &self.velero);
        add("cluster-scoped".into(), &self.cluster);
        for (ns, messages) in &self.namespaces {
            add(format!("namespace `{ns}`"), messages);
        }
        let more = parts.len().saturating_sub(shown);
        parts.truncate(shown);
        if more > 0 {
            parts.push(format!("and {more} more"));
        }
        parts
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot read `{key}`: {}", crate::errors::chain(source))]
    Read {
        key: String,
        #[source]
        source: Box<aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::get_object::GetObjectError>>,
    },
    #[error("cannot read `{key}`: {message}")]
    Body { key: String, message: String },
    #[error("`{key}` is not Velero's results file: {source}")]
    Parse {
        key: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The key of a restore's results file under the location's prefix.
pub fn results_key(prefix: Option<&str>, restore: &str) -> String {
    let root = prefix
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty())
        .map(|p| format!("{p}/"))
        .unwrap_or_default();
    format!("{root}restores/{restore}/restore-{restore}-results.gz")
}

/// Reads the results Velero uploaded for a finished restore (what `velero restore describe`
/// shows under `Errors:`).
pub async fn results(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: Option<&str>,
    restore: &str,
) -> Result<RestoreResults, ResultsError> {
    use std::io::Read;
    let key = results_key(prefix, restore);
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(&key)
        .send()
        .await
        .map_err(|source| ResultsError::Read {
            key: key.clone(),
            source: Box::new(source),
        })?;
    let body = object
        .body
        .collect()
        .await
        .map_err(|e| ResultsError::Body {
            key: key.clone(),
            message: e.to_string(),
        })?
        .into_bytes();
    // The file is small; a hostile one is still read at most 4 MiB far.
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(body.as_ref())
        .take(4 * 1024 * 1024)
        .read_to_end(&mut text)
        .map_err(|e| ResultsError::Body {
            key: key.clone(),
            message: format!("not gzip: {e}"),
        })?;
    serde_json::from_slice(&text).map_err(|source| ResultsError::Parse { key, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_read_as_velero_writes_them_and_summed_up_per_place() {
        let text = r#"{"errors":{"namespaces":{"shop":["error restoring a","error restoring b"],"payments":["x"]}},"warnings":{"velero":["w"]}}"#;
        let r: RestoreResults = serde_json::from_str(text).expect("results");
        assert!(r.errors.velero.is_empty());
        assert_eq!(
            r.errors.summary(5),
            [
                "namespace `payments`: x",
                "namespace `shop`: 2 errors (first: error restoring a)"
            ]
        );
        assert_eq!(
            r.errors.summary(1),
            ["namespace `payments`: x", "and 1 more"]
        );
        assert!(!r.warnings.is_empty());
        assert_eq!(
            results_key(Some("/team/"), "r1"),
            "team/restores/r1/restore-r1-results.gz"
        );
        assert_eq!(results_key(None, "r1"), "restores/r1/restore-r1-results.gz");
    }
}
