//! The first of the item check's two passes (the shape of simdjson's "stage 1"): every byte of an
//! item is classified 64 at a time into bit masks, which give, without a branch per byte, where
//! its strings are, whether their contents are legal (no control characters, only JSON's
//! escapes, UTF-8) and where its tokens start. The second pass (`head`'s `quick`) then walks the
//! tokens alone, never the bytes between them.
//!
//! The byte-at-a-time walk this sits in front of stopped at every escape: a Deployment's
//! `last-applied-configuration` annotation holds its spec as JSON text, with an escaped quote
//! every few bytes, and a ConfigMap's file has an escaped newline on every line.
//!
//! [`index`] only ever says "well-formed as far as strings and bytes go" or "not sure": an item
//! it turns down is read again by the precise walk, which says what is wrong and where.

/// One 64-byte block's bytes by class, bit `i` for byte `i`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Classes {
    quote: u64,
    backslash: u64,
    /// `{`, `}`, `[`, `]`, `:` and `,`.
    op: u64,
    /// Bytes up to 0x20: control characters and the space.
    low: u64,
    space: u64,
    /// Any byte at or above 0x80.
    high: bool,
}

/// Byte by byte: the definition [`classify`] must match, and what architectures without SSE2
/// run.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn classify_bytes(block: &[u8; 64]) -> Classes {
    let mut c = Classes::default();
    for (i, &b) in block.iter().enumerate() {
        let bit = 1u64 << i;
        let set = |mask: &mut u64, yes: bool| {
            if yes {
                *mask |= bit;
            }
        };
        set(&mut c.quote, b == b'"');
        set(&mut c.backslash, b == b'\\');
        set(
            &mut c.op,
            matches!(b, b'{' | b'}' | b'[' | b']' | b':' | b','),
        );
        set(&mut c.low, b <= 0x20);
        set(&mut c.space, b == b' ');
        c.high |= b >= 0x80;
    }
    c
}

#[cfg(not(target_arch = "x86_64"))]
fn classify(block: &[u8; 64]) -> Classes {
    classify_bytes(block)
}

/// [`classify_bytes`] sixteen bytes at a time with SSE2, which every x86_64 has.
#[cfg(target_arch = "x86_64")]
fn classify(block: &[u8; 64]) -> Classes {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, min_u8_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };
    let splat = |b: u8| set_splat_i8_m128i(b as i8);
    let (quote, backslash, space) = (splat(b'"'), splat(b'\\'), splat(b' '));
    // `{`/`[` and `}`/`]` differ only in bit 0x20: one compare each after setting it.
    let (case, open, close) = (splat(0x20), splat(b'{'), splat(b'}'));
    let (colon, comma) = (splat(b':'), splat(b','));
    let mut c = Classes::default();
    let mut seen = safe_arch::zeroed_m128i();
    for (k, sixteen) in block.chunks_exact(16).enumerate() {
        let Ok(sixteen) = <&[u8; 16]>::try_from(sixteen) else {
            continue;
        };
        let v = load_unaligned_m128i(sixteen);
        let mask = |m| u64::from(move_mask_i8_m128i(m) as u16) << (16 * k);
        let eq = cmp_eq_mask_i8_m128i;
        let folded = bitor_m128i(v, case);
        let op = bitor_m128i(
            bitor_m128i(eq(folded, open), eq(folded, close)),
            bitor_m128i(eq(v, colon), eq(v, comma)),
        );
        c.quote |= mask(eq(v, quote));
        c.backslash |= mask(eq(v, backslash));
        c.op |= mask(op);
        // Unsigned `b <= 0x20`: the minimum of the two is `b` itself.
        c.low |= mask(eq(min_u8_m128i(v, space), v));
        c.space |= mask(eq(v, space));
        seen = bitor_m128i(seen, v);
    }
    // One test for the block's 64 bytes.
    c.high = move_mask_i8_m128i(seen) != 0;
    c
}

/// Bit `i` set when an odd number of bits at or below `i` are set: inside a string, given its
/// quotes.
fn prefix_xor(mut x: u64) -> u64 {
    for shift in [1, 2, 4, 8, 16, 32] {
        x ^= x << shift;
    }
    x
}

