//! What stands between a verified backup and a Restore: the files checked against the manifest
//! (refusal when any differs, naming it), and the preview of what the restore would do. The
//! tarball is read once for both: the preview streams it and hashes it on the way.
//!
//! Used by the `veleroRestore` step and by `eks-upgrade backup restore`, so the two behave alike.

use serde_json::Value;

use super::layout::BackupLocation;
use super::manifest::ManifestError;
use super::manifest::check::{self, Checked, Loaded, Trust};
use super::preview::{self, Listing, Preview, PreviewError};
use super::verify::Progress;

/// What the gate found, when it lets the restore through.
#[derive(Debug)]
pub struct Gate {
    /// The manifest the files were checked against; `None` when the backup has none and none
    /// was expected.
    pub manifest: Option<Loaded>,
    pub checked: Checked,
    /// The preview, when asked for. A preview that failed for reasons other than the backup
    /// (the cluster could not be read) does not stop a restore: the error says why.
    pub preview: Option<Result<Preview, PreviewError>>,
}

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// A file differs from the manifest, or the manifest cannot be trusted.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The tarball cannot be read any more: Velero could not restore from it either.
    #[error(transparent)]
    Unreadable(PreviewError),
}

impl GateError {
    /// Whether the backup in the bucket is not what was verified (rather than: it could not be
    /// read or checked just now).
    pub fn is_mismatch(&self) -> bool {
        match self {
            GateError::Manifest(e) => e.is_mismatch(),
            GateError::Unreadable(PreviewError::S3 { .. }) => false,
            GateError::Unreadable(_) => true,
        }
    }

    /// The object in the bucket the refusal is about.
    pub fn key(&self) -> &str {
        match self {
            GateError::Manifest(e) => e.key(),
            GateError::Unreadable(PreviewError::Tarball { key, .. })
            | GateError::Unreadable(PreviewError::S3 { key, .. })
            | GateError::Unreadable(PreviewError::ResourceList { key, .. }) => key,
        }
    }
}

/// Checks the backup at `location` against its manifest and, when `preview` says which objects
/// to list, previews a Restore whose `spec` is `spec`.
#[allow(clippy::too_many_arguments)]
pub async fn check(
    s3: &aws_sdk_s3::Client,
    kms: Option<&aws_sdk_kms::Client>,
    kube: &kube::Client,
    location: &BackupLocation,
    trust: &Trust,
    spec: &Value,
    preview: Option<Listing>,
    progress: Option<Progress<'_>>,
) -> Result<Gate, GateError> {
    let manifest = check::load(s3, kms, location, trust).await?;
    let tarball = location.tarball_key();
    let mut checked = Checked::default();
    if let Some(m) = &manifest {
        let later: Vec<&str> = if preview.is_some() {
            vec![tarball.as_str()]
        } else {
            Vec::new()
        };
        checked = check::check_files(s3, location, &m.manifest, &later).await?;
    }
    let Some(listing) = preview else {
        return Ok(Gate {
            manifest,
            checked,
            preview: None,
        });
    };
    let result = preview::preview(s3, kube, location, spec, listing, progress).await;
    let preview = match result {
        Ok(p) => {
            if let Some(m) = &manifest {
                match &p.tarball {
                    Some(d) => check::check_digest(&m.manifest, d)?,
                    None => {
                        return Err(ManifestError::Changed {
                            key: tarball,
                            what: "it could not be read whole".into(),
                        }
                        .into());
                    }
                }
                checked.hashed.push(location.tarball_key());
            }
            Ok(p.preview)
        }
        Err(PreviewError::Tarball {
            key,
            message,
            digest,
        }) => {
            // Damage shows first as a tarball that no longer inflates; the manifest says which
            // file changed.
            if let (Some(m), Some(d)) = (&manifest, &digest) {
                check::check_digest(&m.manifest, d)?;
            }
            return Err(GateError::Unreadable(PreviewError::Tarball {
                key,
                message,
                digest,
            }));
        }
        Err(e) => {
            // The preview stopped before the tarball: it still has to be checked.
            if let Some(m) = &manifest {
                let size = m.manifest.file(&tarball).map_or(0, |f| f.size);
                let d = check::hash_object(s3, &location.bucket, &tarball, size).await?;
                check::check_digest(&m.manifest, &d)?;
                checked.hashed.push(tarball.clone());
            }
            Err(e)
        }
    };
    Ok(Gate {
        manifest,
        checked,
        preview: Some(preview),
    })
}
