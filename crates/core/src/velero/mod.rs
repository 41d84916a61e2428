//! Velero, as the tool uses it: where backups live in the bucket, and their verification.

pub mod backup;
pub mod digest;
pub mod gate;
pub mod layout;
pub mod location;
pub mod manifest;
pub mod objects;
pub mod preview;
pub mod restore;
pub mod server;
pub mod verify;

use serde::Serialize;

/// Where Velero runs, as the workflow's `spec.velero` says (defaults filled in).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// The namespace of the Velero server and its objects.
    pub namespace: String,
    /// The BackupStorageLocation backups go to unless a step names another.
    pub storage_location: String,
}