/// The bytes escaped by a backslash: the byte after each backslash that is not itself escaped.
/// `carry` says the block's first byte is escaped (a backslash ended the block before) and is
/// set when this block's last byte escapes the next block's first.
fn escaped(backslash: u64, carry: &mut bool) -> u64 {
    let mut escaped = 0;
    let mut left = backslash;
    if std::mem::take(carry) {
        escaped |= 1;
        left &= !1;
    }
    while left != 0 {
        let i = left.trailing_zeros();
        if i == 63 {
            *carry = true;
            break;
        }
        escaped |= 1 << (i + 1);
        left &= !(3 << i);
    }
    escaped
}

/// The bytes that may follow a backslash in a JSON string, as a table: looked up for every
/// escape, and a Deployment's last-applied annotation has one every few bytes.
const ESCAPES: [bool; 256] = {
    let mut table = [false; 256];
    let legal = b"\"\\/bfnrtu";
    let mut i = 0;
    while i < legal.len() {
        table[legal[i] as usize] = true;
        i += 1;
    }
    table
};

/// Whether the byte at `at`, after a backslash, makes a JSON escape; `u` also needs four hex
/// digits.
fn legal_escape(item: &[u8], at: usize) -> bool {
    match item.get(at) {
        Some(b'u') => item
            .get(at + 1..at + 5)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)),
        Some(&b) => ESCAPES[usize::from(b)],
        None => false,
    }
}

/// Items larger than this go to the precise walk alone: the index holds four bytes per token,
/// and an item of nothing but brackets must not make it large. Kubernetes objects are at most
/// about 1.5 MiB.
pub const MAX_INDEXED: usize = 2 * 1024 * 1024;

/// Slots kept between items (one per byte of the item): 1 MiB, enough for all but the largest
/// objects.
const KEPT_SLOTS: usize = 256 * 1024;

