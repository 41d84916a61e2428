//! A tar reader that hands out each entry's bytes where they already are: in the inflated chunk
//! they arrived in. Verification reads gigabytes of small entries (a backup of 550,000 objects is
//! 1.1 million of them), and the `tar` crate's `Read`-based entries cost a copy of every byte
//! plus per-entry path and header work that together took more CPU time than the JSON check.
//!
//! It reads what Go's `archive/tar` (Velero's writer and, at restore, its reader) writes and
//! reads: POSIX ustar (with the `prefix` field), GNU (with `L` long-name entries) and PAX (`x`
//! entries with `path` and `size` records). Every header's checksum is checked, signed or
//! unsigned as Go accepts both. Anything else a tar may hold (links, devices, global PAX headers,
//! sparse files) is handed out as an entry of that [`Kind`] for the caller to refuse.

use std::borrow::Cow;
use std::io::{Error, ErrorKind};

use bytes::Bytes;

use super::stream::ChunkReader;

const BLOCK: u64 = 512;
/// A long name or a PAX header larger than this is not something Velero writes.
const MAX_EXTENSION_BYTES: u64 = 1024 * 1024;
/// Go refuses numbers that do not fit an `int64`; so does this reader, which also keeps every
/// size's rounding to whole blocks from overflowing.
const MAX_NUMBER: u64 = i64::MAX as u64;

/// What kind of entry a header describes (its `typeflag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Directory,
    /// Anything else, by its `typeflag` byte.
    Other(u8),
}

impl Kind {
    fn of(flag: u8) -> Kind {
        match flag {
            b'0' | b'\0' => Kind::File,
            b'5' => Kind::Directory,
            other => Kind::Other(other),
        }
    }

    /// How a person would name it, with its article.
    pub fn describe(self) -> Cow<'static, str> {
        match self {
            Kind::File => "a regular file".into(),
            Kind::Directory => "a directory".into(),
            Kind::Other(b'1') => "a hard link".into(),
            Kind::Other(b'2') => "a symbolic link".into(),
            Kind::Other(b'3') => "a character device".into(),
            Kind::Other(b'4') => "a block device".into(),
            Kind::Other(b'6') => "a FIFO".into(),
            Kind::Other(b'7') => "a contiguous file".into(),
            Kind::Other(b'g') => "a PAX global header".into(),
            Kind::Other(b'S') => "a GNU sparse file".into(),
            Kind::Other(flag) => format!("an entry of type {:?}", char::from(flag)).into(),
        }
    }

    /// Links, devices, directories and FIFOs carry no data, whatever their size field says:
    /// Go's reader (Velero's, at restore) reads the next header right after theirs, so this
    /// reader does too rather than see different entries than the restore would.
    fn header_only(flag: u8) -> bool {
        matches!(flag, b'1'..=b'6')
    }
}

/// An entry's header, as [`TarWalk::next_entry`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    /// The size of its data (a PAX `size` record overrides the header's).
    pub size: u64,
}

/// Reads a tar stream entry by entry.
pub struct TarWalk {
    src: ChunkReader,
    /// Bytes of the tar stream consumed so far.
    position: u64,
    /// Where the current entry's data ends, padding included: the next header starts there.
    next: u64,
    /// The size of the current entry's data.
    size: u64,
    /// The current entry's path as text (invalid UTF-8 replaced), reused from entry to entry.
    path: String,
}

fn corrupt(what: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidData, what.into())
}

/// A numeric header field: octal text padded with spaces or NULs, or (high bit set) the
/// base-256 form GNU and Go use for values octal cannot hold.
fn number(field: &[u8], name: &str) -> Result<u64, String> {
    if let Some((&first, rest)) = field.split_first()
        && first & 0x80 != 0
    {
        // Negative (0xff…) values make no sense for what is read here.
        if first & 0x40 != 0 {
            return Err(format!("the {name} field is negative"));
        }
        let mut value = u64::from(first & 0x3f);
        for &b in rest {
            if value >> 55 != 0 {
                return Err(format!("the {name} field is too large"));
            }
            value = (value << 8) | u64::from(b);
        }
        return Ok(value);
    }
    let text = text(field);
    let digits = text.trim_ascii();
    if digits.is_empty() {
        return Ok(0);
    }
    let mut value: u64 = 0;
    for &d in digits {
        if !(b'0'..=b'7').contains(&d) {
            return Err(format!(
                "the {name} field is not an octal number: {:?}",
                String::from_utf8_lossy(text)
            ));
        }
        value = value
            .checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .filter(|v| *v <= MAX_NUMBER)
            .ok_or_else(|| format!("the {name} field is too large"))?;
    }
    Ok(value)
}

