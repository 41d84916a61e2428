//! Where the emulated Velero keeps things in its bucket, and the encodings of each file, as
//! Velero 1.17's `object_store_layout.go`, `encode.go` and the Kubernetes JSON serializer write
//! them.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `status.formatVersion`, and the content of `metadata/version` without its newline.
pub const FORMAT_VERSION: &str = "1.1.0";
/// The Velero release the sandbox emulates (it also runs `velero/velero:v1.17.1`).
pub const VELERO_VERSION: &str = "v1.17.1";

/// Top-level folders a backup store may contain; anything else makes the location Unavailable
/// (`objectBackupStore.IsValid`).
pub const VALID_TOP_LEVEL: [&str; 6] = [
    "backups", "restores", "restic", "metadata", "plugins", "kopia",
];

/// Keys of one backup store: the bucket root, or `<prefix>/` when the location has a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: String,
}

impl Layout {
    pub fn new(prefix: Option<&str>) -> Layout {
        // Velero trims slashes from the prefix and adds exactly one.
        let root = match prefix
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty())
        {
            Some(p) => format!("{p}/"),
            None => String::new(),
        };
        Layout { root }
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    pub fn backup_dir(&self, backup: &str) -> String {
        format!("{}backups/{backup}/", self.root)
    }

    pub fn restore_dir(&self, restore: &str) -> String {
        format!("{}restores/{restore}/", self.root)
    }

    pub fn backup_metadata(&self, backup: &str) -> String {
        format!("{}velero-backup.json", self.backup_dir(backup))
    }

    /// `backups/NAME/NAME<suffix>`, for the tarball and every sibling file.
    pub fn backup_file(&self, backup: &str, suffix: &str) -> String {
        format!("{}{backup}{suffix}", self.backup_dir(backup))
    }

    /// `restores/NAME/restore-NAME<suffix>`.
    pub fn restore_file(&self, restore: &str, suffix: &str) -> String {
        format!("{}restore-{restore}{suffix}", self.restore_dir(restore))
    }

    /// `restores/NAME/NAME-volumeinfo.json.gz`: the one restore file without `restore-`.
    pub fn restore_volume_info(&self, restore: &str) -> String {
        format!("{}{restore}-volumeinfo.json.gz", self.restore_dir(restore))
    }
}

/// The backup files of Velero 1.17, as `(fault object name, key suffix)`, in upload order after
/// the logs, `velero-backup.json` and the tarball. 1.17 no longer writes the CSI VolumeSnapshot
/// and VolumeSnapshotContent lists but still writes the VolumeSnapshotClass list.
pub const BACKUP_SIBLINGS: [(&str, &str); 7] = [
    ("podvolumebackups", "-podvolumebackups.json.gz"),
    ("volumesnapshots", "-volumesnapshots.json.gz"),
    ("itemoperations", "-itemoperations.json.gz"),
    ("resource-list", "-resource-list.json.gz"),
    ("results", "-results.gz"),
    ("volumeinfo", "-volumeinfo.json.gz"),
    (
        "csi-volumesnapshotclasses",
        "-csi-volumesnapshotclasses.json.gz",
    ),
];
pub const TARBALL_SUFFIX: &str = ".tar.gz";
pub const LOGS_SUFFIX: &str = "-logs.gz";

/// Gzip with Go's default level, as `compress/gzip` writes it.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(data.len() / 4 + 32), Compression::new(6));
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(data);
    encoder.finish().unwrap_or_default()
}

/// `json.Marshal`: compact, with `<`, `>`, `&`, U+2028 and U+2029 escaped as Go does. Those
/// characters can only occur inside JSON strings, so replacing them byte-wise is safe.
pub fn go_json(value: &impl Serialize) -> Vec<u8> {
    escape_like_go(serde_json::to_vec(value).unwrap_or_default())
}

