//! Streaming an S3 object into synchronous readers (gzip, tar) running on a blocking thread, so
//! that network transfer and decompression overlap and memory stays bounded by the channel.

use std::io::Read;

use bytes::Bytes;
use tokio::sync::mpsc::{Receiver, Sender};

/// Chunks in flight between a producer and its reader. With chunks of at most [`BATCH`] bytes
/// this bounds buffered data to 4 MiB per channel.
pub const IN_FLIGHT: usize = 16;

/// How many bytes the network task gathers before handing them to the decoder thread.
pub const BATCH: usize = 256 * 1024;

/// The reading end: a `Read` over chunks sent by the network task. An error from the network
/// arrives as an `io::Error` at the point in the stream where it happened.
pub struct ChunkReader {
    rx: Receiver<std::io::Result<Bytes>>,
    current: Bytes,
    done: bool,
}

/// The sender works from async code (`send().await`) and from threads (`blocking_send`); the
/// reader must be used on a thread that may block, never on an async worker.
pub fn channel() -> (Sender<std::io::Result<Bytes>>, ChunkReader) {
    let (tx, rx) = tokio::sync::mpsc::channel(IN_FLIGHT);
    (
        tx,
        ChunkReader {
            rx,
            current: Bytes::new(),
            done: false,
        },
    )
}

impl ChunkReader {
    /// Makes `current` non-empty, waiting for the next chunk if need be; `false` at the end of
    /// the stream.
    fn refill(&mut self) -> std::io::Result<bool> {
        while self.current.is_empty() {
            if self.done {
                return Ok(false);
            }
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // The sender is dropped at the end of the body.
                None => self.done = true,
            }
        }
        Ok(true)
    }

    /// The next `n` bytes, fewer only at the end of the stream: a slice of the chunk they
    /// arrived in when they lie in one (no copy), gathered into a buffer of their own when they
    /// span chunks.
    pub fn take(&mut self, n: usize) -> std::io::Result<Bytes> {
        if !self.refill()? {
            return Ok(Bytes::new());
        }
        if self.current.len() >= n {
            return Ok(self.current.split_to(n));
        }
        let mut gathered = bytes::BytesMut::with_capacity(n);
        while gathered.len() < n && self.refill()? {
            let step = (n - gathered.len()).min(self.current.len());
            gathered.extend_from_slice(&self.current.split_to(step));
        }
        Ok(gathered.freeze())
    }

    /// What is left of the current chunk, or the next one; empty at the end of the stream.
    pub fn chunk(&mut self) -> std::io::Result<Bytes> {
        self.refill()?;
        Ok(std::mem::take(&mut self.current))
    }

    /// Passes over up to `n` bytes without copying them; fewer only at the end of the stream.
    pub fn discard(&mut self, n: u64) -> std::io::Result<u64> {
        let mut left = n;
        while left > 0 && self.refill()? {
            let step = usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(self.current.len());
            self.current = self.current.slice(step..);
            left -= step as u64;
        }
        Ok(n - left)
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.refill()? {
            return Ok(0);
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// Buffers lent out as [`Bytes`] and taken back when the last slice of them is dropped, so a
/// stream of large chunks reuses a few allocations. A fresh buffer per chunk costs twice: the
/// inflate thread zeroed a new 256 KiB for every chunk (5% of a verification's CPU time, on the
/// thread that sets the pace), and each new 2 MiB ranged part made the kernel map and zero fresh
/// pages (page faults were 12% of the CPU time for a 536 MiB backup).
#[derive(Clone)]
pub struct Recycler {
    spare: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    /// Buffers kept at most: as many as can be out at once; any beyond are freed.
    keep: usize,
}

impl Recycler {
    pub fn new(keep: usize) -> Self {
        Recycler {
            spare: Default::default(),
            keep,
        }
    }

    /// A buffer given back earlier, as it was left (length and contents kept), if there is one.
    pub fn take(&self) -> Option<Vec<u8>> {
        self.spare.lock().ok().and_then(|mut spare| spare.pop())
    }

    /// Lends the first `len` bytes of `buf`; the whole buffer comes back when they are dropped.
    pub fn lend(&self, buf: Vec<u8>, len: usize) -> Bytes {
        Bytes::from_owner(Lent {
            buf,
            len,
            home: self.clone(),
        })
    }
}

struct Lent {
    buf: Vec<u8>,
    len: usize,
    home: Recycler,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        // A poisoned lock only means the buffer is freed instead of kept.
        if let Ok(mut spare) = self.home.spare.lock()
            && spare.len() < self.home.keep
        {
            spare.push(std::mem::take(&mut self.buf));
        }
    }
}
