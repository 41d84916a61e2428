//! The item check's innermost loop: finding where the fast path inside a JSON string ends. Most
//! of an item's bytes are inside strings (base64 data, configuration text, annotations holding
//! JSON), so this runs over nearly every byte verification inflates.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// A mask whose lowest set bit marks the first byte of `w` (little-endian) that stops a scan
/// inside a string: `"`, `\` or a control character. Bits above the first hit may be spurious
/// (borrows), so only the lowest one is used. Non-ASCII bytes do not stop it: they are noted
/// by [`scan`] and the string checked as UTF-8 once it ends.
#[inline]
fn stops(w: u64) -> u64 {
    let zero = |x: u64| x.wrapping_sub(ONES) & !x;
    let quote = zero(w ^ (ONES * u64::from(b'"')));
    let backslash = zero(w ^ (ONES * u64::from(b'\\')));
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    (quote | backslash | control) & HIGHS
}

/// From `i`, the position of the first `"`, `\` or control character in `b` (or its length),
/// eight bytes at a time. Sets `high` when a byte it passed over, or one near the stop, is not
/// ASCII: the string must then be checked as UTF-8.
fn scan_words(b: &[u8], mut i: usize, high: &mut bool) -> usize {
    while let Some(chunk) = b.get(i..).and_then(|r| r.first_chunk::<8>()) {
        let w = u64::from_le_bytes(*chunk);
        *high |= w & HIGHS != 0;
        let m = stops(w);
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            return i;
        }
        *high |= c >= 0x80;
        i += 1;
    }
    i
}

/// [`scan_words`], sixteen bytes at a time with SSE2 (every x86_64 has it), 64 at a time once a
/// string is long: most of an item's bytes are inside strings, and this loop is the item
/// check's busiest.
#[cfg(target_arch = "x86_64")]
pub fn scan(b: &[u8], mut i: usize, high: &mut bool) -> usize {
    use safe_arch::{
        bitor_m128i, bitxor_m128i, cmp_eq_mask_i8_m128i, cmp_lt_mask_i8_m128i,
        load_unaligned_m128i, m128i, move_mask_i8_m128i, set_splat_i8_m128i, zeroed_m128i,
    };
    let quote = set_splat_i8_m128i(b'"' as i8);
    let backslash = set_splat_i8_m128i(b'\\' as i8);
    // Unsigned `< 0x20` as a signed compare: flip the top bit of both sides.
    let flip = set_splat_i8_m128i(i8::MIN);
    let below = set_splat_i8_m128i((0x20u8 ^ 0x80) as i8);
    let special = |v: m128i| {
        bitor_m128i(
            bitor_m128i(
                cmp_eq_mask_i8_m128i(v, quote),
                cmp_eq_mask_i8_m128i(v, backslash),
            ),
            cmp_lt_mask_i8_m128i(bitxor_m128i(v, flip), below),
        )
    };
    let mut seen = zeroed_m128i();
    let mut first = true;
    loop {
        // After the first block, four at a time: one test for 64 bytes.
        if !first && let Some(wide) = b.get(i..).and_then(|r| r.first_chunk::<64>()) {
            let (v0, v1, v2, v3) = (
                load_unaligned_m128i(wide[..16].try_into().unwrap_or(&[0; 16])),
                load_unaligned_m128i(wide[16..32].try_into().unwrap_or(&[0; 16])),
                load_unaligned_m128i(wide[32..48].try_into().unwrap_or(&[0; 16])),
                load_unaligned_m128i(wide[48..].try_into().unwrap_or(&[0; 16])),
            );
            let any = bitor_m128i(
                bitor_m128i(special(v0), special(v1)),
                bitor_m128i(special(v2), special(v3)),
            );
            if move_mask_i8_m128i(any) == 0 {
                seen = bitor_m128i(seen, bitor_m128i(bitor_m128i(v0, v1), bitor_m128i(v2, v3)));
                i += 64;
                continue;
            }
        }
        first = false;
        let Some(chunk) = b.get(i..).and_then(|r| r.first_chunk::<16>()) else {
            *high |= move_mask_i8_m128i(seen) != 0;
            return scan_words(b, i, high);
        };
        let v = load_unaligned_m128i(chunk);
        seen = bitor_m128i(seen, v);
        let m = move_mask_i8_m128i(special(v));
        if m != 0 {
            *high |= move_mask_i8_m128i(seen) != 0;
            return i + m.trailing_zeros() as usize;
        }
        i += 16;
    }
}

#[cfg(not(target_arch = "x86_64"))]
pub fn scan(b: &[u8], i: usize, high: &mut bool) -> usize {
    scan_words(b, i, high)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::xorshift::XorShift;

    #[test]
    fn stops_finds_the_first_special_byte() {
        for (i, special) in [b'"', b'\\', 0x00, 0x1F].into_iter().enumerate() {
            for at in 0..8 {
                let mut w = [b'a'; 8];
                w[at] = special;
                // Another special byte above it must not move it, nor a borrow out of it mark the
                // byte above as the first.
                if at < 7 {
                    w[at + 1] = [b'"', 0x01, 0xC0][i % 3];
                    w[7] = [0x00, b'\\', 0xFF][i % 3];
                }
                let m = stops(u64::from_le_bytes(w));
                assert_eq!(m.trailing_zeros() / 8, at as u32, "{special:#x} at {at}");
            }
        }
        for plain in [
            *b"abcdefgh",
            *b"        ",
            *b"~!#$%&'(",
            [0x20, 0x7F, b'[', b']', b'{', 0x21, 0x23, 0x5B],
            [0x80, 0xFF, 0xC3, 0xA9, 0xA0, 0x9F, 0x21, 0xE2],
        ] {
            assert_eq!(stops(u64::from_le_bytes(plain)), 0, "{plain:?}");
        }
    }

    /// The vector scan and the word scan stop at the same byte and see the same non-ASCII bytes,
    /// wherever in a block (or the tail after the last whole block) the stop falls.
    #[test]
    fn scans_stop_at_the_first_special_byte_at_every_offset() {
        let mut rng = XorShift::new(0x5ca9_0000_1234_5678);
        for len in [0, 1, 7, 15, 16, 17, 63, 64, 65, 100, 200] {
            for at in 0..=len {
                for special in [b'"', b'\\', 0x00, 0x1F, b'\n'] {
                    let mut bytes: Vec<u8> =
                        (0..len).map(|_| b'a' + (rng.below(26) as u8)).collect();
                    if at < len {
                        bytes[at] = special;
                    }
                    // Bytes that are not stops, on either side of each threshold.
                    for _ in 0..len / 8 {
                        let j = rng.below(len.max(1));
                        if j != at {
                            bytes[j] = [0x20, 0x21, 0x7F, b'/', b'{'][rng.below(5)];
                        }
                    }
                    let non_ascii = rng.below(3) == 0 && at > 0;
                    let high_at = if non_ascii { rng.below(at) } else { 0 };
                    if non_ascii {
                        bytes[high_at] = [0x80, 0xC3, 0xFF, 0xA0][rng.below(4)];
                    }
                    for start in [0, at.min(3)] {
                        let (mut vector, mut words) = (false, false);
                        let stop = scan(&bytes, start, &mut vector);
                        assert_eq!(stop, at, "len {len}, {special:#x} at {at}, from {start}");
                        assert_eq!(scan_words(&bytes, start, &mut words), at);
                        if non_ascii && start <= high_at {
                            assert!(vector && words, "len {len}, at {at}");
                        }
                    }
                }
            }
        }
    }
}
