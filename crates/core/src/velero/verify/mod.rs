//! Verification of a Velero backup directly in S3, independent of the Velero server: the
//! metadata file, every sibling file, and at `full` depth every item of the tarball.
//!
//! Problems with the backup are [`Finding`]s; problems reaching S3 are [`VerifyError`]s, because
//! "could not look" and "looked and found damage" call for different actions.

pub mod fetch;
pub mod finding;
pub mod head;
pub mod listing;
pub mod metadata;
pub mod names;
pub mod ranged;
pub mod s3io;
pub mod scan;
pub mod stream;
pub mod tarball;
pub mod tarwalk;
pub mod tokens;
pub mod twins;

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use finding::Findings;
pub use finding::{Finding, Severity};

use super::digest::{self, FileDigest};
use super::layout::{BackupLocation, FORMAT_VERSION, SIBLINGS};
use fetch::FetchError;
use s3io::{get, list};

/// How deeply to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum VerifyDepth {
    /// The backup's metadata and every small file Velero writes.
    Metadata,
    /// Also stream the whole tarball and check every item (default).
    Full,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read `{key}` from S3: {message}")]
    S3 { key: String, message: String },
    #[error("reading `{key}` from S3 stopped midway: {message}")]
    Interrupted { key: String, message: String },
}

impl VerifyError {
    /// What went wrong, in one line, without the key.
    pub fn message(&self) -> &str {
        match self {
            VerifyError::S3 { message, .. } | VerifyError::Interrupted { message, .. } => message,
        }
    }
}

/// The outcome of a verification that could be carried out.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    pub backup: String,
    pub bucket: String,
    pub prefix: Option<String>,
    pub depth: VerifyDepth,
    pub sound: bool,
    pub findings: Vec<Finding>,
    /// Findings left out of the list because one object produced too many.
    pub suppressed_findings: usize,
    pub items_backed_up: Option<u64>,
    pub items_in_resource_list: Option<u64>,
    pub items_in_tarball: Option<u64>,
    pub tarball_bytes: Option<u64>,
    pub uncompressed_bytes: Option<u64>,
    /// The SHA-256 (and, where it helps, MD5) of every file read whole: what a manifest records.
    pub files: Vec<FileDigest>,
    /// SHA-256 of the items found in the tarball, one `apiVersion/Kind namespace/name` line
    /// each, sorted: a short name for "the same items" (full depth only).
    pub item_list_sha256: Option<String>,
    /// The Backup's uid according to `velero-backup.json`.
    pub uid: Option<String>,
    #[serde(skip)]
    pub duration: Duration,
}

/// Larger sibling files than this are not decoded in memory (logs can grow large; the others
/// are a few megabytes at most).
const MAX_SIBLING_BYTES: u64 = 256 * 1024 * 1024;

/// Gunzips `data` completely (so CRC and length are checked) and parses JSON when asked.
fn decode_sibling(
    key: &str,
    data: &[u8],
    json: bool,
    findings: &mut Findings,
) -> Option<serde_json::Value> {
    let out = gunzip(key, data, findings)?;
    if !json {
        return None;
    }
    parse_json(key, &out, findings)
}

fn parse_json(key: &str, text: &[u8], findings: &mut Findings) -> Option<serde_json::Value> {
    match serde_json::from_slice(text) {
        Ok(v) => Some(v),
        Err(e) => {
            findings.push(Finding::error(
                key,
                format!("the file is not valid JSON: {e}"),
            ));
            None
        }
    }
}

/// Gunzips `data` completely, so that its CRC and length are checked.
fn gunzip(key: &str, data: &[u8], findings: &mut Findings) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut gz = flate2::read::GzDecoder::new(data).take(MAX_SIBLING_BYTES);
    if let Err(e) = gz.read_to_end(&mut out) {
        let message = match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                "the gzip stream ends early: the file is truncated".to_string()
            }
            _ => format!("the gzip stream is corrupt: {e}"),
        };
        findings.push(Finding::error(key, message));
        return None;
    }
    Some(out)
}

