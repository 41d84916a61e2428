//! Reading a large tarball as concurrent ranged GETs, delivered in order. One S3 GET stream is
//! limited by the server's per-request throughput (S3's is roughly 100 MB/s per connection;
//! the sandbox's is bound by its CPU), so a few parts in flight keep the decoder
//! fed. Every part is pinned to the ETag seen first (`If-Match`): an object replaced midway
//! fails the read instead of splicing two backups together.

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc::Sender;

use super::stream::{BATCH, Recycler};

/// Bytes per ranged GET.
pub const PART: u64 = 2 * 1024 * 1024;
/// Ranged GETs in flight at once. With [`PART`] this bounds downloaded-but-unread data to
/// 8 MiB on top of the decoder channel.
pub const CONCURRENCY: usize = 4;

/// Objects at least this large are read in parts; smaller ones in one GET.
pub const THRESHOLD: u64 = 4 * PART;

/// Why a ranged read stopped.
#[derive(Debug)]
pub enum RangedError {
    /// HEAD says the object is gone.
    NotFound,
    /// Anything else: the message says what, without credentials.
    Failed(String),
}

/// The inclusive byte ranges of `size` bytes in parts of `part`.
pub fn ranges(size: u64, part: u64) -> Vec<(u64, u64)> {
    let part = part.max(1);
    (0..size.div_ceil(part))
        .map(|i| (i * part, ((i + 1) * part).min(size) - 1))
        .collect()
}

async fn fetch(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    etag: &str,
    (first, last): (u64, u64),
    parts: Recycler,
) -> Result<Bytes, String> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .range(format!("bytes={first}-{last}"))
        .if_match(etag)
        .send()
        .await
        .map_err(|e| {
            if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) {
                "the object changed while it was being read (its ETag no longer matches)"
                    .to_string()
            } else {
                crate::errors::sdk("S3", "GetObject", &e)
            }
        })?;
    let want = last - first + 1;
    let mut buf = parts.take().unwrap_or_default();
    buf.clear();
    buf.reserve(usize::try_from(want).unwrap_or(0));
    let mut body = out.body;
    while let Some(frame) = body
        .try_next()
        .await
        .map_err(|e| crate::errors::chain(&e))?
    {
        buf.extend_from_slice(&frame);
        if buf.len() as u64 > want {
            break;
        }
    }
    if buf.len() as u64 != want {
        return Err(format!(
            "bytes {first}-{last}: {} bytes arrived, {want} expected",
            buf.len()
        ));
    }
    let len = buf.len();
    Ok(parts.lend(buf, len))
}

/// Sends the object's bytes in order into `tx`, in slices of at most [`BATCH`], reading parts
/// of `part` bytes. Returns the bytes sent; stops early, without error, when the receiver is
/// gone.
pub async fn send(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    part: u64,
    tx: &Sender<std::io::Result<Bytes>>,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64, RangedError> {
    let read = send_tapped(s3, bucket, key, part, tx, false, |_, sent, size, _| {
        progress(sent, size)
    })
    .await?;
    Ok(read.sent)
}

/// What a ranged read saw.
#[derive(Debug, Clone)]
pub struct Read {
    /// Bytes handed to the receiver.
    pub sent: u64,
    /// Bytes read from S3: more than `sent` when the receiver stopped early and `drain` was set.
    pub read: u64,
    pub size: u64,
    pub etag: Option<String>,
}

/// [`send`], showing every part to `tap` as it arrives (to hash it, say) with the bytes read so
/// far, the object's size and its ETag. With `drain`, a
/// receiver that stops early does not stop the reading: the rest is still read and tapped, so
/// that a digest covers the whole object even when its content could not be decoded.
pub async fn send_tapped(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    part: u64,
    tx: &Sender<std::io::Result<Bytes>>,
    drain: bool,
    mut tap: impl FnMut(&[u8], u64, u64, Option<&str>),
) -> Result<Read, RangedError> {
    let head = match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(h) => h,
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
            return Err(RangedError::NotFound);
        }
        Err(e) => {
            return Err(RangedError::Failed(crate::errors::sdk(
                "S3",
                "HeadObject",
                &e,
            )));
        }
    };
    let size = head
        .content_length()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0);
    let etag = head.e_tag().map(str::to_string);
    let pin = etag.clone().unwrap_or_else(|| "*".to_string());
    // Parts in flight, plus those still being read from the channel.
    let recycled = Recycler::new(CONCURRENCY * 2);
    let mut parts = futures::stream::iter(ranges(size, part))
        .map(|range| {
            let pin = pin.clone();
            let recycled = recycled.clone();
            async move { fetch(s3, bucket, key, &pin, range, recycled).await }
        })
        .buffered(CONCURRENCY);
    let mut sent = 0u64;
    let mut read = 0u64;
    let mut receiving = true;
    while let Some(part) = parts.next().await {
        let part = part.map_err(RangedError::Failed)?;
        let len = part.len();
        read += len as u64;
        tap(&part, read, size, etag.as_deref());
        let mut offset = 0;
        while receiving && offset < len {
            let end = (offset + BATCH).min(len);
            if tx.send(Ok(part.slice(offset..end))).await.is_err() {
                receiving = false;
                break;
            }
            sent += (end - offset) as u64;
            offset = end;
        }
        if !receiving && !drain {
            break;
        }
    }
    Ok(Read {
        sent,
        read,
        size,
        etag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_object_exactly() {
        assert_eq!(ranges(10, 4), [(0, 3), (4, 7), (8, 9)]);
        assert_eq!(ranges(8, 4), [(0, 3), (4, 7)]);
        assert_eq!(ranges(1, 4), [(0, 0)]);
        assert!(ranges(0, 4).is_empty());
    }
}
