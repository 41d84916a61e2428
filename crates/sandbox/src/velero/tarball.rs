//! `NAME.tar.gz`, written as Velero's backupper writes it and read as its restore parser reads it.
//!
//! Writing: gzip around a tar stream of regular files only (mode 0755, mtime now), starting with
//! `metadata/version`; paths longer than a USTAR header holds are split into prefix and name
//! when they can be, else carried in a PAX `path` record, as Go's `archive/tar` does.
//!
//! Reading: every entry under `resources/`, with path checks (no `..`, nothing absolute) and
//! the preferred-version copy chosen over the unversioned one.

use std::collections::BTreeMap;
use std::io::{self, Read};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use tar::{EntryType, Header};

use super::layout::FORMAT_VERSION;

/// The suffix of the folder holding the preferred API version's copy of each item.
pub const PREFERRED_SUFFIX: &str = "-preferredversion";

/// Where an item goes: `resources/<gr>/[<version>/](cluster|namespaces/<ns>)/<name>.json`.
pub fn item_path(
    group_resource: &str,
    version_dir: Option<&str>,
    namespace: Option<&str>,
    name: &str,
) -> String {
    let mut path = format!("resources/{group_resource}/");
    if let Some(v) = version_dir {
        path.push_str(v);
        path.push('/');
    }
    match namespace {
        Some(ns) => path.push_str(&format!("namespaces/{ns}/{name}.json")),
        None => path.push_str(&format!("cluster/{name}.json")),
    }
    path
}

/// A tarball being written into memory; the caller drains finished compressed bytes as they
/// accumulate, so memory stays bounded by roughly one upload part.
pub struct TarballWriter {
    tar: tar::Builder<GzEncoder<Vec<u8>>>,
    mtime: u64,
    entries: u64,
}

impl TarballWriter {
    /// Starts the archive with `metadata/version`, which Velero always writes first.
    pub fn new() -> io::Result<TarballWriter> {
        let mtime = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
        let mut writer = TarballWriter {
            tar: tar::Builder::new(GzEncoder::new(Vec::new(), Compression::new(6))),
            mtime,
            entries: 0,
        };
        writer.append("metadata/version", format!("{FORMAT_VERSION}\n").as_bytes())?;
        Ok(writer)
    }

    fn header(&self, size: usize, kind: EntryType) -> Header {
        let mut h = Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(0o755);
        h.set_mtime(self.mtime);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(size as u64);
        h
    }

    /// Appends one regular file.
    pub fn append(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        let mut header = self.header(data.len(), EntryType::Regular);
        if header.set_path(path).is_err() {
            // Too long for USTAR even split at a slash (or not a plain relative path): a PAX
            // extended header carries the real name, the USTAR name holds a truncated one.
            let record = pax_record("path", path);
            let base = path.rsplit('/').next().unwrap_or(path);
            let mut pax = self.header(record.len(), EntryType::XHeader);
            pax.set_mode(0o644);
            set_raw_name(&mut pax, format!("PaxHeaders.0/{base}").as_bytes());
            pax.set_cksum();
            self.tar.append(&pax, record.as_slice())?;
            set_raw_name(&mut header, path.as_bytes());
        }
        header.set_cksum();
        self.tar.append(&header, data)?;
        self.entries += 1;
        Ok(())
    }

    /// Entries written so far, `metadata/version` included.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Takes the compressed bytes produced so far when there are at least `min` of them.
    pub fn take_ready(&mut self, min: usize) -> Option<Vec<u8>> {
        let buffer = self.tar.get_mut().get_mut();
        (buffer.len() >= min).then(|| std::mem::take(buffer))
    }

    /// Ends the tar stream and the gzip stream; returns the bytes not yet taken.
    pub fn finish(self) -> io::Result<Vec<u8>> {
        let gz = self.tar.into_inner()?;
        gz.finish()
    }
}

/// Writes up to the first 100 bytes of `name` into a USTAR name field, NUL-padded.
fn set_raw_name(header: &mut Header, name: &[u8]) {
    let field = &mut header.as_old_mut().name;
    field.fill(0);
    let n = name.len().min(field.len());
    field[..n].copy_from_slice(&name[..n]);
}

/// One PAX record: `"<length> <key>=<value>\n"`, where the length counts itself.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while len.to_string().len() + body.len() != len {
        len = len.to_string().len() + body.len();
    }
    format!("{len}{body}").into_bytes()
}