fn escape_like_go(raw: Vec<u8>) -> Vec<u8> {
    if !raw.iter().any(|b| matches!(b, b'<' | b'>' | b'&' | 0xE2)) {
        return raw;
    }
    let mut out = Vec::with_capacity(raw.len() + 16);
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'<' => out.extend_from_slice(b"\\u003c"),
            b'>' => out.extend_from_slice(b"\\u003e"),
            b'&' => out.extend_from_slice(b"\\u0026"),
            0xE2 if raw.get(i + 1) == Some(&0x80)
                && matches!(raw.get(i + 2), Some(0xA8 | 0xA9)) =>
            {
                out.extend_from_slice(if raw[i + 2] == 0xA8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// `encode.ToJSONGzip`: a `json.Encoder` line (compact JSON and a newline), gzipped.
pub fn json_gz(value: &impl Serialize) -> Vec<u8> {
    let mut line = go_json(value);
    line.push(b'\n');
    gzip(&line)
}

/// Key order of Velero's Go structs, for the typed objects Velero serializes itself
/// (`velero-backup.json`). Keys not listed follow in alphabetical order.
const BACKUP_ORDER: &[(&str, &[&str])] = &[
    ("", &["kind", "apiVersion", "metadata", "spec", "status"]),
    (
        "/metadata",
        &[
            "name",
            "generateName",
            "namespace",
            "selfLink",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "labels",
            "annotations",
            "ownerReferences",
            "finalizers",
            "managedFields",
        ],
    ),
    (
        "/spec",
        &[
            "metadata",
            "includedNamespaces",
            "excludedNamespaces",
            "includedResources",
            "excludedResources",
            "includedClusterScopedResources",
            "excludedClusterScopedResources",
            "includedNamespaceScopedResources",
            "excludedNamespaceScopedResources",
            "labelSelector",
            "orLabelSelectors",
            "snapshotVolumes",
            "ttl",
            "volumeGroupSnapshotLabelKey",
            "includeClusterResources",
            "hooks",
            "storageLocation",
            "volumeSnapshotLocations",
            "defaultVolumesToRestic",
            "defaultVolumesToFsBackup",
            "orderedResources",
            "csiSnapshotTimeout",
            "itemOperationTimeout",
            "resourcePolicy",
            "snapshotMoveData",
            "datamover",
            "uploaderConfig",
        ],
    ),
    (
        "/status",
        &[
            "version",
            "formatVersion",
            "expiration",
            "phase",
            "validationErrors",
            "startTimestamp",
            "completionTimestamp",
            "volumeSnapshotsAttempted",
            "volumeSnapshotsCompleted",
            "failureReason",
            "warnings",
            "errors",
            "progress",
            "csiVolumeSnapshotsAttempted",
            "csiVolumeSnapshotsCompleted",
            "backupItemOperationsAttempted",
            "backupItemOperationsCompleted",
            "backupItemOperationsFailed",
            "hookStatus",
        ],
    ),
    ("/status/progress", &["totalItems", "itemsBackedUp"]),
];

/// A JSON value serialized with struct key order at the paths of `order`.
struct Ordered<'a> {
    value: &'a Value,
    path: String,
    order: &'static [(&'static str, &'static [&'static str])],
}

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Value::Object(map) = self.value else {
            return self.value.serialize(serializer);
        };
        let listed: &[&str] = self
            .order
            .iter()
            .find(|(p, _)| *p == self.path)
            .map_or(&[], |(_, keys)| keys);
        let mut keys: Vec<&String> = Vec::with_capacity(map.len());
        for k in listed {
            if let Some((key, _)) = map.get_key_value(*k) {
                keys.push(key);
            }
        }
        keys.extend(map.keys().filter(|k| !listed.contains(&k.as_str())));
        let mut out = serializer.serialize_map(Some(keys.len()))?;
        for key in keys {
            let child = Ordered {
                value: &map[key],
                path: format!("{}/{key}", self.path),
                order: self.order,
            };
            out.serialize_entry(key, &child)?;
        }
        out.end()
    }
}

