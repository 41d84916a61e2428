//! The resource list read as Velero writes it — one object of `apiVersion/Kind` keys, each a
//! list of plain names — straight from its gzip stream into [`Listing`]'s compact form.
//!
//! `serde_json` reading from an `io::Read` takes its input a byte at a time, and for a
//! 550,000-item list that took about 0.2 s before the tarball could start streaming (the
//! tarball check needs the list). This reader takes whole buffers, finds each name's end with
//! the same scan the item check uses and copies the name in one go. Anything it does not
//! expect (an escape, a duplicate kind, a value that is not a list of strings, a damaged
//! stream) makes it give up, and the caller reads the list again with `serde_json`, which
//! decodes it exactly or says what is wrong.

use std::collections::BTreeMap;
use std::io::BufRead;

use super::names::Listing;
use super::scan::scan;

/// JSON's whitespace.
fn blank(b: &u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

struct Input<R> {
    src: R,
}

impl<R: BufRead> Input<R> {
    /// The next byte that is not whitespace, left unconsumed; `None` at the end or on an error.
    fn peek(&mut self) -> Option<u8> {
        loop {
            let buf = self.src.fill_buf().ok()?;
            let first = *buf.first()?;
            if !blank(&first) {
                return Some(first);
            }
            self.src.consume(1);
        }
    }

    /// Consumes the next non-whitespace byte if it is `want`.
    fn eat(&mut self, want: u8) -> bool {
        if self.peek() == Some(want) {
            self.src.consume(1);
            return true;
        }
        false
    }

    /// A string without escapes or control characters, appended to `out`; `false` for
    /// anything else. Its bytes are checked as UTF-8 by the caller.
    fn string(&mut self, out: &mut Vec<u8>) -> bool {
        if !self.eat(b'"') {
            return false;
        }
        let mut high = false;
        loop {
            let Ok(buf) = self.src.fill_buf() else {
                return false;
            };
            if buf.is_empty() {
                return false;
            }
            let stop = scan(buf, 0, &mut high);
            out.extend_from_slice(buf.get(..stop).unwrap_or_default());
            let ends = buf.get(stop) == Some(&b'"');
            let more = stop == buf.len();
            self.src.consume(stop + usize::from(ends));
            if ends {
                return true;
            }
            if !more {
                // A backslash or a control character.
                return false;
            }
        }
    }
}

/// The resource list in `src`, or `None` when it is not simply an object of lists of plain
/// names (see the module's documentation).
pub fn read(src: impl BufRead) -> Option<Listing> {
    let mut input = Input { src };
    let mut kinds = BTreeMap::new();
    if !input.eat(b'{') {
        return None;
    }
    let mut first = true;
    while !input.eat(b'}') {
        if !first && !input.eat(b',') {
            return None;
        }
        first = false;
        let mut kind = Vec::new();
        if !input.string(&mut kind) || !input.eat(b':') || !input.eat(b'[') {
            return None;
        }
        let mut text = Vec::new();
        let mut ends = Vec::new();
        let mut first_name = true;
        while !input.eat(b']') {
            if !first_name && !input.eat(b',') {
                return None;
            }
            first_name = false;
            if !input.string(&mut text) {
                return None;
            }
            ends.push(u32::try_from(text.len()).ok()?);
        }
        let kind = String::from_utf8(kind).ok()?;
        let text = String::from_utf8(text).ok()?;
        // The names are valid UTF-8 together; each one is only if every end falls between
        // characters (`"\xc3"` then `"\xa9"` make a valid `é` across two invalid names).
        if !ends.iter().all(|&end| text.is_char_boundary(end as usize)) {
            return None;
        }
        if kinds.insert(kind, (text, ends)).is_some() {
            return None;
        }
    }
    // Nothing but whitespace may follow, and the stream must end cleanly: gzip reports a wrong
    // CRC or length only here, once, and a decoder asked again after that reports a clean end.
    loop {
        let buf = input.src.fill_buf().ok()?;
        if buf.is_empty() {
            return Some(Listing::from_parts(kinds));
        }
        if !buf.iter().all(blank) {
            return None;
        }
        let n = buf.len();
        input.src.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::xorshift::XorShift;

    fn serde(text: &[u8]) -> Option<Listing> {
        serde_json::from_slice(text).ok()
    }

    /// Read through a buffer of `capacity` bytes, so names and whitespace straddle refills.
    fn ours(text: &[u8], capacity: usize) -> Option<Listing> {
        read(std::io::BufReader::with_capacity(capacity, text))
    }

    #[test]
    fn reads_what_serde_reads_and_gives_up_on_the_rest() {
        let plain = r#" {"v1/Secret":["a/s1","a/s2","a/s1"],
            "apps/v1/Deployment" : [ "b/dé" ] , "v1/Namespace":[]}
        "#
        .as_bytes();
        for capacity in [1, 2, 3, 7, 64, 4096] {
            let listing = ours(plain, capacity).expect("plain list");
            assert_eq!(Some(&listing), serde(plain).as_ref(), "{capacity}");
        }
        for given_up in [
            &br#"{"v1/Secret":["a\/b"]}"#[..],
            br#"{"v1/Secret":["a"],"v1/Secret":["b"]}"#,
            br#"{"v1/Secret":"a"}"#,
            br#"{"v1/Secret":[1]}"#,
            br#"{"v1/Secret":["a"]} x"#,
            br#"{"v1/Secret":["a"],}"#,
            br#"{"v1/Secret":["a",]}"#,
            b"{\"v1/Secret\":[\"a\x01\"]}",
            b"{\"v1/Secret\":[\"\xff\"]}",
            b"{\"v1/Secret\":[\"\xc3\",\"\xa9\"]}",
            b"{\"v1/Secret\":[\"a\xe2\",\"\x82\xacb\"]}",
            br#"{"v1/Secret":["a"]"#,
            b"",
        ] {
            assert!(
                ours(given_up, 3).is_none(),
                "{}",
                String::from_utf8_lossy(given_up)
            );
        }
    }

    /// A gzip stream whose CRC (or length) is wrong is refused, though the damage shows only
    /// after the last byte of the list.
    #[test]
    fn a_damaged_gzip_trailer_is_not_a_list() {
        use std::io::Write;
        let text = br#"{"v1/Secret":["a/b"]}"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text).expect("in memory");
        let good = gz.finish().expect("in memory");
        let decode =
            |bytes: &[u8]| read(std::io::BufReader::new(flate2::read::GzDecoder::new(bytes)));
        assert_eq!(decode(&good), serde(text));
        assert!(decode(&good).is_some());
        for at in [good.len() - 8, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 1;
            assert!(decode(&bad).is_none(), "a flipped trailer byte at {at}");
        }
    }

    /// Whatever this reader accepts, serde reads the same; and it accepts every plain list.
    #[test]
    fn agrees_with_serde_on_damaged_lists() {
        let mut rng = XorShift::new(0x1157_0016_0000_0003);
        let pieces: &[&[u8]] = &[
            b"{", b"}", b"[", b"]", b",", b":", b"\"", b"\\", b" ", b"\n", b"a", b"\xc3", b"\xa9",
            b"\",\"", b"1",
        ];
        let (mut accepted, mut rounds) = (0, 0);
        for _ in 0..20_000 {
            let mut text =
                br#"{"v1/Secret":["ns/a","ns/b"],"apps/v1/Deployment":["ns/c"],"v1/Node":[]}"#
                    .to_vec();
            for _ in 0..rng.below(3) {
                let at = rng.below(text.len() + 1);
                let piece = pieces[rng.below(pieces.len())];
                if rng.below(2) == 0 && at < text.len() {
                    text.remove(at);
                } else {
                    text.splice(at..at, piece.iter().copied());
                }
            }
            rounds += 1;
            if let Some(listing) = ours(&text, 1 + rng.below(16)) {
                accepted += 1;
                assert_eq!(
                    Some(listing),
                    serde(&text),
                    "{}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
        assert!(accepted * 5 > rounds, "{accepted} of {rounds}");
    }
}
