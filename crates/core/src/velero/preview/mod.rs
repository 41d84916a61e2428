//! Restore preview: what a Velero Restore would do to the live cluster, worked out without
//! restoring anything. The backup's tarball is streamed once from S3, through the same reader
//! as verification (and hashed on the way, for the manifest check); every item goes through the
//! Restore's own filters and is compared with the live object: it would be created, updated
//! (with the fields that differ), left unchanged, or skipped, and why.
//!
//! Memory stays bounded like the verifier's: live objects are read a page at a time and only a
//! fingerprint of each wanted one is kept; items stream past one at a time; what grows with the
//! backup is one small record per item.

pub mod compare;
pub mod filter;
pub mod live;
pub mod walk;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::digest::FileDigest;
use super::layout::BackupLocation;
use super::verify::fetch::{self, FetchError};
use super::verify::{Progress, s3io};

/// What a restore would do to one object.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Create,
    Update,
    Unchanged,
    Skip,
    /// The live object could not be read (the reason says why).
    Unknown,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Create,
        Action::Update,
        Action::Unchanged,
        Action::Skip,
        Action::Unknown,
    ];

    /// How the table and the report name it.
    pub fn word(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Unchanged => "unchanged",
            Action::Skip => "skip",
            Action::Unknown => "unknown",
        }
    }
}

/// One object of the backup and what the restore would do to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewItem {
    pub action: Action,
    pub api_version: String,
    pub kind: String,
    /// Where it would be restored (after namespace mapping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// The namespace it was backed up from, when mapping moves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For an object that differs: what would change, `path: live → backup`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
}

impl PreviewItem {
    pub fn new(
        action: Action,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        reason: Option<String>,
    ) -> Self {
        PreviewItem {
            action,
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
            from_namespace: None,
            reason,
            changes: Vec::new(),
        }
    }

    /// `Deployment shop/web`.
    pub fn object(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// Which objects a preview lists one by one. Every object is counted either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Those the restore would create, update, skip, or could not judge: what a person or a
    /// report needs, and what stays small when most of the backup matches the cluster.
    Changes,
    /// Unchanged objects too.
    Everything,
}

/// How the preview went about it, for memory and cost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewStats {
    pub tarball_items: u64,
    pub live_objects_read: u64,
    pub live_pages: u64,
    /// The most live objects held in memory at once: one page.
    pub max_live_objects_held: u64,
}

/// The whole preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    pub backup: String,
    pub existing_resource_policy: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub namespace_mapping: BTreeMap<String, String>,
    /// Objects per action (`create`, `update`, …).
    pub counts: BTreeMap<Action, u64>,
    /// The objects listed one by one, by action, kind, namespace and name: every object, or
    /// every object but the unchanged ones (see [`Listing`]); `counts` counts them all.
    pub items: Vec<PreviewItem>,
    pub stats: PreviewStats,
}

impl Preview {
    pub fn count(&self, action: Action) -> u64 {
        self.counts.get(&action).copied().unwrap_or(0)
    }

    /// `3 to create, 1 to update, 40 unchanged, 2 skipped`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for a in Action::ALL {
            let n = self.count(a);
            if n == 0 && !matches!(a, Action::Create | Action::Update) {
                continue;
            }
            parts.push(match a {
                Action::Create => format!("{n} to create"),
                Action::Update => format!("{n} to update"),
                Action::Unchanged => format!("{n} unchanged"),
                Action::Skip => format!("{n} skipped"),
                Action::Unknown => format!("{n} unknown"),
            });
        }
        parts.join(", ")
    }
}

/// The preview and the digest of the tarball it read.
pub struct Previewed {
    pub preview: Preview,
    /// The tarball's digest, when it was read to its end.
    pub tarball: Option<FileDigest>,
}

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("cannot read `{key}` from S3: {message}")]
    S3 {
        key: String,
        /// The failure in one line, for people (the cause keeps the rest, for the log).
        message: String,
        #[source]
        source: super::verify::VerifyError,
    },
    #[error("`{key}` is not a resource list Velero wrote: {message}")]
    ResourceList { key: String, message: String },
    /// `digest` is the tarball's, when its bytes were all read: the manifest check can still
    /// say whether they changed.
    #[error("the tarball `{key}` could not be read to its end: {message}")]
    Tarball {
        key: String,
        message: String,
        digest: Option<Box<FileDigest>>,
    },
}