/// `velero-backup.json`: the Backup as the Kubernetes JSON serializer pretty-prints it
/// (two-space indent, struct key order, no trailing newline).
pub fn backup_json(backup: &Value) -> Vec<u8> {
    let ordered = Ordered {
        value: backup,
        path: String::new(),
        order: BACKUP_ORDER,
    };
    escape_like_go(serde_json::to_vec_pretty(&ordered).unwrap_or_default())
}

/// `label.GetValidName`: label values longer than 63 characters become their first 57
/// characters and the first 6 hex digits of their SHA-256.
pub fn valid_label(value: &str) -> String {
    if value.len() <= 63 {
        return value.to_string();
    }
    let digest = Sha256::digest(value.as_bytes());
    let hex: String = digest.iter().take(3).map(|b| format!("{b:02x}")).collect();
    // Slice on a character boundary: Kubernetes names are ASCII, but the store does not check.
    let mut cut = 57;
    while !value.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{hex}", &value[..cut])
}

/// `metav1.Time` as it serializes: RFC 3339 in UTC, whole seconds.
pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn now() -> String {
    timestamp(chrono::Utc::now())
}

/// Parses a Go `time.Duration` string (`720h0m0s`, `1h30m`, `90s`, `1.5h`, `0`), as the CRD's
/// `format: duration` accepts it. Negative durations are rejected: Velero has no use for them.
pub fn parse_go_duration(text: &str) -> Option<std::time::Duration> {
    let s = text.trim();
    if s == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.is_empty() {
        return None;
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * seconds;
    }
    (total.is_finite() && total < 1e12).then(|| std::time::Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_follow_velero_layout() {
        let l = Layout::new(Some("/team/"));
        assert_eq!(l.backup_metadata("b"), "team/backups/b/velero-backup.json");
        assert_eq!(l.backup_file("b", ".tar.gz"), "team/backups/b/b.tar.gz");
        assert_eq!(
            l.restore_file("r", "-logs.gz"),
            "team/restores/r/restore-r-logs.gz"
        );
        assert_eq!(
            l.restore_volume_info("r"),
            "team/restores/r/r-volumeinfo.json.gz"
        );
        assert_eq!(Layout::new(None).backup_dir("b"), "backups/b/");
    }

    #[test]
    fn json_is_escaped_and_ordered_like_go() {
        assert_eq!(
            go_json(&json!({"a": "<&>\u{2028}"})),
            br#"{"a":"\u003c\u0026\u003e\u2028"}"#
        );
        let doc = json!({"status": {"phase": "X", "version": 1}, "kind": "Backup", "apiVersion": "velero.io/v1", "metadata": {"uid": "u", "name": "n"}, "spec": {}});
        let text = String::from_utf8(backup_json(&doc)).unwrap_or_default();
        let pos = |k: &str| text.find(k).unwrap_or(usize::MAX);
        assert!(pos("\"kind\"") < pos("\"apiVersion\""));
        assert!(pos("\"name\"") < pos("\"uid\""));
        assert!(pos("\"version\"") < pos("\"phase\""));
    }

    #[test]
    fn durations_and_labels() {
        assert_eq!(
            parse_go_duration("720h0m0s"),
            Some(std::time::Duration::from_secs(720 * 3600))
        );
        assert_eq!(
            parse_go_duration("1h30m"),
            Some(std::time::Duration::from_secs(5400))
        );
        assert_eq!(
            parse_go_duration("1.5s"),
            Some(std::time::Duration::from_millis(1500))
        );
        assert_eq!(parse_go_duration("abc"), None);
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(valid_label("short"), "short");
        let long = "x".repeat(70);
        let v = valid_label(&long);
        assert_eq!(v.len(), 63);
        assert!(v.starts_with(&"x".repeat(57)));
    }
}