/// Reads the resource list (`apiVersion/Kind` → names) from its gzip'd file straight into its
/// compact form, decompressing as it goes: neither the list's text nor a JSON tree of it is
/// ever held whole (for 550,000 items either would cost more than the rest of a verification).
/// A list as Velero writes it is read a buffer at a time ([`listing::read`]); one with escapes
/// or an unusual shape is read by `serde_json`; only a file that does not read that way either
/// takes the slow path, to say what is wrong.
fn resource_list(key: &str, compressed: &[u8], findings: &mut Findings) -> Option<names::Listing> {
    let reader = || {
        std::io::BufReader::with_capacity(
            256 * 1024,
            flate2::read::GzDecoder::new(compressed).take(MAX_SIBLING_BYTES),
        )
    };
    if let Some(list) = listing::read(reader()) {
        return Some(list);
    }
    if let Ok(list) = serde_json::from_reader(reader()) {
        return Some(list);
    }
    let text = gunzip(key, compressed, findings)?;
    let doc = parse_json(key, &text, findings)?;
    let Some(map) = doc.as_object() else {
        findings.push(Finding::error(
            key,
            "the resource list is not a JSON object",
        ));
        return None;
    };
    let mut list = BTreeMap::new();
    for (kind, names) in map {
        let Some(names) = names.as_array() else {
            findings.push(Finding::error(
                key,
                format!("the entry `{kind}` is not a list"),
            ));
            continue;
        };
        let names = names
            .iter()
            .filter_map(|n| n.as_str().map(Box::from))
            .collect();
        list.insert(kind.clone(), names);
    }
    Some(names::Listing::from_names(list))
}

/// Progress of the tarball stream: bytes read so far and the object's size.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// Verifies the backup at `location`. `expected_uid` is the Backup object's uid, when known.
pub async fn verify(
    s3: &aws_sdk_s3::Client,
    location: &BackupLocation,
    expected_uid: Option<&str>,
    depth: VerifyDepth,
    progress: Option<Progress<'_>>,
) -> Result<Verification, VerifyError> {
    let started = Instant::now();
    let mut findings = Findings::default();
    let bucket = location.bucket.as_str();
    let name = location.name.as_str();

    let mut files = Vec::new();
    let present = list(s3, bucket, &location.dir()).await?;
    let metadata_key = location.metadata_key();
    let facts = match get(s3, bucket, &metadata_key).await? {
        Some(o) => {
            files.push(digest::of_bytes(&metadata_key, &o.bytes, o.etag));
            metadata::check(&metadata_key, &o.bytes, name, expected_uid, &mut findings)
        }
        None => {
            findings.push(Finding::error(&metadata_key, "`velero-backup.json` is missing: Velero did not finish uploading this backup, or it was removed"));
            metadata::BackupFacts::default()
        }
    };

    let mut listed: Option<names::Listing> = None;
    for sibling in &SIBLINGS {
        let key = location.sibling_key(sibling);
        match present.get(&key) {
            None if sibling.required => findings.push(Finding::error(&key, "the file is missing")),
            None if sibling.suffix == "-logs.gz" => findings.push(Finding::warning(
                &key,
                "the backup log is missing (Velero uploads it best effort)",
            )),
            None => {}
            Some(size) if *size > MAX_SIBLING_BYTES => findings.push(Finding::warning(
                &key,
                format!("the file is {size} bytes; not decoded"),
            )),
            Some(_) => {
                let Some(o) = get(s3, bucket, &key).await? else {
                    findings.push(Finding::error(
                        &key,
                        "the file disappeared while being verified",
                    ));
                    continue;
                };
                files.push(digest::of_bytes(&key, &o.bytes, o.etag));
                if sibling.suffix == "-resource-list.json.gz" {
                    listed = resource_list(&key, &o.bytes, &mut findings);
                    continue;
                }
                let doc = decode_sibling(&key, &o.bytes, sibling.json, &mut findings);
                if sibling.suffix == "-results.gz"
                    && let Some(d) = &doc
                {
                    results(&key, d, &mut findings);
                }
            }
        }
    }
    // The tarball's items are checked against the list as they stream, so the list is the only
    // set of names held in memory.
    let tally = names::Tally::new(listed);
    let listed_count = tally.listed_count();
    if let (Some(n), Some(backed_up)) = (listed_count, facts.items_backed_up)
        && n != backed_up
    {
        findings.push(Finding::error(
            location.resource_list_key(),
            format!(
                "the resource list has {n} items, but the backup reports {backed_up} backed up"
            ),
        ));
    }

    let tarball_key = location.tarball_key();
    let tarball_size = present.get(&tarball_key).copied();
    match tarball_size {
        None => findings.push(Finding::error(&tarball_key, "the tarball is missing")),
        Some(0) => findings.push(Finding::error(&tarball_key, "the tarball is empty")),
        Some(_) => {}
    }

    let mut summary = None;
    if depth == VerifyDepth::Full && tarball_size.is_some_and(|s| s > 0) {
        let format_version = facts
            .format_version
            .clone()
            .unwrap_or_else(|| FORMAT_VERSION.to_string());
        let (s, file) = stream_tarball(
            s3,
            bucket,
            &tarball_key,
            tarball_size.unwrap_or(0),
            Expected {
                format_version,
                tally,
            },
            &mut findings,
            progress,
        )
        .await?;
        files.extend(file);
        for (kind, item, difference) in s.tally.differences() {
            let message = match difference {
                names::Difference::Missing => {
                    "listed in the resource list but missing from the tarball"
                }
                names::Difference::Extra => "in the tarball but missing from the resource list",
            };
            findings.push(Finding::error(
                format!("{tarball_key}:{kind} {item}"),
                message,
            ));
        }
        if let Some(backed_up) = facts.items_backed_up
            && s.item_count != backed_up
        {
            findings.push(Finding::error(
                &tarball_key,
                format!(
                    "the tarball holds {} items, but the backup reports {backed_up} backed up",
                    s.item_count
                ),
            ));
        }
        summary = Some(s);
    }

    let item_list_sha256 = summary.as_ref().map(|s| s.tally.digest());
    Ok(Verification {
        uid: facts.uid.clone(),
        files,
        item_list_sha256,
        backup: name.to_string(),
        bucket: bucket.to_string(),
        prefix: location.prefix.clone(),
        depth,
        sound: !findings.has_errors(),
        suppressed_findings: findings.suppressed,
        findings: findings.items,
        items_backed_up: facts.items_backed_up,
        items_in_resource_list: listed_count,
        items_in_tarball: summary.as_ref().map(|s| s.item_count),
        tarball_bytes: tarball_size,
        uncompressed_bytes: summary.as_ref().map(|s| s.uncompressed_bytes),
        duration: started.elapsed(),
    })
}

