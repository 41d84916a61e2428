//! Checking a backup's files against its manifest before they are used.
//!
//! The manifest itself is trusted through what the bucket's writers cannot change: its SHA-256
//! recorded in the run's journal (or the local record of `backup verify`), and, when a KMS key
//! is named, a signature only that key can make. The files are then checked cheaply: an object
//! whose ETag was its MD5 when the manifest was written needs only a HEAD now (S3 computes the
//! ETag; a rewritten object gets a new one), so does one whose full-object SHA-256 checksum S3
//! keeps; every other object is read once and hashed as it streams. The tarball is left to the
//! caller when the caller streams it anyway (the restore preview), and compared afterwards
//! with [`check_digest`].

use std::collections::BTreeMap;

use aws_sdk_s3::types::ChecksumMode;
use base64::Engine;
use serde::Serialize;

use super::sign::{self, SignatureFile};
use super::{Manifest, ManifestError, manifest_key, signature_key};
use crate::velero::digest::{FileDigest, sha256_hex};
use crate::velero::layout::BackupLocation;
use crate::velero::verify::fetch::{self, FetchError};
use crate::velero::verify::s3io;

/// What the caller trusts about the manifest.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// The manifest's SHA-256 as recorded outside the bucket.
    pub sha256: Option<String>,
    /// A KMS key whose signature the manifest must carry.
    pub kms_key: Option<String>,
}

impl Trust {
    /// Whether anything is expected of the manifest: then a missing one is a refusal.
    pub fn expects_manifest(&self) -> bool {
        self.sha256.is_some() || self.kms_key.is_some()
    }
}

/// A manifest read and trusted.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub manifest: Manifest,
    pub key: String,
    pub sha256: String,
    pub signed_by: Option<String>,
}

/// How each file was found to match.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Checked {
    /// Matched by HEAD alone (ETag known to be the MD5, or S3's full-object SHA-256).
    pub by_head: Vec<String>,
    /// Read and hashed.
    pub hashed: Vec<String>,
}

pub async fn read_signature(
    s3: &aws_sdk_s3::Client,
    location: &BackupLocation,
) -> Result<Option<SignatureFile>, ManifestError> {
    let key = signature_key(location);
    let Some(o) = s3io::get(s3, &location.bucket, &key)
        .await
        .map_err(|e| ManifestError::read(&key, e))?
    else {
        return Ok(None);
    };
    serde_json::from_slice(&o.bytes)
        .map(Some)
        .map_err(|e| ManifestError::Invalid {
            key,
            message: e.to_string(),
        })
}

/// Reads the manifest and establishes trust in it. `None` when there is none and none was
/// expected.
pub async fn load(
    s3: &aws_sdk_s3::Client,
    kms: Option<&aws_sdk_kms::Client>,
    location: &BackupLocation,
    trust: &Trust,
) -> Result<Option<Loaded>, ManifestError> {
    let key = manifest_key(location);
    let Some(o) = s3io::get(s3, &location.bucket, &key)
        .await
        .map_err(|e| ManifestError::read(&key, e))?
    else {
        return if trust.expects_manifest() {
            Err(ManifestError::Missing { key })
        } else {
            Ok(None)
        };
    };
    let sha256 = sha256_hex(&o.bytes);
    if let Some(recorded) = &trust.sha256
        && *recorded != sha256
    {
        return Err(ManifestError::Replaced {
            key,
            recorded: recorded.clone(),
            found: sha256,
        });
    }
    let mut signed_by = None;
    if let Some(kms_key) = &trust.kms_key {
        let Some(sig) = read_signature(s3, location).await? else {
            return Err(ManifestError::Signature {
                key,
                message: format!(
                    "the manifest is not signed, and a signature by `{kms_key}` is required"
                ),
            });
        };
        let Some(kms) = kms else {
            return Err(ManifestError::Signature {
                key,
                message: "no KMS client to check the signature with".into(),
            });
        };
        signed_by = Some(sign::verify(kms, &key, &o.bytes, &sig, kms_key).await?);
    }
    let manifest: Manifest =
        serde_json::from_slice(&o.bytes).map_err(|e| ManifestError::Invalid {
            key: key.clone(),
            message: e.to_string(),
        })?;
    if manifest.backup != location.name || manifest.bucket != location.bucket {
        return Err(ManifestError::Invalid {
            key,
            message: format!(
                "it describes backup `{}` in bucket `{}`",
                manifest.backup, manifest.bucket
            ),
        });
    }
    Ok(Some(Loaded {
        manifest,
        key,
        sha256,
        signed_by,
    }))
}

