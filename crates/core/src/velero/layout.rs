//! Where Velero keeps a backup in its bucket, and what each file is. (Velero's
//! `object_store_layout.go`; see `docs/velero.md` of the reference notes for the history.)

/// A backup's location: bucket, optional prefix, name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackupLocation {
    pub bucket: String,
    pub prefix: Option<String>,
    pub name: String,
}

/// The format version this tool understands (`status.formatVersion`, `metadata/version`).
pub const FORMAT_VERSION: &str = "1.1.0";

/// A file Velero writes next to the tarball.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sibling {
    /// The key after `backups/NAME/NAME`, such as `-resource-list.json.gz`.
    pub suffix: &'static str,
    /// Whether every backup of a current Velero (1.13 and later) has it. Logs are uploaded best
    /// effort, and the CSI files exist only for some versions, so their absence is a warning.
    pub required: bool,
    /// Whether the payload is JSON (after gunzip); logs are text.
    pub json: bool,
}

pub const SIBLINGS: [Sibling; 11] = [
    Sibling {
        suffix: "-logs.gz",
        required: false,
        json: false,
    },
    Sibling {
        suffix: "-podvolumebackups.json.gz",
        required: true,
        json: true,
    },
    Sibling {
        suffix: "-volumesnapshots.json.gz",
        required: true,
        json: true,
    },
    Sibling {
        suffix: "-itemoperations.json.gz",
        required: true,
        json: true,
    },
    Sibling {
        suffix: "-resource-list.json.gz",
        required: true,
        json: true,
    },
    Sibling {
        suffix: "-results.gz",
        required: true,
        json: true,
    },
    Sibling {
        suffix: "-volumeinfo.json.gz",
        required: true,
        json: true,
    },
    // Written up to Velero 1.17, gone in 1.18.
    Sibling {
        suffix: "-csi-volumesnapshotclasses.json.gz",
        required: false,
        json: true,
    },
    // Written by Velero 1.9 to 1.16.
    Sibling {
        suffix: "-csi-volumesnapshots.json.gz",
        required: false,
        json: true,
    },
    Sibling {
        suffix: "-csi-volumesnapshotcontents.json.gz",
        required: false,
        json: true,
    },
    // Velero 1.9 and 1.10 only.
    Sibling {
        suffix: "-itemsnapshots.json.gz",
        required: false,
        json: true,
    },
];

impl BackupLocation {
    fn root(&self) -> String {
        match self
            .prefix
            .as_deref()
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty())
        {
            Some(p) => format!("{p}/"),
            None => String::new(),
        }
    }

    /// `[prefix/]backups/NAME/`
    pub fn dir(&self) -> String {
        format!("{}backups/{}/", self.root(), self.name)
    }

    pub fn metadata_key(&self) -> String {
        format!("{}velero-backup.json", self.dir())
    }

    pub fn tarball_key(&self) -> String {
        format!("{}{}.tar.gz", self.dir(), self.name)
    }

    pub fn sibling_key(&self, sibling: &Sibling) -> String {
        format!("{}{}{}", self.dir(), self.name, sibling.suffix)
    }

    pub fn resource_list_key(&self) -> String {
        format!("{}{}-resource-list.json.gz", self.dir(), self.name)
    }

    /// `s3://bucket/key`, for messages.
    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_and_without_prefix() {
        let mut l = BackupLocation {
            bucket: "b".into(),
            prefix: None,
            name: "pre-1".into(),
        };
        assert_eq!(l.metadata_key(), "backups/pre-1/velero-backup.json");
        assert_eq!(l.tarball_key(), "backups/pre-1/pre-1.tar.gz");
        l.prefix = Some("/cluster-a/".into());
        assert_eq!(
            l.resource_list_key(),
            "cluster-a/backups/pre-1/pre-1-resource-list.json.gz"
        );
        assert_eq!(
            l.url(&l.tarball_key()),
            "s3://b/cluster-a/backups/pre-1/pre-1.tar.gz"
        );
    }
}