#[derive(Debug, thiserror::Error)]
pub enum TarballError {
    #[error("error extracting backup: {0}")]
    Read(#[from] io::Error),
    #[error("error extracting backup: tar entry {0:?} is outside the extraction directory")]
    UnsafePath(String),
}

/// One item file as found in the tarball.
#[derive(Debug, Clone)]
pub struct TarItem {
    pub namespace: Option<String>,
    pub name: String,
    pub bytes: Vec<u8>,
}

/// What a resource folder holds: the unversioned copies and every version folder.
#[derive(Debug, Default)]
pub struct ResourceDir {
    pub unversioned: Vec<TarItem>,
    /// Version folder name (`v1-preferredversion`, `v2beta1`) → items.
    pub versions: BTreeMap<String, Vec<TarItem>>,
}

impl ResourceDir {
    /// The items a restore uses: the preferred version's when there is one, else the
    /// unversioned copies (backups written before format 1.1).
    pub fn restorable(&self) -> &[TarItem] {
        self.versions
            .iter()
            .find(|(v, _)| v.ends_with(PREFERRED_SUFFIX))
            .map_or(&self.unversioned, |(_, items)| items)
    }
}

/// The parsed tarball: resource folder (`deployments.apps`) → content, plus `metadata/version`.
#[derive(Debug, Default)]
pub struct Contents {
    pub format_version: Option<String>,
    pub resources: BTreeMap<String, ResourceDir>,
}

/// Reads a whole tarball, as Velero's extractor and parser do (after its zip-slip checks).
pub fn read(data: &[u8]) -> Result<Contents, TarballError> {
    let mut archive = tar::Archive::new(GzDecoder::new(data));
    let mut contents = Contents::default();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        let unsafe_path = path.starts_with('/')
            || path.split('/').any(|c| c == "..")
            || path.contains('\\')
            || path.contains('\0');
        if unsafe_path {
            return Err(TarballError::UnsafePath(path));
        }
        if !kind.is_file() {
            continue;
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        if path == "metadata/version" {
            contents.format_version = Some(String::from_utf8_lossy(&bytes).trim().to_string());
            continue;
        }
        let Some(rest) = path.strip_prefix("resources/") else {
            continue;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let (group_resource, version, scope) = match parts.as_slice() {
            [gr, "cluster" | "namespaces", ..] => (*gr, None, &parts[1..]),
            [gr, version, ..] => (*gr, Some(*version), &parts[2..]),
            _ => continue,
        };
        let (namespace, file) = match scope {
            ["cluster", file] => (None, *file),
            ["namespaces", ns, file] => (Some(ns.to_string()), *file),
            _ => continue,
        };
        let Some(name) = file.strip_suffix(".json") else {
            continue;
        };
        let item = TarItem {
            namespace,
            name: name.to_string(),
            bytes,
        };
        let dir = contents
            .resources
            .entry(group_resource.to_string())
            .or_default();
        match version {
            Some(v) => dir.versions.entry(v.to_string()).or_default().push(item),
            None => dir.unversioned.push(item),
        }
    }
    Ok(contents)
}

/// Writes a whole tarball at once from `(path, bytes)` pairs (for tests and small archives).
pub fn write_all(items: &[(String, Vec<u8>)]) -> io::Result<Vec<u8>> {
    let mut writer = TarballWriter::new()?;
    for (path, bytes) in items {
        writer.append(path, bytes)?;
    }
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_long_paths() {
        let long_ns = "n".repeat(63);
        let long_name = "x".repeat(200);
        let short = item_path("configmaps", None, Some("shop"), "web");
        let split = item_path(
            "configmaps",
            Some("v1-preferredversion"),
            Some(&long_ns),
            "y",
        );
        let pax = item_path(
            "configmaps",
            Some("v1-preferredversion"),
            Some("shop"),
            &long_name,
        );
        let items = vec![
            (short.clone(), b"{\"a\":1}".to_vec()),
            (split.clone(), b"{\"b\":2}".to_vec()),
            (pax.clone(), b"{\"c\":3}".to_vec()),
        ];
        let data = write_all(&items).unwrap_or_default();
        let mut archive = tar::Archive::new(GzDecoder::new(data.as_slice()));
        let paths: Vec<String> = archive
            .entries()
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.header().entry_type().is_file())
            .map(|e| String::from_utf8_lossy(&e.path_bytes()).into_owned())
            .collect();
        assert_eq!(
            paths,
            vec!["metadata/version".to_string(), short, split, pax]
        );
        let contents = read(&data).unwrap_or_default();
        assert_eq!(contents.format_version.as_deref(), Some("1.1.0"));
        let cms = &contents.resources["configmaps"];
        assert_eq!(cms.unversioned.len(), 1);
        assert_eq!(cms.restorable().len(), 2);
        assert!(cms.restorable().iter().any(|i| i.name == long_name));
    }

    #[test]
    fn pax_record_counts_itself() {
        let r = pax_record("path", "abc");
        assert_eq!(r, b"12 path=abc\n");
        let long = "p".repeat(95);
        let r = pax_record("path", &long);
        let text = String::from_utf8(r.clone()).unwrap_or_default();
        let n: usize = text
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert_eq!(n, r.len());
    }

    #[test]
    fn rejects_escaping_paths_and_garbage() {
        let data = write_all(&[("resources/../../etc/x.json".to_string(), b"{}".to_vec())])
            .unwrap_or_default();
        assert!(matches!(read(&data), Err(TarballError::UnsafePath(_))));
        assert!(read(b"not gzip").is_err());
        let truncated = &data[..data.len() / 2];
        assert!(read(truncated).is_err());
    }
}
