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

    /// Passes over up to `n` bytes without copying them; fewer only at the end of the stream.
    fn discard(&mut self, n: u64) -> std::io::Result<u64> {
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

/// Forward moves only, which is all a tar reader needs to pass over the padding after each
/// entry. Without it the `tar` crate skips by reading into a 32 KiB buffer that it zeroes
/// for every entry (3.7% of a verification's CPU time over 800,000 entries).
impl std::io::Seek for Counting<ChunkReader> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        let ahead = match pos {
            std::io::SeekFrom::Current(n) => u64::try_from(n).ok(),
            _ => None,
        };
        let Some(ahead) = ahead else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "the tar stream only moves forward",
            ));
        };
        let passed = self.inner.discard(ahead)?;
        self.count += passed;
        if passed < ahead {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(self.count)
    }
}

/// Counts the bytes that pass through a reader.
pub struct Counting<R> {
    pub inner: R,
    pub count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// An entry's bytes, in a buffer reused from entry to entry. Only the first `len` bytes are the
/// entry; the rest is left from a larger earlier one and stays initialized, so reading the next
/// entry does not zero the buffer again (zeroing every item was 4.7% of a verification's CPU
/// time on a backup of 400,000 objects).
#[derive(Debug, Default)]
pub struct ItemBuf {
    buf: Vec<u8>,
    len: usize,
}

impl ItemBuf {
    /// Reads exactly `len` bytes from `from`.
    pub fn fill(&mut self, from: &mut impl Read, len: usize) -> std::io::Result<()> {
        if self.buf.len() < len {
            self.buf.resize(len, 0);
        }
        self.len = len;
        from.read_exact(&mut self.buf[..len])
    }

    pub fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

impl From<&[u8]> for ItemBuf {
    fn from(bytes: &[u8]) -> Self {
        ItemBuf {
            buf: bytes.to_vec(),
            len: bytes.len(),
        }
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
