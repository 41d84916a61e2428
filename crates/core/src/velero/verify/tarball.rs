//! Checks a backup tarball in one streaming pass: gzip (CRC and length), tar (header checksums,
//! end-of-archive marker), entry paths, and every item's JSON against its path. Nothing is written
//! to disk and memory stays bounded: entries are read one at a time and only small per-item
//! facts (names and checksums) are kept.
//!
//! Decompression runs on its own thread and hands plain tar bytes to the parsing thread, so the
//! two heaviest stages use both cores.

use std::io::{BufReader, Read};

use bytes::Bytes;
use flate2::bufread::GzDecoder;

use super::finding::{Finding, Findings};
use super::head;
use super::names::Tally;
use super::stream::{self, ChunkReader};
use super::tarwalk::{Kind, TarWalk};
use super::twins::{Pairing, Side, Twins, Unpaired};

/// Kubernetes caps objects at about 1.5 MiB in etcd; anything far larger is not an item.
pub const MAX_ITEM_BYTES: u64 = 32 * 1024 * 1024;
const CHUNK: usize = 256 * 1024;

/// Marks an I/O error that came from reading S3, as opposed to bad data in the stream.
#[derive(Debug, thiserror::Error)]
#[error("reading from S3 failed: {0}")]
pub struct TransportError(pub String);

/// What the tarball holds, for comparison with the resource list and the item count.
#[derive(Debug, Default)]
pub struct TarSummary {
    /// The items found (`apiVersion/Kind` → `namespace/name` or `name`, as Velero's resource
    /// list spells them), checked against the resource list as they were read.
    pub tally: Tally,
    pub item_count: u64,
    pub entries: u64,
    pub uncompressed_bytes: u64,
    /// Set when reading S3 failed mid-stream: the result is incomplete, not wrong.
    pub transport_error: Option<String>,
}

/// Where an entry sits in Velero's layout.
#[derive(Debug, PartialEq, Eq)]
pub enum Place<'a> {
    /// `resources/<gr>/(cluster|namespaces/<ns>)/<name>.json`: the format-1.0 path.
    Unversioned {
        twin: String,
        namespace: Option<&'a str>,
        name: &'a str,
    },
    /// `resources/<gr>/<v>-preferredversion/...`: the same bytes again.
    Preferred {
        twin: String,
        namespace: Option<&'a str>,
        name: &'a str,
    },
    /// `resources/<gr>/<v>/...`: a non-preferred version, only with EnableAPIGroupVersions.
    Versioned {
        namespace: Option<&'a str>,
        name: &'a str,
    },
}

pub fn classify(path: &str) -> Option<Place<'_>> {
    let rest = path.strip_prefix("resources/")?;
    // At most five parts (`gr/version/namespaces/ns/file`), gathered without allocating and
    // split byte by byte: this runs for every entry, and `str::split` searching for each `/`
    // with `memchr` cost more than these short parts.
    let mut gathered = [""; 6];
    let mut count = 0;
    let mut start = 0;
    let slashes = rest
        .bytes()
        .enumerate()
        .filter(|(_, b)| *b == b'/')
        .map(|(i, _)| i);
    for end in slashes.chain([rest.len()]) {
        *gathered.get_mut(count)? = rest.get(start..end)?;
        count += 1;
        start = end + 1;
    }
    let parts = gathered.get(..count)?;
    let (gr, version, scope) = match parts.first() {
        Some(gr) if !gr.is_empty() => match parts.get(1) {
            Some(&"cluster") | Some(&"namespaces") => (*gr, None, &parts[1..]),
            Some(v) => (*gr, Some(*v), &parts[2..]),
            None => return None,
        },
        _ => return None,
    };
    let (namespace, file) = match scope {
        ["cluster", file] => (None, *file),
        ["namespaces", ns, file] if !ns.is_empty() => (Some(*ns), *file),
        _ => return None,
    };
    let name = file.strip_suffix(".json").filter(|n| !n.is_empty())?;
    let twin = [gr, namespace.unwrap_or(""), name].join("/");
    Some(match version {
        None => Place::Unversioned {
            twin,
            namespace,
            name,
        },
        Some(v) if v.ends_with("-preferredversion") => Place::Preferred {
            twin,
            namespace,
            name,
        },
        Some(_) => Place::Versioned { namespace, name },
    })
}

/// The namespace and name an entry's path gives.
fn where_in<'p>(place: &Place<'p>) -> (Option<&'p str>, &'p str) {
    match place {
        Place::Unversioned {
            namespace, name, ..
        }
        | Place::Preferred {
            namespace, name, ..
        }
        | Place::Versioned { namespace, name } => (*namespace, *name),
    }
}

