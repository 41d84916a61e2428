//! Verification of a Velero backup directly in S3, independent of the Velero server: the
//! metadata file, every sibling file, and at `full` depth every item of the tarball.
//!
//! Problems with the backup are [`Finding`]s; problems reaching S3 are [`VerifyError`]s, because
//! "could not look" and "looked and found damage" call for different actions.

pub mod finding;
pub mod metadata;
pub mod ranged;
pub mod stream;
pub mod tarball;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use finding::Findings;
pub use finding::{Finding, Severity};

use super::layout::{BackupLocation, FORMAT_VERSION, SIBLINGS};

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
    #[serde(skip)]
    pub duration: Duration,
}

/// Larger sibling files than this are not decoded in memory (logs can grow large; the others
/// are a few megabytes at most).
const MAX_SIBLING_BYTES: u64 = 256 * 1024 * 1024;

fn not_found<E: aws_sdk_s3::error::ProvideErrorMetadata>(
    e: &aws_sdk_s3::error::SdkError<E>,
) -> bool {
    e.raw_response().is_some_and(|r| r.status().as_u16() == 404)
        || e.as_service_error()
            .and_then(|s| s.code())
            .is_some_and(|c| c == "NoSuchKey" || c == "NotFound")
}

async fn get(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, VerifyError> {
    match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => {
            let data = out
                .body
                .collect()
                .await
                .map_err(|e| VerifyError::Interrupted {
                    key: key.into(),
                    message: crate::errors::chain(&e),
                })?;
            Ok(Some(data.into_bytes().to_vec()))
        }
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(VerifyError::S3 {
            key: key.into(),
            message: crate::errors::sdk("S3", "GetObject", &e),
        }),
    }
}

/// Keys and sizes under a prefix.
async fn list(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<BTreeMap<String, u64>, VerifyError> {
    let mut keys = BTreeMap::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| VerifyError::S3 {
            key: prefix.into(),
            message: crate::errors::sdk("S3", "ListObjectsV2", &e),
        })?;
        for o in page.contents() {
            if let Some(k) = o.key() {
                keys.insert(
                    k.to_string(),
                    o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                );
            }
        }
    }
    Ok(keys)
}

