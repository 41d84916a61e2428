//! Streaming an S3 object into synchronous readers (gzip, tar) running on a blocking thread, so
//! that network transfer and decompression overlap and memory stays bounded by the channel.

use std::io::Read;

use bytes::Bytes;
use tokio::sync::mpsc::{Receiver, Sender};

/// Chunks in flight between a producer and its reader. With chunks of at most [`BATCH`] bytes
/// this bounds buffered data to 4 MiB per channel.
const IN_FLIGHT: usize = 16;

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

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            if self.done {
                return Ok(0);
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
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

impl ChunkReader {
    /// Passes over up to `n` bytes without copying them; fewer only at the end of the stream.
    fn discard(&mut self, mut n: u64) -> std::io::Result<u64> {
        let wanted = n;
        while n > 0 {
            if self.current.is_empty() {
                if self.done {
                    break;
                }
                match self.rx.blocking_recv() {
                    Some(Ok(chunk)) => self.current = chunk,
                    Some(Err(e)) => {
                        self.done = true;
                        return Err(e);
                    }
                    None => self.done = true,
                }
                continue;
            }
            let step = usize::try_from(n)
                .unwrap_or(usize::MAX)
                .min(self.current.len());
            self.current = self.current.slice(step..);
            n -= step as u64;
        }
        Ok(wanted - n)
    }
}

/// Forward moves only, which is all a tar reader needs to pass over the padding after each
/// entry. Without it the `tar` crate skips by reading into a 32 KiB buffer that it zeroes
/// for every entry (3.7% of a verification's CPU time over 800,000 entries).
impl std::io::Seek for Counting<ChunkReader> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        let std::io::SeekFrom::Current(ahead) = pos else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "the tar stream only moves forward",
            ));
        };
        let Ok(ahead) = u64::try_from(ahead) else {
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