/// A field that holds text up to its first NUL.
fn text(field: &[u8]) -> &[u8] {
    let end = memchr::memchr(0, field).unwrap_or(field.len());
    field.get(..end).unwrap_or_default()
}

/// Appends `bytes` as text, invalid UTF-8 replaced. Paths are nearly always valid: checking
/// that first is several times cheaper than `from_utf8_lossy`'s chunk-by-chunk walk, which took
/// 1.5% of a verification's CPU time.
fn push_text(to: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => to.push_str(text),
        Err(_) => to.push_str(&String::from_utf8_lossy(bytes)),
    }
}

/// The sum of a header's bytes, eight at a time: each word's bytes are added in pairs into four
/// 16-bit lanes, which 64 words cannot overflow (64 × 2 × 255 < 65,536). A header is summed for
/// every entry, and byte by byte this was 2% of a verification's CPU time.
fn byte_sum(bytes: &[u8]) -> u64 {
    const PAIRS: u64 = 0x00ff_00ff_00ff_00ff;
    let mut total = 0u64;
    for block in bytes.chunks(512) {
        let mut lanes = 0u64;
        let mut words = block.chunks_exact(8);
        for word in &mut words {
            let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
            lanes += (w & PAIRS) + ((w >> 8) & PAIRS);
        }
        total += (0..4)
            .map(|lane| (lanes >> (16 * lane)) & 0xffff)
            .sum::<u64>();
        total += words.remainder().iter().map(|b| u64::from(*b)).sum::<u64>();
    }
    total
}

/// The `path` and `size` records of a PAX extended header (`"<len> <key>=<value>\n"` each).
fn pax(mut records: &[u8]) -> Result<(Option<Vec<u8>>, Option<u64>), String> {
    let mut path = None;
    let mut size = None;
    while !records.is_empty() {
        let space = records
            .iter()
            .position(|b| *b == b' ')
            .ok_or("a PAX record has no length")?;
        let len: usize = std::str::from_utf8(&records[..space])
            .ok()
            .and_then(|l| l.parse().ok())
            .ok_or("a PAX record's length is not a number")?;
        if len <= space + 1 || len > records.len() || records[len - 1] != b'\n' {
            return Err("a PAX record's length does not match the record".into());
        }
        let record = &records[space + 1..len - 1];
        let eq = record
            .iter()
            .position(|b| *b == b'=')
            .ok_or("a PAX record has no `=`")?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        match key {
            b"path" => path = Some(value.to_vec()),
            b"size" => {
                size = Some(
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .filter(|s| *s <= MAX_NUMBER)
                        .ok_or("the PAX `size` record is not a number that fits 63 bits")?,
                )
            }
            _ => {}
        }
        records = &records[len..];
    }
    Ok((path, size))
}

impl TarWalk {
    pub fn new(src: ChunkReader) -> Self {
        TarWalk {
            src,
            position: 0,
            next: 0,
            size: 0,
            path: String::new(),
        }
    }

    /// Where the last entry handed out ends, its padding included.
    pub fn entries_end(&self) -> u64 {
        self.next
    }

    /// The path of the entry [`TarWalk::next_entry`] returned last, as text (invalid UTF-8 replaced).
    pub fn path(&self) -> &str {
        &self.path
    }