/// Changed objects described field by field at most.
pub const MAX_DESCRIBED: usize = 500;

async fn resource_list(
    s3: &aws_sdk_s3::Client,
    location: &BackupLocation,
) -> Result<BTreeMap<String, Vec<String>>, PreviewError> {
    let key = location.resource_list_key();
    let bad = |message: String| PreviewError::ResourceList {
        key: key.clone(),
        message,
    };
    let o = s3io::get(s3, &location.bucket, &key)
        .await
        .map_err(|e| PreviewError::S3 {
            key: key.clone(),
            message: e.message().to_string(),
            source: e,
        })?
        .ok_or_else(|| bad("it is missing".into()))?;
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(&o.bytes[..])
        .take(256 * 1024 * 1024)
        .read_to_end(&mut text)
        .map_err(|e| bad(e.to_string()))?;
    serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))
}

/// Previews restoring the backup at `location` with a Restore whose `spec` is `spec` (the
/// object the tool would create), against the cluster `kube` reaches.
pub async fn preview(
    s3: &aws_sdk_s3::Client,
    kube: &kube::Client,
    location: &BackupLocation,
    spec: &Value,
    listing: Listing,
    progress: Option<Progress<'_>>,
) -> Result<Previewed, PreviewError> {
    let filter = filter::Filter::from_spec(spec);
    let list = resource_list(s3, location).await?;
    let crds: BTreeSet<String> = list
        .iter()
        .filter(|(k, _)| k.ends_with("/CustomResourceDefinition"))
        .flat_map(|(_, v)| v.iter().cloned())
        .collect();
    let live = live::read(kube, &filter, &list).await;
    // The names are no longer needed: the live side keeps fingerprints of the wanted objects.
    drop(list);
    let stats = PreviewStats {
        tarball_items: 0,
        live_objects_read: live.objects_read,
        live_pages: live.pages,
        max_live_objects_held: live.max_held as u64,
    };
    let key = location.tarball_key();
    let size = s3io::list(s3, &location.bucket, &key)
        .await
        .map_err(|e| PreviewError::S3 {
            key: key.clone(),
            message: e.message().to_string(),
            source: e,
        })?
        .get(&key)
        .copied()
        .ok_or_else(|| PreviewError::Tarball {
            key: key.clone(),
            message: "it is missing".into(),
            digest: None,
        })?;
    let policy = filter.existing_resource_policy.clone();
    let mapping = filter.namespace_mapping.clone();
    let walk = Arc::new(walk::Walk {
        filter,
        live,
        client: kube.clone(),
        runtime: tokio::runtime::Handle::current(),
        crds,
        max_described: MAX_DESCRIBED,
        listing,
    });
    let streamed = fetch::stream(s3, &location.bucket, &key, size, true, progress, move |r| {
        walk::run(walk, r)
    })
    .await
    .map_err(|e| PreviewError::Tarball {
        key: key.clone(),
        message: match e {
            FetchError::NotFound => "it is missing".into(),
            FetchError::Failed(m) => m,
        },
        digest: None,
    })?;
    let tarball = streamed.complete.then(|| streamed.digest.clone());
    let walked = streamed.value;
    if let Some(message) = walked.broken {
        return Err(PreviewError::Tarball {
            key,
            message,
            digest: tarball.map(Box::new),
        });
    }
    let mut items = walked.items;
    items.sort_by(|a, b| {
        (a.action, &a.kind, &a.namespace, &a.name).cmp(&(b.action, &b.kind, &b.namespace, &b.name))
    });
    Ok(Previewed {
        preview: Preview {
            backup: location.name.clone(),
            existing_resource_policy: if policy.is_empty() {
                "none".into()
            } else {
                policy
            },
            namespace_mapping: mapping,
            counts: walked.counts,
            items,
            stats: PreviewStats {
                tarball_items: walked.tarball_items,
                ..stats
            },
        },
        tarball,
    })
}