/// Holds current digests against the manifest: the same files, the same bytes.
pub fn compare(manifest: &Manifest, files: &[FileDigest]) -> Result<(), ManifestError> {
    for f in files {
        check_digest(manifest, f)?;
    }
    for m in &manifest.files {
        if !files.iter().any(|f| f.key == m.key) {
            return Err(ManifestError::Gone { key: m.key.clone() });
        }
    }
    Ok(())
}

/// Holds one file's digest, taken now, against the manifest.
pub fn check_digest(manifest: &Manifest, found: &FileDigest) -> Result<(), ManifestError> {
    let Some(want) = manifest.file(&found.key) else {
        return Err(ManifestError::Added {
            key: found.key.clone(),
        });
    };
    if want.size != found.size {
        return Err(ManifestError::Changed {
            key: found.key.clone(),
            what: format!("{} bytes, {} when verified", found.size, want.size),
        });
    }
    if want.sha256 != found.sha256 {
        return Err(ManifestError::Changed {
            key: found.key.clone(),
            what: format!(
                "SHA-256 `{}`, `{}` when verified",
                found.sha256, want.sha256
            ),
        });
    }
    Ok(())
}

/// Reads an object to its end and hashes it.
pub async fn hash_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    size: u64,
) -> Result<FileDigest, ManifestError> {
    let streamed = fetch::stream(s3, bucket, key, size, true, None, |mut reader| {
        std::io::copy(&mut reader, &mut std::io::sink())
    })
    .await
    .map_err(|e| match e {
        FetchError::NotFound => ManifestError::Gone {
            key: key.to_string(),
        },
        FetchError::Failed(m) => ManifestError::read_failed(key, m),
    })?;
    if let Err(e) = streamed.value {
        return Err(ManifestError::S3 {
            key: key.to_string(),
            message: crate::errors::chain(&e),
            source: Some(Box::new(e)),
        });
    }
    Ok(streamed.digest)
}

