//! Velero, as the tool uses it: where backups live in the bucket, and their verification.

pub mod backup;
pub mod layout;
pub mod location;
pub mod objects;
pub mod restore;
pub mod verify;