/// Gunzips `data` completely (so CRC and length are checked) and parses JSON when asked.
fn decode_sibling(
    key: &str,
    data: &[u8],
    json: bool,
    findings: &mut Findings,
) -> Option<serde_json::Value> {
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
    if !json {
        return None;
    }
    match serde_json::from_slice(&out) {
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

/// Reads the resource list: `apiVersion/Kind` → names.
fn resource_list(
    key: &str,
    doc: &serde_json::Value,
    findings: &mut Findings,
) -> Option<BTreeMap<String, BTreeSet<String>>> {
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
        let set: BTreeSet<String> = names
            .iter()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect();
        list.insert(kind.clone(), set);
    }
    Some(list)
}

fn count(list: &BTreeMap<String, BTreeSet<String>>) -> u64 {
    list.values().map(|s| s.len() as u64).sum()
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

    let present = list(s3, bucket, &location.dir()).await?;
    let metadata_key = location.metadata_key();
    let facts = match get(s3, bucket, &metadata_key).await? {
        Some(bytes) => metadata::check(&metadata_key, &bytes, name, expected_uid, &mut findings),
        None => {
            findings.push(Finding::error(&metadata_key, "`velero-backup.json` is missing: Velero did not finish uploading this backup, or it was removed"));
            metadata::BackupFacts::default()
        }
    };

    let mut listed: Option<BTreeMap<String, BTreeSet<String>>> = None;
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
                let Some(data) = get(s3, bucket, &key).await? else {
                    findings.push(Finding::error(
                        &key,
                        "the file disappeared while being verified",
                    ));
                    continue;
                };
                let doc = decode_sibling(&key, &data, sibling.json, &mut findings);
                if sibling.suffix == "-resource-list.json.gz" {
                    listed = doc
                        .as_ref()
                        .and_then(|d| resource_list(&key, d, &mut findings));
                }
                if sibling.suffix == "-results.gz"
                    && let Some(d) = &doc
                {
                    results(&key, d, &mut findings);
                }
            }
        }
    }
    let listed_count = listed.as_ref().map(count);
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
        let s = stream_tarball(
            s3,
            bucket,
            &tarball_key,
            tarball_size.unwrap_or(0),
            &format_version,
            &mut findings,
            progress,
        )
        .await?;
        if let Some(listed) = &listed {
            compare(&tarball_key, listed, &s.items, &mut findings);
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

    Ok(Verification {
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

/// Items in the resource list but not in the tarball, and the reverse.
fn compare(
    key: &str,
    listed: &BTreeMap<String, BTreeSet<String>>,
    found: &BTreeMap<String, BTreeSet<String>>,
    findings: &mut Findings,
) {
    let empty = BTreeSet::new();
    let kinds: BTreeSet<&String> = listed.keys().chain(found.keys()).collect();
    for kind in kinds {
        let l = listed.get(kind).unwrap_or(&empty);
        let f = found.get(kind).unwrap_or(&empty);
        for missing in l.difference(f) {
            findings.push(Finding::error(
                format!("{key}:{kind} {missing}"),
                "listed in the resource list but missing from the tarball",
            ));
        }
        for extra in f.difference(l) {
            findings.push(Finding::error(
                format!("{key}:{kind} {extra}"),
                "in the tarball but missing from the resource list",
            ));
        }
    }
}

/// Streams the tarball through the checker: the network on this task, decompression and
/// parsing on blocking threads.
async fn stream_tarball(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    size: u64,
    format_version: &str,
    findings: &mut Findings,
    progress: Option<Progress<'_>>,
) -> Result<tarball::TarSummary, VerifyError> {
    if size >= ranged::THRESHOLD {
        return stream_tarball_ranged(s3, bucket, key, format_version, findings, progress).await;
    }
    let out = match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(o) => o,
        Err(e) if not_found(&e) => {
            findings.push(Finding::error(key, DISAPPEARED));
            return Ok(tarball::TarSummary::default());
        }
        Err(e) => {
            return Err(VerifyError::S3 {
                key: key.into(),
                message: crate::errors::sdk("S3", "GetObject", &e),
            });
        }
    };
    let (tx, reader) = stream::channel();
    let key_owned = key.to_string();
    let version = format_version.to_string();
    let checker = tokio::task::spawn_blocking(move || {
        let mut local = Findings::default();
        let summary = tarball::check(reader, &key_owned, &version, &mut local);
        (summary, local)
    });
    let mut body = out.body;
    let mut read = 0u64;
    // The network delivers frames of a few kilobytes. Handing each to the decoder thread would
    // wake it tens of thousands of times per gigabyte; gathering them into batches costs one
    // copy and wakes it a few thousand times.
    let mut batch = bytes::BytesMut::with_capacity(stream::BATCH + 64 * 1024);
    loop {
        match body.try_next().await {
            Ok(Some(chunk)) => {
                read += chunk.len() as u64;
                if let Some(p) = progress {
                    p(read, size);
                }
                batch.extend_from_slice(&chunk);
                if batch.len() >= stream::BATCH {
                    let full = std::mem::replace(
                        &mut batch,
                        bytes::BytesMut::with_capacity(stream::BATCH + 64 * 1024),
                    );
                    if tx.send(Ok(full.freeze())).await.is_err() {
                        // The checker stopped early (it found the stream unreadable); stop
                        // reading.
                        break;
                    }
                }
            }
            Ok(None) => {
                if !batch.is_empty() {
                    let _ = tx.send(Ok(batch.freeze())).await;
                }
                break;
            }
            Err(e) => {
                let err = std::io::Error::other(tarball::TransportError(crate::errors::chain(&e)));
                let _ = tx.send(Err(err)).await;
                break;
            }
        }
    }
    drop(tx);
    finish(checker, key, findings).await
}

const DISAPPEARED: &str = "the tarball disappeared while being verified";

/// The tarball in concurrent ranged GETs (see [`ranged`]), for large backups.
async fn stream_tarball_ranged(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    format_version: &str,
    findings: &mut Findings,
    progress: Option<Progress<'_>>,
) -> Result<tarball::TarSummary, VerifyError> {
    let (tx, reader) = stream::channel();
    let key_owned = key.to_string();
    let version = format_version.to_string();
    let checker = tokio::task::spawn_blocking(move || {
        let mut local = Findings::default();
        let summary = tarball::check(reader, &key_owned, &version, &mut local);
        (summary, local)
    });
    let report = |read: u64, size: u64| {
        if let Some(p) = progress {
            p(read, size);
        }
    };
    match ranged::send(s3, bucket, key, ranged::PART, &tx, report).await {
        Ok(_) => {}
        Err(ranged::RangedError::NotFound) => {
            drop(tx);
            let _ = checker.await;
            findings.push(Finding::error(key, DISAPPEARED));
            return Ok(tarball::TarSummary::default());
        }
        Err(ranged::RangedError::Failed(message)) => {
            let err = std::io::Error::other(tarball::TransportError(message));
            let _ = tx.send(Err(err)).await;
        }
    }
    drop(tx);
    finish(checker, key, findings).await
}

/// Waits for the checker thread and merges what it found.
async fn finish(
    checker: tokio::task::JoinHandle<(tarball::TarSummary, Findings)>,
    key: &str,
    findings: &mut Findings,
) -> Result<tarball::TarSummary, VerifyError> {
    let (summary, local) = checker.await.map_err(|e| VerifyError::Interrupted {
        key: key.into(),
        message: e.to_string(),
    })?;
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
    Ok(summary)
}