    fn take(&mut self, n: u64) -> std::io::Result<Bytes> {
        let want = usize::try_from(n).map_err(|_| corrupt("an entry is too large"))?;
        let got = self.src.take(want)?;
        self.position += got.len() as u64;
        if got.len() < want {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        Ok(got)
    }

    /// Passes over whatever of the current entry was not read.
    fn reach_next(&mut self) -> std::io::Result<()> {
        let ahead = self.next.saturating_sub(self.position);
        let passed = self.src.discard(ahead)?;
        self.position += passed;
        if passed < ahead {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    /// One header block; `None` at the end of the stream or at a zero block (the
    /// end-of-archive marker).
    fn block(&mut self) -> std::io::Result<Option<Bytes>> {
        self.reach_next()?;
        let block = self.src.take(BLOCK as usize)?;
        self.position += block.len() as u64;
        if block.is_empty() || block.iter().all(|b| *b == 0) {
            return Ok(None);
        }
        if block.len() < BLOCK as usize {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        let at = self.position - BLOCK;
        let stored = number(&block[148..156], "checksum")
            .map_err(|e| corrupt(format!("the tar header at byte {at}: {e}")))?;
        // The sum of the header's bytes with the checksum field counted as spaces; Go's
        // reader also accepts the sum of the bytes taken as signed, which old tars wrote.
        let field = &block[148..156];
        let unsigned = byte_sum(&block) - byte_sum(field) + 8 * u64::from(b' ');
        let signed = || {
            block.iter().map(|b| i64::from(*b as i8)).sum::<i64>()
                - field.iter().map(|b| i64::from(*b as i8)).sum::<i64>()
                + 8 * i64::from(b' ')
        };
        if stored != unsigned && i64::try_from(stored).ok() != Some(signed()) {
            return Err(corrupt(format!(
                "the tar header at byte {at} has a wrong checksum"
            )));
        }
        Ok(Some(block))
    }

    /// The next entry's header, after any long-name or PAX entries that describe it; `None` at
    /// the end of the archive. Data of the entry before that was not read is passed over.
    pub fn next_entry(&mut self) -> std::io::Result<Option<Header>> {
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link = false;
        let mut pax_path: Option<Vec<u8>> = None;
        let mut pax_size: Option<u64> = None;
        let mut pax_seen = false;
        loop {
            let Some(block) = self.block()? else {
                if long_name.is_some() || long_link || pax_seen {
                    return Err(corrupt(
                        "a long-name or PAX entry describes an entry that never comes",
                    ));
                }
                return Ok(None);
            };
            let at = self.position - BLOCK;
            let bad = |e: String| corrupt(format!("the tar header at byte {at}: {e}"));
            let flag = block[156];
            let extension = matches!(flag, b'L' | b'K' | b'x');
            let size = match pax_size {
                _ if Kind::header_only(flag) => 0,
                Some(s) if !extension => s,
                _ => number(&block[124..136], "size").map_err(bad)?,
            };
            // At most 2^63 - 1 (see MAX_NUMBER): rounding up to a whole block cannot overflow.
            self.next = self
                .position
                .checked_add(size.div_ceil(BLOCK) * BLOCK)
                .ok_or_else(|| bad("the size overflows".into()))?;
            if !extension {
                if flag == b'S' && block[482] != 0 {
                    return Err(bad("a GNU sparse file with extended headers".into()));
                }
                self.path.clear();
                // As Go's reader: the PAX path, then a GNU long name over it; empty ones count
                // as absent.
                let named = long_name.filter(|n| !n.is_empty());
                if let Some(p) = named.or(pax_path.filter(|p| !p.is_empty())) {
                    push_text(&mut self.path, &p);
                } else {
                    // POSIX ustar keeps a long path's leading directories in `prefix`; GNU
                    // headers use that space for other fields.
                    let prefix = text(&block[345..500]);
                    if &block[257..263] == b"ustar\0" && !prefix.is_empty() {
                        push_text(&mut self.path, prefix);
                        self.path.push('/');
                    }
                    push_text(&mut self.path, text(&block[..100]));
                }
                self.size = size;
                return Ok(Some(Header {
                    kind: Kind::of(flag),
                    size,
                }));
            }
            if size > MAX_EXTENSION_BYTES {
                return Err(bad(format!("a {size}-byte long name or PAX header")));
            }
            let data = self.take(size)?;
            let again = match flag {
                b'L' => long_name.replace(text(&data).to_vec()).is_some(),
                b'K' => std::mem::replace(&mut long_link, true),
                _ => {
                    let (path, size) = pax(&data)
                        .map_err(|e| corrupt(format!("the PAX header at byte {at}: {e}")))?;
                    pax_path = path;
                    pax_size = size;
                    std::mem::replace(&mut pax_seen, true)
                }
            };
            if again {
                return Err(bad(
                    "a second long-name or PAX entry for the same entry".into()
                ));
            }
        }
    }

    /// The data of the entry [`TarWalk::next_entry`] returned last: shared with the chunk it arrived
    /// in when it lies in one, gathered into one buffer when it spans two or more.
    pub fn content(&mut self) -> std::io::Result<Bytes> {
        self.take(self.size)
    }

    /// Reads the rest of the stream after the archive's end: its length and whether it is all
    /// zeros (a complete archive is followed by nothing else). Reading to the end also lets the
    /// gzip decoder check its CRC and length.
    pub fn finish(mut self) -> std::io::Result<(u64, bool)> {
        let mut zeros = true;
        loop {
            let chunk = self.src.chunk()?;
            if chunk.is_empty() {
                return Ok((self.position, zeros));
            }
            self.position += chunk.len() as u64;
            zeros &= chunk.iter().all(|b| *b == 0);
        }
    }
}

#[cfg(test)]
#[path = "tarwalk_tests.rs"]
mod tests;
