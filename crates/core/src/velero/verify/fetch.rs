//! One S3 object streamed into a synchronous consumer (gzip, tar, a hasher) on a blocking
//! thread, hashed on the network side as it passes. Verification, the manifest check and the
//! restore preview all read tarballs through this, so a tarball is read once per use and its
//! digest comes with whatever the consumer made of it.

use super::s3io::not_found;
use super::stream::{self, ChunkReader};
use super::tarball::TransportError;
use super::{Progress, ranged};
use crate::velero::digest::{Digester, FileDigest};

/// Why an object could not be streamed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// It is not there (any more).
    NotFound,
    /// S3 failed to serve it; the message says why, without credentials.
    Failed(String),
}

/// What the consumer made of the object, and its digest. The digest covers the whole object
/// only when `complete`: a consumer that stops early stops the reading unless `drain` was asked.
pub struct Streamed<T> {
    pub value: T,
    pub digest: FileDigest,
    pub complete: bool,
}

/// Streams `key` (of `size` bytes, from a listing or HEAD) into `consume`, which runs on a
/// blocking thread and reads the bytes through a [`ChunkReader`]. An error from S3 midway
/// reaches the consumer as an I/O error wrapping [`TransportError`] and is returned here too.
pub async fn stream<T, F>(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    size: u64,
    drain: bool,
    progress: Option<Progress<'_>>,
    consume: F,
) -> Result<Streamed<T>, FetchError>
where
    T: Send + 'static,
    F: FnOnce(ChunkReader) -> T + Send + 'static,
{
    let (tx, reader) = stream::channel();
    let consumer = tokio::task::spawn_blocking(move || consume(reader));
    let report = |read: u64, total: u64| {
        if let Some(p) = progress {
            p(read, total);
        }
    };
    let outcome = if size >= ranged::THRESHOLD {
        ranged_read(s3, bucket, key, &tx, drain, report).await
    } else {
        single_read(s3, bucket, key, size, &tx, drain, report).await
    };
    let failure = match &outcome {
        Err(FetchError::Failed(m)) => Some(m.clone()),
        _ => None,
    };
    if let Some(message) = &failure {
        let err = std::io::Error::other(TransportError(message.clone()));
        let _ = tx.send(Err(err)).await;
    }
    drop(tx);
    let value = consumer
        .await
        .map_err(|e| FetchError::Failed(format!("the reader of `{key}` stopped: {e}")))?;
    let (digest, complete) = outcome?;
    Ok(Streamed {
        value,
        digest,
        complete,
    })
}

async fn ranged_read(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
    drain: bool,
    report: impl Fn(u64, u64),
) -> Result<(FileDigest, bool), FetchError> {
    let mut digester: Option<Digester> = None;
    let read = ranged::send_tapped(
        s3,
        bucket,
        key,
        ranged::PART,
        tx,
        drain,
        |part, read, size, etag| {
            digester
                .get_or_insert_with(|| Digester::new(etag, size))
                .update(part);
            report(read, size);
        },
    )
    .await
    .map_err(|e| match e {
        ranged::RangedError::NotFound => FetchError::NotFound,
        ranged::RangedError::Failed(m) => FetchError::Failed(m),
    })?;
    let digester = digester.unwrap_or_else(|| Digester::new(None, 0));
    Ok((digester.finish(key, read.etag), read.read == read.size))
}

/// One GET, its frames gathered into batches before they go to the consumer: the network
/// delivers frames of a few kilobytes, and handing each over would wake the consumer tens of
/// thousands of times per gigabyte.
async fn single_read(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    size: u64,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
    drain: bool,
    report: impl Fn(u64, u64),
) -> Result<(FileDigest, bool), FetchError> {
    let out = match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(o) => o,
        Err(e) if not_found(&e) => return Err(FetchError::NotFound),
        Err(e) => {
            return Err(FetchError::Failed(crate::errors::sdk(
                "S3",
                "GetObject",
                &e,
            )));
        }
    };
    let etag = out.e_tag().map(str::to_string);
    let total = out
        .content_length()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(size);
    let mut digester = Digester::new(etag.as_deref(), total);
    let mut body = out.body;
    let mut read = 0u64;
    let mut receiving = true;
    let fresh = || bytes::BytesMut::with_capacity(stream::BATCH + 64 * 1024);
    let mut batch = fresh();
    loop {
        match body.try_next().await {
            Ok(Some(chunk)) => {
                read += chunk.len() as u64;
                digester.update(&chunk);
                report(read, total);
                if !receiving {
                    if drain {
                        continue;
                    }
                    break;
                }
                batch.extend_from_slice(&chunk);
                if batch.len() >= stream::BATCH {
                    let full = std::mem::replace(&mut batch, fresh());
                    // A consumer that stopped early found the stream unreadable.
                    receiving = tx.send(Ok(full.freeze())).await.is_ok();
                    if !receiving && !drain {
                        break;
                    }
                }
            }
            Ok(None) => {
                if receiving && !batch.is_empty() {
                    let _ = tx.send(Ok(batch.freeze())).await;
                }
                break;
            }
            Err(e) => return Err(FetchError::Failed(crate::errors::chain(&e))),
        }
    }
    let complete = read == total;
    Ok((digester.finish(key, etag), complete))
}