/// Checks that a path cannot escape an extraction directory: not empty, not absolute, no `..`,
/// and not starting with `./` (what `Path::components` would call anything but a normal part).
/// Written over the text because it runs for every entry.
pub fn safe_path(path: &str) -> bool {
    if path.is_empty() || path.starts_with('/') {
        return false;
    }
    // Nearly every path has no `..` and no `.` at its start: no need to split it.
    if !path.contains("..") && !path.starts_with('.') {
        return true;
    }
    path.split('/')
        .enumerate()
        .all(|(i, part)| part != ".." && !(i == 0 && part == "."))
}

struct Checker<'a> {
    key: &'a str,
    findings: &'a mut Findings,
    summary: TarSummary,
    twins: Twins,
    heads: head::Reader,
}

impl Checker<'_> {
    fn problem(&mut self, entry: &str, message: impl Into<String>) {
        let key = if entry.is_empty() {
            self.key.to_string()
        } else {
            format!("{}:{entry}", self.key)
        };
        self.findings.push(Finding::error(key, message));
    }

    fn twin_problem(&mut self, twin: &str, problem: Unpaired) {
        self.findings.push(Finding::error(
            format!("{}:resources/{twin}", self.key),
            problem.message(),
        ));
    }

    /// Checks an item against its path and counts it. Returns its `apiVersion/Kind` when
    /// nothing was wrong with it.
    fn item(&mut self, path: &str, place: &Place, content: &[u8]) -> Option<String> {
        let (namespace, name) = where_in(place);
        let head = match self.heads.read(content) {
            Ok(h) => h,
            Err(e) if e.syntax => {
                self.problem(path, format!("the item is not valid JSON: {e}"));
                return None;
            }
            Err(e) => {
                self.problem(path, format!("the item is not a Kubernetes object: {e}"));
                return None;
            }
        };
        let (Some(api_version), Some(kind)) = (
            head.api_version.filter(|s| !s.is_empty()),
            head.kind.filter(|s| !s.is_empty()),
        ) else {
            self.problem(path, "the item has no `apiVersion` or `kind`");
            return None;
        };
        let mut clean = true;
        if head.name.as_deref() != Some(name) {
            clean = false;
            self.problem(
                path,
                format!(
                    "the item's `metadata.name` is {:?}, but its path says `{name}`",
                    head.name.as_deref().unwrap_or("")
                ),
            );
        }
        if head.namespace.as_deref().filter(|n| !n.is_empty()) != namespace {
            clean = false;
            self.problem(
                path,
                format!(
                    "the item's `metadata.namespace` is {:?}, but its path says {:?}",
                    head.namespace.as_deref().unwrap_or(""),
                    namespace.unwrap_or("")
                ),
            );
        }
        let kind = [api_version.as_ref(), kind.as_ref()].join("/");
        self.count(place, &kind);
        clean.then_some(kind)
    }

    /// Counts an item once: under its unversioned path (or a non-preferred version's), never
    /// its `-preferredversion` copy.
    fn count(&mut self, place: &Place, kind: &str) {
        if matches!(place, Place::Preferred { .. }) {
            return;
        }
        let (namespace, name) = where_in(place);
        let listed = match namespace {
            Some(ns) => [ns, name].join("/"),
            None => name.to_string(),
        };
        self.summary.item_count += 1;
        self.summary.tally.found(kind, &listed);
    }

    /// Checks an entry in Velero's layout: once per pair of copies when the two are identical.
    fn entry(&mut self, path: &str, place: &Place, content: Bytes) {
        let (twin, side) = match place {
            Place::Unversioned { twin, .. } => (twin, Side::Unversioned),
            Place::Preferred { twin, .. } => (twin, Side::Preferred),
            Place::Versioned { .. } => {
                self.item(path, place, &content);
                return;
            }
        };
        match self.twins.meet(twin, side, &content) {
            Pairing::Identical(kind) => self.count(place, &kind),
            Pairing::Differ => {
                self.twin_problem(twin, Unpaired::Differ);
                self.item(path, place, &content);
            }
            Pairing::Matched => {
                self.item(path, place, &content);
            }
            Pairing::First => {
                let verdict = self.item(path, place, &content);
                self.twins.hold(twin.clone(), side, content, verdict);
            }
        }
    }

    fn run(&mut self, tar_bytes: ChunkReader, format_version: &str) {
        let mut walk = TarWalk::new(tar_bytes);
        loop {
            let header = match walk.next_entry() {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(e) => return self.read_failure(e),
            };
            self.summary.entries += 1;
            let first = self.summary.entries == 1;
            let size = header.size;
            if !safe_path(walk.path()) {
                self.problem(walk.path(), "the entry path is absolute or contains `..`; extracting it could write outside the target directory");
                continue;
            }
            let content = match header.kind {
                Kind::Directory => continue,
                Kind::File if size <= MAX_ITEM_BYTES => match walk.content() {
                    Ok(c) => c,
                    Err(e) => return self.read_failure(e),
                },
                Kind::File => {
                    self.problem(
                        walk.path(),
                        format!("the entry is {size} bytes, far larger than any Kubernetes object"),
                    );
                    continue;
                }
                kind => {
                    self.problem(
                        walk.path(),
                        format!("the entry is {}, not a regular file", kind.describe()),
                    );
                    continue;
                }
            };
            // An entry not read above is passed over by the next call to `next_entry`.
            let shown = walk.path();
            if first {
                if shown != "metadata/version" {
                    self.problem(shown, "the first entry must be `metadata/version`");
                } else if content != format!("{format_version}\n").as_bytes() {
                    self.problem(
                        shown,
                        format!(
                            "`metadata/version` says {:?}, expected {format_version:?}",
                            String::from_utf8_lossy(&content).trim()
                        ),
                    );
                }
                continue;
            }
            if shown == "metadata/version" {
                self.problem(shown, "`metadata/version` appears again");
                continue;
            }
            match classify(shown) {
                Some(place) => self.entry(shown, &place, content),
                None => self.problem(shown, "the path does not follow Velero's layout `resources/<resource>/[<version>/](cluster|namespaces/<ns>)/<name>.json`"),
            }
        }
        if self.summary.entries == 0 {
            self.problem(
                "",
                "the tar archive is empty; even a backup of nothing holds `metadata/version`",
            );
        }
        // Reading to the end makes gzip verify its CRC and length, and shows what follows the
        // last entry: a complete archive ends with at least two zero blocks.
        let last_end = walk.entries_end();
        let (total, zeros) = match walk.finish() {
            Ok(rest) => rest,
            Err(e) => return self.read_failure(e),
        };
        self.summary.uncompressed_bytes = total;
        if !zeros {
            self.problem("", "data follows the end of the tar archive");
        } else if self.summary.entries > 0 && total.saturating_sub(last_end) < 1024 {
            self.problem(
                "",
                "the tar archive has no end-of-archive marker: it was cut short",
            );
        }
        for (twin, problem) in std::mem::take(&mut self.twins).finish() {
            self.twin_problem(&twin, problem);
        }
    }

    fn read_failure(&mut self, e: std::io::Error) {
        if let Some(t) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<TransportError>())
        {
            self.summary.transport_error = Some(t.0.clone());
            return;
        }
        let what = match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                "the stream ends early: the tarball is truncated".to_string()
            }
            _ => format!("the tarball is corrupt: {e}"),
        };
        self.problem("", what);
    }
}