fn results(key: &str, doc: &serde_json::Value, findings: &mut Findings) {
    let total = |section: &str| -> usize {
        let Some(s) = doc.get(section) else { return 0 };
        let arr = |v: Option<&serde_json::Value>| v.and_then(|x| x.as_array()).map_or(0, Vec::len);
        arr(s.get("velero"))
            + arr(s.get("cluster"))
            + s.get("namespaces")
                .and_then(|n| n.as_object())
                .map_or(0, |m| {
                    m.values().map(|v| v.as_array().map_or(0, Vec::len)).sum()
                })
    };
    let errors = total("errors");
    if errors > 0 {
        findings.push(Finding::error(
            key,
            format!("Velero's results list {errors} errors"),
        ));
    }
}

const DISAPPEARED: &str = "the tarball disappeared while being verified";

/// What the tarball is checked against: the format Velero says it wrote, and the resource list.
struct Expected {
    format_version: String,
    tally: names::Tally,
}

/// Streams the tarball through the checker: the network on this task, decompression and
/// parsing on blocking threads. Returns the tarball's digest when it was read whole.
async fn stream_tarball(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    size: u64,
    expected: Expected,
    findings: &mut Findings,
    progress: Option<Progress<'_>>,
) -> Result<(tarball::TarSummary, Option<FileDigest>), VerifyError> {
    let key_owned = key.to_string();
    let streamed = fetch::stream(s3, bucket, key, size, false, progress, move |reader| {
        let mut local = Findings::default();
        let Expected {
            format_version,
            tally,
        } = expected;
        let summary = tarball::check(reader, &key_owned, &format_version, tally, &mut local);
        (summary, local)
    })
    .await;
    let streamed = match streamed {
        Ok(s) => s,
        Err(FetchError::NotFound) => {
            findings.push(Finding::error(key, DISAPPEARED));
            return Ok((tarball::TarSummary::default(), None));
        }
        Err(FetchError::Failed(message)) => {
            return Err(VerifyError::Interrupted {
                key: key.into(),
                message,
            });
        }
    };
    let (summary, local) = streamed.value;
    if let Some(message) = &summary.transport_error {
        return Err(VerifyError::Interrupted {
            key: key.into(),
            message: message.clone(),
        });
    }
    for f in local.items {
        findings.push(f);
    }
    findings.suppressed += local.suppressed;
    Ok((summary, streamed.complete.then_some(streamed.digest)))
}
