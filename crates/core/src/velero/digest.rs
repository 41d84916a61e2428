//! Digests of the files of a backup, taken while they stream past: SHA-256 always, and MD5 when
//! the object's ETag looks like one, so that a later check can trust the ETag instead of reading
//! the object again (see [`FileDigest::etag_is_md5`]).

use md5::Md5;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Objects up to this size get an MD5 as well as a SHA-256 when their ETag looks like an MD5.
/// Velero's AWS plugin uploads through the SDK's upload manager, which switches to multipart at
/// its part size (5 MiB by default): a larger object's ETag is then `MD5-of-MD5s-N` and never
/// its MD5, so hashing it twice would cost CPU for nothing.
pub const MD5_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// One file of a backup as it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileDigest {
    pub key: String,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
    /// The ETag S3 returned with the bytes, quotes included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Lower-case hex, when computed (see [`MD5_MAX_BYTES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
}

impl FileDigest {
    /// Whether the ETag is the MD5 of these bytes. S3 makes the ETag the MD5 of the content only
    /// for objects written in one request (PutObject, CopyObject) that are stored unencrypted or
    /// with SSE-S3; with SSE-KMS or SSE-C, and for every multipart upload (`…-N`), it is not. So
    /// the tool does not assume: it compares the ETag with the MD5 it computed itself, and only
    /// an ETag that matched then can stand in for the content later.
    pub fn etag_is_md5(&self) -> bool {
        match (&self.etag, &self.md5) {
            (Some(etag), Some(md5)) => plain_md5(etag).is_some_and(|e| e == *md5),
            _ => false,
        }
    }
}

/// The hex MD5 inside an ETag that looks like one (`"9e107d9d372bb6826bd81d3542a419d6"`).
pub fn plain_md5(etag: &str) -> Option<String> {
    let inner = etag.trim_matches('"');
    (inner.len() == 32 && inner.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| inner.to_ascii_lowercase())
}

/// Hashes bytes as they arrive.
pub struct Digester {
    sha: Sha256,
    md5: Option<Md5>,
    size: u64,
}

impl Digester {
    /// A digester for an object of `size` bytes with `etag`: MD5 too when the ETag could be one
    /// and the object is small enough for that to matter.
    pub fn new(etag: Option<&str>, size: u64) -> Self {
        let md5 = (etag.and_then(plain_md5).is_some() && size <= MD5_MAX_BYTES).then(Md5::new);
        Digester {
            sha: Sha256::new(),
            md5,
            size: 0,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        if let Some(m) = &mut self.md5 {
            m.update(bytes);
        }
        self.size += bytes.len() as u64;
    }

    pub fn finish(self, key: &str, etag: Option<String>) -> FileDigest {
        FileDigest {
            key: key.to_string(),
            size: self.size,
            sha256: hex::encode(self.sha.finalize()),
            md5: self.md5.map(|m| hex::encode(m.finalize())),
            etag,
        }
    }
}

/// The digest of bytes held in memory.
pub fn of_bytes(key: &str, bytes: &[u8], etag: Option<String>) -> FileDigest {
    let mut d = Digester::new(etag.as_deref(), bytes.len() as u64);
    d.update(bytes);
    d.finish(key, etag)
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_etag_counts_as_md5_only_when_it_matched_the_content() {
        let body = b"hello";
        let md5 = "5d41402abc4b2a76b9719d911017c592";
        let d = of_bytes("k", body, Some(format!("\"{md5}\"")));
        assert_eq!(d.md5.as_deref(), Some(md5));
        assert!(d.etag_is_md5());
        assert_eq!(
            d.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        // A multipart ETag is never the content's MD5, and no MD5 is computed for it.
        let multi = of_bytes("k", body, Some(format!("\"{md5}-3\"")));
        assert_eq!(multi.md5, None);
        assert!(!multi.etag_is_md5());
        // An ETag of the right shape that is not the content's MD5 (SSE-KMS) does not count.
        let kms = of_bytes(
            "k",
            body,
            Some("\"00000000000000000000000000000000\"".into()),
        );
        assert!(!kms.etag_is_md5());
    }
}