/// Checks the compressed tarball read from `compressed`, counting its items into `tally`.
/// `key` names the object in findings.
pub fn check<R: Read + Send>(
    compressed: R,
    key: &str,
    format_version: &str,
    tally: Tally,
    findings: &mut Findings,
) -> TarSummary {
    let mut checker = Checker {
        key,
        findings,
        summary: TarSummary {
            tally,
            ..TarSummary::default()
        },
        twins: Twins::default(),
        heads: head::Reader::default(),
    };
    inflate_beside(compressed, |tar_bytes| {
        checker.run(tar_bytes, format_version)
    });
    checker.summary
}

/// Runs `consume` on the inflated bytes of `compressed`, with decompression on a thread of its
/// own: the two heaviest stages of reading a tarball then use two cores.
pub fn inflate_beside<R: Read + Send, T>(
    compressed: R,
    consume: impl FnOnce(ChunkReader) -> T,
) -> T {
    let (tx, tar_bytes) = stream::channel();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut gz = GzDecoder::new(BufReader::with_capacity(CHUNK, compressed));
            // Buffers come back whole and already zeroed once: reused as they are.
            // Out at once: those in the channel, the one being filled, the one being read and
            // one still held by the twin check.
            let buffers = stream::Recycler::new(stream::IN_FLIGHT + 4);
            loop {
                let mut buf = buffers.take().unwrap_or_else(|| vec![0u8; CHUNK]);
                match gz.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if tx.blocking_send(Ok(buffers.lend(buf, n))).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        break;
                    }
                }
            }
        });
        consume(tar_bytes)
    })
}

#[cfg(test)]
#[path = "tarball_tests.rs"]
mod tests;