/// The positions of `item`'s tokens: each `{ } [ ] : ,` outside strings, each quote that opens
/// a string, and the first byte of each run of other bytes outside strings (a number, `true`,
/// `false`, `null`, or bytes that do not belong there). `None` when the item is certainly not
/// well-formed JSON or too large to index: a string left open, a control character in a
/// string, an escape JSON does not have, invalid UTF-8, a control character other than
/// whitespace between tokens.
///
/// A string's end is not a token: once every string is known to be well-formed, only the few
/// the head is made of need their ends, found by looking for the next quote.
/// Whether the tokens form JSON (and whether each run is a literal or a number) is for the
/// second pass to decide.
///
/// `slots` is scratch space reused from item to item: it grows to the largest item's size, and
/// a rare huge item's slots are given back at the next item that needs far fewer.
pub fn index<'s>(item: &[u8], slots: &'s mut Vec<u32>) -> Option<&'s [u32]> {
    if item.len() > MAX_INDEXED {
        return None;
    }
    if slots.len() > KEPT_SLOTS && item.len() + 64 <= KEPT_SLOTS {
        *slots = Vec::new();
    }
    // A block has at most 64 tokens: with this many slots each is written without a check on
    // the vector's length (that check and the length's store were a fifth of this function's
    // time).
    let need = item.len() + 64;
    if slots.len() < need {
        slots.resize(need, 0);
    }
    let mut count = 0;
    let mut inside = 0u64; // all ones when the last block ended inside a string
    let mut escape_carry = false;
    let mut run_carry = 0u64; // 1 when the last block ended in a run of other bytes
    let mut high = false;
    for (n, bytes) in item.chunks(64).enumerate() {
        let base = n * 64;
        let padded;
        let block = match <&[u8; 64]>::try_from(bytes) {
            Ok(full) => full,
            Err(_) => {
                // Spaces after the end change nothing: outside a string they are whitespace,
                // and a string still open there is refused below.
                let mut last = [b' '; 64];
                last[..bytes.len()].copy_from_slice(bytes);
                padded = last;
                &padded
            }
        };
        let c = classify(block);
        high |= c.high;
        let escaped = if c.backslash != 0 || escape_carry {
            escaped(c.backslash, &mut escape_carry)
        } else {
            0
        };
        let quote = c.quote & !escaped;
        // Opening quotes and string contents are set; closing quotes are not.
        let in_string = prefix_xor(quote) ^ inside;
        inside = ((in_string as i64) >> 63) as u64;
        let control = c.low & !c.space;
        if control & in_string != 0 {
            return None;
        }
        let mut loose = control & !in_string;
        while loose != 0 {
            let at = base + loose.trailing_zeros() as usize;
            if !matches!(item.get(at), Some(b'\t' | b'\n' | b'\r')) {
                return None;
            }
            loose &= loose - 1;
        }
        // Escapes outside strings need no check: the backslash there starts a run of other
        // bytes, which the second pass refuses.
        let mut escapes = escaped & in_string;
        while escapes != 0 {
            if !legal_escape(item, base + escapes.trailing_zeros() as usize) {
                return None;
            }
            escapes &= escapes - 1;
        }
        let op = c.op & !in_string;
        let other = !in_string & !c.low & !op & !quote;
        let run_starts = other & !((other << 1) | run_carry);
        run_carry = other >> 63;
        let mut found = op | (quote & in_string) | run_starts;
        while found != 0 {
            // At most MAX_INDEXED: fits.
            *slots.get_mut(count)? = (base + found.trailing_zeros() as usize) as u32;
            count += 1;
            found &= found - 1;
        }
    }
    let sound = inside == 0 && (!high || std::str::from_utf8(item).is_ok());
    sound.then(|| slots.get(..count).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::xorshift::XorShift;

    fn tokens(text: &str) -> Option<Vec<u32>> {
        index(text.as_bytes(), &mut Vec::new()).map(<[u32]>::to_vec)
    }

    #[test]
    fn the_vector_classes_are_the_byte_classes() {
        let mut rng = XorShift::new(0x70c3_2222_0000_0001);
        let alphabet = b"\"\\{}[]:, \t\n\r\x00\x1f\x7f\x80\xff[{;<aZ0-+.|}]\x1b\x20\x21";
        for round in 0..2000 {
            let block: [u8; 64] = std::array::from_fn(|_| {
                if round % 2 == 0 {
                    alphabet[rng.below(alphabet.len())]
                } else {
                    rng.below(256) as u8
                }
            });
            assert_eq!(classify(&block), classify_bytes(&block), "{block:?}");
        }
    }

    #[test]
    fn escapes_are_found_across_runs_and_blocks() {
        let mut carry = false;
        // `\\` escapes the second backslash only; `\\\"` escapes a backslash and the quote.
        assert_eq!(escaped(0b11, &mut carry), 0b10);
        assert_eq!(escaped(0b0111, &mut carry), 0b1010);
        assert!(!carry);
        assert_eq!(escaped(1 << 63, &mut carry), 0);
        assert!(carry);
        assert_eq!(
            escaped(0b1, &mut carry),
            0b1,
            "the carried escape takes the backslash"
        );
        assert!(!carry);
        assert_eq!(escaped(0, &mut carry), 0);
    }

    #[test]
    fn tokens_are_the_structure_opening_quotes_and_runs_outside_strings() {
        // 0         1         2
        // 0123456789012345678901234567
        // {"a{,}":[1, true,"x\"]"],"b":null}
        let t = tokens(r#"{"a{,}":[1, true,"x\"]"],"b":null}"#).expect("indexed");
        assert_eq!(t, [0, 1, 7, 8, 9, 10, 12, 16, 17, 23, 24, 25, 28, 29, 33]);
        // Runs spanning a block boundary start once.
        let long = format!("{{\"a\":{}{}}}", " ".repeat(58), "1".repeat(20));
        assert_eq!(tokens(&long).expect("indexed"), [0, 1, 4, 63, 83]);
    }

    #[test]
    fn refuses_what_strings_cannot_hold() {
        for bad in [
            "{\"a\":\"open}",
            "{\"a\":\"tab\there\"}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\\u12g4\"}",
            "{\"a\":\"\\u12\"}",
            "{\"a\":1\u{1}}",
            "{\"a\":\"\\",
        ] {
            assert!(tokens(bad).is_none(), "{bad:?}");
        }
        assert!(index(b"{\"a\":\"\xff\"}", &mut Vec::new()).is_none());
        for good in [
            "{\"a\":\"\\\\\",\"b\":\"\\\"\\/\\b\\f\\n\\r\\t\\u00e9\"}",
            "{\n\t\"a\" :\r\n 1 }",
            "{\"é\":\"ünïcode\"}",
        ] {
            assert!(tokens(good).is_some(), "{good:?}");
        }
    }
}
