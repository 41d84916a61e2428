//! Damage the scenario asks for (`faults.bucket`, `faults.backupPhase`): applied to what lands
//! in S3 while the Backup CR still reports success, which is exactly what the tool's verifier
//! exists to catch.
//!
//! Objects are named as in the scenario (`velero-backup.json`, `tarball`, `resource-list`,
//! `logs`, `results`, ...). `uid-mismatch` and `phase-finalizing` only make sense for
//! `velero-backup.json`, and `extra-item` / `missing-item` only for the tarball and the resource
//! list, so they apply there whatever object the scenario names.

use std::io::Read;

use flate2::read::GzDecoder;

use crate::scenario::BucketFault;

pub const METADATA: &str = "velero-backup.json";
pub const TARBALL: &str = "tarball";
pub const RESOURCE_LIST: &str = "resource-list";

/// The bucket faults of a scenario.
#[derive(Debug, Clone, Default)]
pub struct BucketFaults {
    faults: Vec<(String, String)>,
}

/// Changes to what the backup contains, decided before the tarball is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContentFaults {
    /// Write a tarball item the resource list does not name.
    pub extra_tar_item: bool,
    /// Leave one resource-list item out of the tarball.
    pub missing_tar_item: bool,
    /// Drop one tarball item from the resource list.
    pub unlisted_item: bool,
    /// Name an item in the resource list that was never written.
    pub phantom_list_item: bool,
}

impl BucketFaults {
    pub fn new(faults: &[BucketFault]) -> BucketFaults {
        BucketFaults {
            faults: faults
                .iter()
                .map(|f| (f.object.clone(), f.fault.clone()))
                .collect(),
        }
    }

    fn has(&self, object: &str, fault: &str) -> bool {
        self.faults.iter().any(|(o, f)| o == object && f == fault)
    }

    fn any(&self, fault: &str) -> bool {
        self.faults.iter().any(|(_, f)| f == fault)
    }

    /// The object is never uploaded.
    pub fn missing(&self, object: &str) -> bool {
        self.has(object, "missing")
    }

    /// The object's bytes are damaged on the way up (so it cannot be streamed).
    pub fn damages_bytes(&self, object: &str) -> bool {
        self.has(object, "truncate") || self.has(object, "corrupt")
    }

    pub fn uid_mismatch(&self) -> bool {
        self.any("uid-mismatch")
    }

    pub fn phase_stays_finalizing(&self) -> bool {
        self.any("phase-finalizing")
    }

    pub fn content(&self) -> ContentFaults {
        let on_list = |f: &str| self.has(RESOURCE_LIST, f);
        ContentFaults {
            extra_tar_item: self.any("extra-item") && !on_list("extra-item"),
            missing_tar_item: self.any("missing-item") && !on_list("missing-item"),
            unlisted_item: on_list("extra-item"),
            phantom_list_item: on_list("missing-item"),
        }
    }

    /// Applies `truncate` / `corrupt` to an object's bytes. `gzip` says whether the object is a
    /// gzip stream (everything but `velero-backup.json`).
    pub fn damage(&self, object: &str, data: Vec<u8>, gzip: bool) -> Vec<u8> {
        let mut data = data;
        if self.has(object, "corrupt") {
            data = if gzip {
                corrupt_gzip(data)
            } else {
                corrupt_text(data)
            };
        }
        if self.has(object, "truncate") {
            data = truncate(data);
        }
        data
    }
}

/// Cuts an object in half: a gzip stream loses its CRC32/ISIZE trailer and more.
pub fn truncate(mut data: Vec<u8>) -> Vec<u8> {
    data.truncate(data.len() / 2);
    data
}

/// Breaks JSON text with a NUL byte in the middle, which no JSON parser accepts.
pub fn corrupt_text(mut data: Vec<u8>) -> Vec<u8> {
    if data.is_empty() {
        data.push(0);
    } else {
        let mid = data.len() / 2;
        data[mid] = 0;
    }
    data
}

fn decodes_to(data: &[u8], expected: &[u8]) -> bool {
    let mut out = Vec::new();
    GzDecoder::new(data).read_to_end(&mut out).is_ok() && out == expected
}

/// Flips one byte inside the deflate data of a gzip stream (not its header), choosing a byte
/// whose change gzip actually detects — a flip in padding bits would go unnoticed. Falls back
/// to the CRC32 in the trailer, which a reader must then reject.
pub fn corrupt_gzip(mut data: Vec<u8>) -> Vec<u8> {
    const HEADER: usize = 10;
    const TRAILER: usize = 8;
    let mut original = Vec::new();
    if data.len() <= HEADER + TRAILER
        || GzDecoder::new(data.as_slice())
            .read_to_end(&mut original)
            .is_err()
    {
        // Not a gzip stream we wrote; any flip in the middle damages it.
        return corrupt_text(data);
    }
    let body = HEADER..data.len() - TRAILER;
    let mid = body.start + (body.end - body.start) / 2;
    let candidates = (mid..body.end).chain(body.start..mid);
    for pos in candidates {
        let saved = data[pos];
        data[pos] = saved ^ 0x55;
        if !decodes_to(&data, &original) {
            return data;
        }
        data[pos] = saved;
    }
    let crc = data.len() - TRAILER;
    data[crc] ^= 0xff;
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::velero::layout;

    fn fault(object: &str, fault: &str) -> BucketFault {
        BucketFault {
            object: object.into(),
            fault: fault.into(),
        }
    }

    #[test]
    fn corruption_is_detected_by_gzip() {
        for text in ["null\n", "[]\n", &"{\"a\":1}".repeat(500)] {
            let good = layout::gzip(text.as_bytes());
            let bad = corrupt_gzip(good.clone());
            assert_eq!(bad.len(), good.len());
            assert_eq!(&bad[..10], &good[..10], "the gzip header is intact");
            assert!(!decodes_to(&bad, text.as_bytes()));
            assert!(!decodes_to(&truncate(good), text.as_bytes()));
        }
        assert!(
            serde_json::from_slice::<serde_json::Value>(&corrupt_text(b"{\"a\": 1}".to_vec()))
                .is_err()
        );
    }

    #[test]
    fn content_faults_by_object() {
        let f = BucketFaults::new(&[
            fault("tarball", "extra-item"),
            fault("resource-list", "missing-item"),
        ]);
        assert_eq!(
            f.content(),
            ContentFaults {
                extra_tar_item: true,
                missing_tar_item: false,
                unlisted_item: false,
                phantom_list_item: true
            }
        );
        let f = BucketFaults::new(&[
            fault("velero-backup.json", "corrupt"),
            fault("logs", "missing"),
        ]);
        assert!(
            f.damages_bytes("velero-backup.json") && f.missing("logs") && !f.missing("tarball")
        );
    }
}
