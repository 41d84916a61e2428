//! Where the tool keeps what must outlive a process: run journals and records of backups it
//! verified. Local by default, under the XDG state directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("no state directory: set `--state-dir`, `XDG_STATE_HOME` or `HOME`")]
    NoHome,
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is damaged: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// The state directory: `--state-dir`, else `$XDG_STATE_HOME/eks-upgrade`, else
/// `~/.local/state/eks-upgrade`.
pub fn state_dir(explicit: Option<&Path>) -> Result<PathBuf, StateError> {
    if let Some(dir) = explicit {
        return Ok(dir.to_path_buf());
    }
    if let Some(xdg) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("eks-upgrade"));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .ok_or(StateError::NoHome)?;
    Ok(PathBuf::from(home).join(".local/state/eks-upgrade"))
}

/// Writes a file atomically: a temporary file in the same directory, flushed to disk, then
/// renamed over the target. A crash leaves either the old or the new content, never half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    use std::io::Write;
    let err = |source| StateError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    tmp.write_all(bytes).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    // The rename is durable only once the directory entry is.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A record that a backup was verified in S3: what `backup restore` relies on outside a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationRecord {
    pub cluster: String,
    pub region: String,
    pub backup: String,
    /// The Backup object's uid when it was verified; a different uid is a different backup.
    pub uid: String,
    pub depth: String,
    pub sound: bool,
    pub verified_at: String,
    pub findings: usize,
    /// SHA-256 of the manifest written beside the backup when it was verified: `backup restore`
    /// refuses when the manifest in the bucket is not these bytes any more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_sha256: Option<String>,
    /// The KMS key ARN that signed the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_signed_by: Option<String>,
}

fn safe(component: &str) -> String {
    component
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn record_path(dir: &Path, region: &str, cluster: &str, backup: &str) -> PathBuf {
    dir.join("verifications")
        .join(safe(region))
        .join(safe(cluster))
        .join(format!("{}.json", safe(backup)))
}

pub fn save_verification(dir: &Path, record: &VerificationRecord) -> Result<(), StateError> {
    let path = record_path(dir, &record.region, &record.cluster, &record.backup);
    let bytes = serde_json::to_vec_pretty(record).map_err(|source| StateError::Corrupt {
        path: path.clone(),
        source,
    })?;
    write_atomic(&path, &bytes)
}

pub fn load_verification(
    dir: &Path,
    region: &str,
    cluster: &str,
    backup: &str,
) -> Result<Option<VerificationRecord>, StateError> {
    let path = record_path(dir, region, cluster, backup);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StateError::Corrupt { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Read { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let record = VerificationRecord {
            cluster: "demo".into(),
            region: "us-east-1".into(),
            backup: "b/../x".into(),
            uid: "u".into(),
            depth: "full".into(),
            sound: true,
            verified_at: "2026-11-24T00:00:00Z".into(),
            findings: 0,
            manifest_sha256: Some("ab".into()),
            manifest_signed_by: None,
        };
        save_verification(dir.path(), &record).unwrap();
        assert_eq!(
            load_verification(dir.path(), "us-east-1", "demo", "b/../x").unwrap(),
            Some(record)
        );
        assert_eq!(
            load_verification(dir.path(), "us-east-1", "demo", "other").unwrap(),
            None
        );
        // The name cannot escape the directory.
        assert!(
            dir.path()
                .join("verifications/us-east-1/demo/b_.._x.json")
                .exists()
        );
    }
}