/// Whether a HEAD proves the object still holds the manifest's bytes.
async fn head_matches(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    want: &FileDigest,
) -> Result<bool, ManifestError> {
    let head = match s3
        .head_object()
        .bucket(bucket)
        .key(&want.key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
    {
        Ok(h) => h,
        Err(e) if s3io::not_found(&e) => {
            return Err(ManifestError::Gone {
                key: want.key.clone(),
            });
        }
        Err(e) => {
            return Err(ManifestError::S3 {
                key: want.key.clone(),
                message: crate::errors::sdk("S3", "HeadObject", &e),
                source: Some(Box::new(e)),
            });
        }
    };
    let size = head.content_length().and_then(|n| u64::try_from(n).ok());
    if size.is_some_and(|s| s != want.size) {
        return Err(ManifestError::Changed {
            key: want.key.clone(),
            what: format!("{} bytes, {} when verified", size.unwrap_or(0), want.size),
        });
    }
    if want.etag_is_md5() && head.e_tag() == want.etag.as_deref() {
        return Ok(true);
    }
    // A full-object checksum is the SHA-256 of the content; a composite one (multipart uploads,
    // `…-N`) is a checksum of checksums and says nothing here.
    if let Some(sum) = head.checksum_sha256().filter(|s| !s.contains('-'))
        && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(sum)
    {
        return Ok(hex::encode(raw) == want.sha256);
    }
    Ok(false)
}

/// Checks every file of the manifest against the bucket, except the keys in `later` (which the
/// caller streams and checks with [`check_digest`]). Files in the backup's folder that the
/// manifest does not list are refused too: Velero would read some of them.
pub async fn check_files(
    s3: &aws_sdk_s3::Client,
    location: &BackupLocation,
    manifest: &Manifest,
    later: &[&str],
) -> Result<Checked, ManifestError> {
    let dir = location.dir();
    let present: BTreeMap<String, u64> = s3io::list(s3, &location.bucket, &dir)
        .await
        .map_err(|e| ManifestError::read(&dir, e))?;
    for key in present.keys() {
        if !super::is_own_file(location, key) && manifest.file(key).is_none() {
            return Err(ManifestError::Added { key: key.clone() });
        }
    }
    let mut checked = Checked::default();
    for want in &manifest.files {
        let Some(size) = present.get(&want.key) else {
            return Err(ManifestError::Gone {
                key: want.key.clone(),
            });
        };
        if later.contains(&want.key.as_str()) {
            continue;
        }
        if head_matches(s3, &location.bucket, want).await? {
            checked.by_head.push(want.key.clone());
            continue;
        }
        let found = hash_object(s3, &location.bucket, &want.key, *size).await?;
        check_digest(manifest, &found)?;
        checked.hashed.push(want.key.clone());
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::velero::digest::of_bytes;

    fn manifest(files: &[(&str, &[u8])]) -> Manifest {
        Manifest {
            manifest_version: super::super::MANIFEST_VERSION,
            tool: "eks-upgrade test".into(),
            created_at: "2026-11-29T00:00:00Z".into(),
            bucket: "velero-backups".into(),
            prefix: None,
            backup: "b1".into(),
            backup_uid: Some("u1".into()),
            item_count: None,
            item_list_sha256: None,
            files: files.iter().map(|(k, b)| of_bytes(k, b, None)).collect(),
        }
    }

    #[test]
    fn one_flipped_byte_is_refused_with_the_key_named() {
        let m = manifest(&[("backups/b1/b1.tar.gz", b"abcdef")]);
        assert!(check_digest(&m, &of_bytes("backups/b1/b1.tar.gz", b"abcdef", None)).is_ok());
        let e = check_digest(&m, &of_bytes("backups/b1/b1.tar.gz", b"abcdeF", None))
            .expect_err("a changed byte");
        assert!(matches!(e, ManifestError::Changed { .. }));
        assert!(e.is_mismatch());
        assert!(
            e.to_string()
                .starts_with("`backups/b1/b1.tar.gz` differs from the manifest: SHA-256"),
            "{e}"
        );
        let shorter = check_digest(&m, &of_bytes("backups/b1/b1.tar.gz", b"abc", None))
            .expect_err("a shorter file");
        assert!(
            shorter.to_string().contains("3 bytes, 6 when verified"),
            "{shorter}"
        );
    }

    #[test]
    fn added_and_missing_files_are_refused_by_name() {
        let m = manifest(&[
            ("backups/b1/b1.tar.gz", b"t"),
            ("backups/b1/velero-backup.json", b"{}"),
        ]);
        let added = compare(
            &m,
            &[
                of_bytes("backups/b1/b1.tar.gz", b"t", None),
                of_bytes("backups/b1/velero-backup.json", b"{}", None),
                of_bytes("backups/b1/b1-csi-volumesnapshots.json.gz", b"x", None),
            ],
        )
        .expect_err("a file added after verification");
        assert_eq!(
            added.to_string(),
            "`backups/b1/b1-csi-volumesnapshots.json.gz` was not in the backup when it was verified"
        );
        let gone =
            compare(&m, &[of_bytes("backups/b1/b1.tar.gz", b"t", None)]).expect_err("a file gone");
        assert_eq!(gone.key(), "backups/b1/velero-backup.json");
        assert!(matches!(gone, ManifestError::Gone { .. }));
    }

    #[test]
    fn a_read_failure_is_not_a_mismatch_and_keeps_its_cause() {
        let e = ManifestError::read(
            "backups/b1/eks-upgrade-manifest.json",
            crate::velero::verify::VerifyError::S3 {
                key: "backups/b1/eks-upgrade-manifest.json".into(),
                message: "AccessDenied: Access Denied".into(),
            },
        );
        assert!(!e.is_mismatch());
        assert_eq!(
            e.to_string(),
            "cannot read `backups/b1/eks-upgrade-manifest.json` from S3: AccessDenied: Access Denied"
        );
        assert!(std::error::Error::source(&e).is_some());
    }
}
