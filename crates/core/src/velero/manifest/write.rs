//! Writing the manifest after a sound verification, or, when the backup already has one,
//! holding the files just verified against it: a manifest is written once, and a later
//! verification that finds the files changed is a finding, not a reason to write a new one.

use std::collections::BTreeMap;

use aws_sdk_s3::primitives::ByteStream;

use super::check::{compare, hash_object, read_signature};
use super::sign::{self, Signing};
use super::{Manifest, ManifestError, ManifestRecord, manifest_key, signature_key};
use crate::velero::digest::{FileDigest, sha256_hex};
use crate::velero::layout::BackupLocation;
use crate::velero::verify::{Verification, s3io};

/// What [`record`] did.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub record: ManifestRecord,
    /// `false` when the backup already had a manifest and the files still match it.
    pub created: bool,
    pub manifest: Manifest,
}

async fn put(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
) -> Result<(), ManifestError> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/json")
        .body(ByteStream::from(body))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| ManifestError::Write {
            key: key.to_string(),
            message: crate::errors::sdk("S3", "PutObject", &e),
            source: Box::new(e),
        })
}

/// The digests of every file in the backup's folder: those the verification read, and the
/// rest (the tarball at `metadata` depth, an oversized log) hashed by streaming them.
async fn all_digests(
    s3: &aws_sdk_s3::Client,
    location: &BackupLocation,
    verification: &Verification,
) -> Result<Vec<FileDigest>, ManifestError> {
    let dir = location.dir();
    let present = s3io::list(s3, &location.bucket, &dir)
        .await
        .map_err(|e| ManifestError::read(&dir, e))?;
    let mut by_key: BTreeMap<String, FileDigest> = verification
        .files
        .iter()
        .map(|f| (f.key.clone(), f.clone()))
        .collect();
    for (key, size) in &present {
        if super::is_own_file(location, key) || by_key.contains_key(key) {
            continue;
        }
        by_key.insert(
            key.clone(),
            hash_object(s3, &location.bucket, key, *size).await?,
        );
    }
    by_key.retain(|k, _| present.contains_key(k));
    Ok(by_key.into_values().collect())
}

/// Writes the manifest of a backup that just verified sound (and signs it with `signing`), or
/// checks the files against the manifest it already has.
pub async fn record(
    s3: &aws_sdk_s3::Client,
    kms: Option<&aws_sdk_kms::Client>,
    location: &BackupLocation,
    verification: &Verification,
    signing: Option<&Signing>,
) -> Result<Recorded, ManifestError> {
    let key = manifest_key(location);
    let files = all_digests(s3, location, verification).await?;
    let existing = s3io::get(s3, &location.bucket, &key)
        .await
        .map_err(|e| ManifestError::read(&key, e))?;
    let (manifest, bytes, created) = match existing {
        Some(o) => {
            let manifest: Manifest =
                serde_json::from_slice(&o.bytes).map_err(|e| ManifestError::Invalid {
                    key: key.clone(),
                    message: e.to_string(),
                })?;
            if manifest.backup_uid != verification.uid {
                return Err(ManifestError::Changed {
                    key: location.metadata_key(),
                    what: format!(
                        "the backup's uid is {:?}, the manifest's {:?}",
                        verification.uid, manifest.backup_uid
                    ),
                });
            }
            compare(&manifest, &files)?;
            (manifest, o.bytes, false)
        }
        None => {
            let manifest = Manifest {
                manifest_version: super::MANIFEST_VERSION,
                tool: format!("eks-upgrade {}", env!("CARGO_PKG_VERSION")),
                created_at: chrono::Utc::now().to_rfc3339(),
                bucket: location.bucket.clone(),
                prefix: location.prefix.clone(),
                backup: location.name.clone(),
                backup_uid: verification.uid.clone(),
                item_count: verification.items_in_tarball,
                item_list_sha256: verification.item_list_sha256.clone(),
                files,
            };
            let bytes = manifest.to_bytes();
            put(s3, &location.bucket, &key, bytes.clone()).await?;
            (manifest, bytes, true)
        }
    };

    let mut signed_by = None;
    if let (Some(signing), Some(kms)) = (signing, kms) {
        let sig_key = signature_key(location);
        match read_signature(s3, location).await? {
            Some(sig) if !created => {
                signed_by = Some(sign::verify(kms, &key, &bytes, &sig, &signing.kms_key).await?);
            }
            _ => {
                let sig = sign::sign(kms, &key, &bytes, signing).await?;
                signed_by = Some(sig.key_id.clone());
                let body = serde_json::to_vec_pretty(&sig).unwrap_or_default();
                put(s3, &location.bucket, &sig_key, body).await?;
            }
        }
    }
    Ok(Recorded {
        record: ManifestRecord {
            key,
            sha256: sha256_hex(&bytes),
            signed_by,
            created_at: manifest.created_at.clone(),
        },
        created,
        manifest,
    })
}
