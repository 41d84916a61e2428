//! The tamper-evident manifest of a verified backup: written beside the backup's files in the
//! bucket (`backups/NAME/eks-upgrade-manifest.json`), it records the SHA-256 of every file the
//! verification read, the digest of the item list, the Backup's uid, the time and the tool's
//! version. Every later use of the backup checks the files against it ([`check`]), and the
//! manifest's own SHA-256 is kept where the bucket's writers cannot reach it: the run's journal,
//! or the local record of `backup verify`. Optionally a KMS key signs it ([`sign`]).
//!
//! Velero does not mind the extra object: it reads a backup's files by their exact keys, its
//! sync controller looks only for `velero-backup.json`, location validation looks only at
//! top-level folders, and deleting a backup deletes every key under `backups/NAME/`, this one
//! included.

pub mod check;
pub mod sign;
pub mod write;

use serde::{Deserialize, Serialize};

use super::digest::FileDigest;
use super::layout::BackupLocation;

/// The manifest's file name in the backup's folder.
pub const MANIFEST_FILE: &str = "eks-upgrade-manifest.json";
/// The signature's file name, when the manifest is signed.
pub const SIGNATURE_FILE: &str = "eks-upgrade-manifest.json.sig";
pub const MANIFEST_VERSION: u32 = 1;

/// What the manifest says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub manifest_version: u32,
    /// `eks-upgrade VERSION`.
    pub tool: String,
    pub created_at: String,
    pub bucket: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    pub backup: String,
    /// `metadata.uid` in `velero-backup.json`.
    pub backup_uid: Option<String>,
    /// Items in the tarball, and the SHA-256 of their sorted list (one `apiVersion/Kind
    /// namespace/name` line each), when verification read every item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_list_sha256: Option<String>,
    /// Every file of the backup, sorted by key.
    pub files: Vec<FileDigest>,
}

/// What a run keeps about the manifest it wrote or found: enough to tell later that the
/// manifest in the bucket is still the same bytes, and who signed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestRecord {
    pub key: String,
    /// SHA-256 of the manifest's bytes, lower-case hex.
    pub sha256: String,
    /// The KMS key ARN that signed it, when signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
    pub created_at: String,
}

pub fn manifest_key(location: &BackupLocation) -> String {
    format!("{}{MANIFEST_FILE}", location.dir())
}

pub fn signature_key(location: &BackupLocation) -> String {
    format!("{}{SIGNATURE_FILE}", location.dir())
}

/// Whether a key in the backup's folder is one of the tool's own files rather than Velero's.
pub fn is_own_file(location: &BackupLocation, key: &str) -> bool {
    key == manifest_key(location) || key == signature_key(location)
}

impl Manifest {
    /// The manifest's bytes as written: pretty JSON, so that people can read it in the bucket.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    pub fn file(&self, key: &str) -> Option<&FileDigest> {
        self.files.iter().find(|f| f.key == key)
    }
}

/// Why a backup's files cannot be trusted against its manifest, or could not be checked. Every
/// message names the object concerned.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("the manifest `{key}` is missing: the backup's files cannot be checked")]
    Missing { key: String },
    #[error(
        "the manifest `{key}` changed since it was recorded (SHA-256 `{found}`, recorded `{recorded}`)"
    )]
    Replaced {
        key: String,
        recorded: String,
        found: String,
    },
    #[error("the manifest `{key}` is not valid: {message}")]
    Invalid { key: String, message: String },
    #[error("`{key}` differs from the manifest: {what}")]
    Changed { key: String, what: String },
    #[error("`{key}` is listed in the manifest but is gone from the bucket")]
    Gone { key: String },
    #[error("`{key}` was not in the backup when it was verified")]
    Added { key: String },
    #[error("the signature of the manifest `{key}` does not hold: {message}")]
    Signature { key: String, message: String },
    #[error(
        "cannot check the signature of the manifest `{key}` with KMS key `{kms_key}`: {message}"
    )]
    Verify {
        key: String,
        kms_key: String,
        /// The failure in one line, for people (the cause keeps the rest, for the log).
        message: String,
        #[source]
        source: Source,
    },
    #[error("cannot read `{key}` from S3: {message}")]
    S3 {
        key: String,
        /// The failure in one line, for people (the cause keeps the rest, for the log).
        message: String,
        #[source]
        source: Option<Source>,
    },
    #[error("cannot write `{key}` to S3: {message}")]
    Write {
        key: String,
        message: String,
        #[source]
        source: Source,
    },
    #[error("KMS refused to sign the manifest `{key}` with `{kms_key}`: {message}")]
    Sign {
        key: String,
        kms_key: String,
        message: String,
        #[source]
        source: Option<Source>,
    },
}

/// The cause of a failed call, kept for the debug log.
pub type Source = Box<dyn std::error::Error + Send + Sync>;

impl ManifestError {
    /// Whether the bucket no longer holds what was verified (rather than: it could not be read,
    /// or KMS could not be asked).
    pub fn is_mismatch(&self) -> bool {
        !matches!(
            self,
            ManifestError::S3 { .. }
                | ManifestError::Write { .. }
                | ManifestError::Sign { .. }
                | ManifestError::Verify { .. }
        )
    }

    /// A read that failed in the verifier's S3 helpers, which already put it in one line.
    pub(crate) fn read(key: &str, e: super::verify::VerifyError) -> Self {
        ManifestError::S3 {
            key: key.to_string(),
            message: e.message().to_string(),
            source: Some(Box::new(e)),
        }
    }

    /// A read that failed for a reason already put in one line, with no error to keep.
    pub(crate) fn read_failed(key: &str, message: String) -> Self {
        ManifestError::S3 {
            key: key.to_string(),
            message,
            source: None,
        }
    }

    /// The object the problem is about.
    pub fn key(&self) -> &str {
        match self {
            ManifestError::Missing { key }
            | ManifestError::Replaced { key, .. }
            | ManifestError::Invalid { key, .. }
            | ManifestError::Changed { key, .. }
            | ManifestError::Gone { key }
            | ManifestError::Added { key }
            | ManifestError::Signature { key, .. }
            | ManifestError::Verify { key, .. }
            | ManifestError::S3 { key, .. }
            | ManifestError::Write { key, .. }
            | ManifestError::Sign { key, .. } => key,
        }
    }
}
