use super::*;
use crate::types::xorshift::XorShift;
use crate::velero::verify::stream;

/// A reader over `bytes`, delivered in chunks of `chunk` bytes from another thread, as the
/// inflate thread delivers them.
fn reader(bytes: Vec<u8>, chunk: usize) -> ChunkReader {
    let (tx, rx) = stream::channel();
    std::thread::spawn(move || {
        for part in bytes.chunks(chunk.max(1)) {
            if tx.blocking_send(Ok(Bytes::copy_from_slice(part))).is_err() {
                return;
            }
        }
    });
    rx
}

#[derive(Debug, PartialEq, Eq)]
struct Seen {
    path: String,
    kind: Kind,
    content: Vec<u8>,
}

/// Every entry as this walk reads it, then the stream's length and whether its tail is zeros.
fn walk(bytes: &[u8], chunk: usize) -> std::io::Result<(Vec<Seen>, u64, bool)> {
    walk_reading(bytes, chunk, |_| true)
}

/// [`walk`], reading the content only of the entries `read` picks (the others are passed over,
/// as verification passes over directories and entries too large to be items).
fn walk_reading(
    bytes: &[u8],
    chunk: usize,
    read: impl Fn(&str) -> bool,
) -> std::io::Result<(Vec<Seen>, u64, bool)> {
    let mut w = TarWalk::new(reader(bytes.to_vec(), chunk));
    let mut seen = Vec::new();
    while let Some(h) = w.next_entry()? {
        let content = if read(w.path()) {
            w.content()?.to_vec()
        } else {
            Vec::new()
        };
        seen.push(Seen {
            path: w.path().to_string(),
            kind: h.kind,
            content,
        });
    }
    let (total, zeros) = w.finish()?;
    Ok((seen, total, zeros))
}

/// The same entries as the `tar` crate reads them.
fn reference(bytes: &[u8]) -> Vec<Seen> {
    let mut archive = tar::Archive::new(bytes);
    let mut seen = Vec::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let flag = entry.header().entry_type().as_byte();
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content).expect("content");
        seen.push(Seen {
            path,
            kind: Kind::of(flag),
            content,
        });
    }
    seen
}

/// Headers of every format Go's writer and the `tar` crate produce, with paths short and long
/// and contents that end inside, at and just past a block.
fn archive() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let long_dir = format!("resources/{}.example.com/namespaces/team", "x".repeat(90));
    let long_name = format!("{}/{}.json", long_dir, "n".repeat(120));
    let data = |n: usize| -> Vec<u8> { (0..n).map(|i| (i % 251) as u8).collect() };
    fn add(b: &mut tar::Builder<Vec<u8>>, header: &mut tar::Header, path: &str, bytes: &[u8]) {
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        b.append_data(header, path, bytes).expect("append");
    }
    add(
        &mut b,
        &mut tar::Header::new_gnu(),
        "metadata/version",
        b"1.1.0\n",
    );
    for (i, n) in [0usize, 1, 511, 512, 513, 4096, 300_000]
        .into_iter()
        .enumerate()
    {
        add(
            &mut b,
            &mut tar::Header::new_gnu(),
            &format!("gnu/{i}.json"),
            &data(n),
        );
        add(
            &mut b,
            &mut tar::Header::new_ustar(),
            &format!("ustar/{i}.json"),
            &data(n),
        );
        add(
            &mut b,
            &mut tar::Header::new_old(),
            &format!("v7/{i}.json"),
            &data(n),
        );
    }
    // GNU: a long path goes in an `L` entry first.
    add(
        &mut b,
        &mut tar::Header::new_gnu(),
        &long_name,
        b"{\"long\":1}",
    );
    // ustar: split between `prefix` and `name`.
    add(
        &mut b,
        &mut tar::Header::new_ustar(),
        &format!("{long_dir}/short.json"),
        b"{}",
    );
    // PAX: the path from an `x` entry overrides the header's.
    b.append_pax_extensions([("path", long_name.as_bytes()), ("mtime", b"1.5".as_slice())])
        .expect("pax");
    add(
        &mut b,
        &mut tar::Header::new_ustar(),
        "ignored.json",
        b"{\"pax\":1}",
    );
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_size(0);
    b.append_data(&mut dir, "resources/", std::io::empty())
        .expect("dir");
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    b.append_link(&mut link, "resources/link.json", "../../etc/passwd")
        .expect("link");
    b.into_inner().expect("finish")
}

#[test]
fn reads_what_the_tar_crate_reads_in_chunks_of_any_size() {
    let bytes = archive();
    let expected = reference(&bytes);
    assert!(expected.len() > 25, "{}", expected.len());
    for chunk in [1, 7, 511, 512, 1000, 64 * 1024, 256 * 1024] {
        let (seen, total, zeros) = walk(&bytes, chunk).expect("walks");
        assert_eq!(seen, expected, "chunks of {chunk}");
        assert_eq!(total, bytes.len() as u64);
        assert!(zeros);
        // Entries not read are passed over to the same next header.
        let even = |p: &str| p.len().is_multiple_of(2);
        let (some, total, _) = walk_reading(&bytes, chunk, even).expect("walks");
        let paths = |v: &[Seen]| v.iter().map(|s| s.path.clone()).collect::<Vec<_>>();
        assert_eq!(paths(&some), paths(&expected));
        assert_eq!(total, bytes.len() as u64);
    }
    let kinds: Vec<Kind> = expected.iter().map(|s| s.kind).collect();
    assert!(kinds.contains(&Kind::Directory) && kinds.contains(&Kind::Other(b'2')));
}

#[test]
fn byte_sums_match_the_plain_sum() {
    let mut rng = XorShift::new(7);
    for len in [0, 1, 7, 8, 9, 511, 512, 513, 1500] {
        for fill in [None, Some(0xffu8)] {
            let bytes: Vec<u8> = (0..len)
                .map(|_| fill.unwrap_or(rng.next_u64() as u8))
                .collect();
            let plain: u64 = bytes.iter().map(|b| u64::from(*b)).sum();
            assert_eq!(byte_sum(&bytes), plain, "{len} bytes");
        }
    }
}

/// Sets a header's checksum as Go and GNU tar do: the sum of its bytes.
fn unsigned_checksum(block: &mut [u8]) {
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|b| u32::from(*b)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// Sets a header's checksum the way old tars did: the sum of its bytes taken as signed.
fn signed_checksum(block: &mut [u8]) {
    block[148..156].fill(b' ');
    let sum: i64 = block.iter().map(|b| i64::from(*b as i8)).sum();
    let text = format!("{:06o}\0 ", sum);
    block[148..156].copy_from_slice(text.as_bytes());
}

/// An archive of ustar entries, with its end-of-archive marker.
fn entries(list: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content) in list {
        let mut h = tar::Header::new_ustar();
        h.set_size(content.len() as u64);
        b.append_data(&mut h, path, *content).expect("append");
    }
    b.into_inner().expect("finish")
}

fn one_entry(path: &str, content: &[u8]) -> Vec<u8> {
    entries(&[(path, content)])
}

#[test]
fn sizes_in_base_256_and_signed_checksums_are_read_as_go_writes_them() {
    let mut bytes = one_entry("a.json", &[0xffu8; 600]);
    // Size 600 in GNU's binary form, and a byte above 0x7f so the two sums differ.
    bytes[124..136].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x58]);
    bytes[300] = 0xe9;
    signed_checksum(&mut bytes[..512]);
    let (seen, _, _) = walk(&bytes, 100).expect("reads");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].content.len(), 600);
}

fn assert_refused(bytes: &[u8], why: &str) {
    let error = error_of(bytes);
    assert!(error.contains(why), "{error}");
}

fn error_of(bytes: &[u8]) -> String {
    match walk(bytes, 300) {
        Ok(_) => panic!("read without error"),
        Err(e) => format!("{:?}: {e}", e.kind()),
    }
}

#[test]
fn damaged_headers_are_refused_with_where_and_why() {
    let good = one_entry("a.json", b"{}");
    let mut sum = good.clone();
    sum[10] ^= 1;
    assert_eq!(
        error_of(&sum),
        "InvalidData: the tar header at byte 0 has a wrong checksum"
    );
    let mut size = good.clone();
    size[124..136].copy_from_slice(b"0000000009x\0");
    unsigned_checksum(&mut size[..512]);
    assert_eq!(
        error_of(&size),
        "InvalidData: the tar header at byte 0: the size field is not an octal number: \"0000000009x\""
    );
    // Cut inside the second header, and inside the content.
    let two = entries(&[("a.json", b"{}"), ("b.json", b"{}")]);
    assert_eq!(
        error_of(&two[..1024 + 100]),
        "UnexpectedEof: unexpected end of file"
    );
    let big = one_entry("a.json", &[b' '; 2000]);
    assert_eq!(
        error_of(&big[..1000]),
        "UnexpectedEof: unexpected end of file"
    );
}

#[test]
fn a_long_name_with_nothing_after_it_is_refused() {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::GNULongName);
    h.set_size(5);
    b.append_data(&mut h, "././@LongLink", &b"x.json"[..5])
        .expect("append");
    let bytes = b.into_inner().expect("finish");
    assert_eq!(
        error_of(&bytes),
        "InvalidData: a long-name or PAX entry describes an entry that never comes"
    );
    let twice = [bytes[..1024].to_vec(), bytes.clone()].concat();
    assert_refused(&twice, "a second long-name or PAX entry for the same entry");
}

#[test]
fn the_end_of_archive_and_what_follows_it_are_reported() {
    let bytes = one_entry("a.json", b"{}");
    // No marker: the walk ends at the end of the stream.
    let (seen, total, zeros) = walk(&bytes[..1024], 512).expect("reads");
    assert_eq!((seen.len(), total, zeros), (1, 1024, true));
    // Data after the marker.
    let mut trailing = bytes.clone();
    trailing.extend_from_slice(b"junk");
    let (_, total, zeros) = walk(&trailing, 512).expect("reads");
    assert_eq!((total, zeros), (bytes.len() as u64 + 4, false));
}

/// Damaged archives never panic or hang: each is read to an entry list or an error.
#[test]
fn damaged_archives_end_in_entries_or_an_error() {
    let good = archive();
    let mut rng = XorShift::new(0x7a72_3511_9c0f_4e21);
    let (mut read, mut refused) = (0, 0);
    for _ in 0..400 {
        let mut bytes = good.clone();
        for _ in 0..=rng.below(3) {
            let at = rng.below(bytes.len());
            bytes[at] = rng.next_u64() as u8;
        }
        if rng.below(4) == 0 {
            bytes.truncate(rng.below(bytes.len()));
        }
        match walk(&bytes, 1 + rng.below(5000)) {
            Ok(_) => read += 1,
            Err(_) => refused += 1,
        }
    }
    assert!(read > 20 && refused > 20, "{read} read, {refused} refused");
}

/// A ustar header for `path` of `size` bytes and type `flag`, its checksum set.
fn header(path: &str, size: u64, flag: u8) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).expect("path");
    h.set_size(size);
    h.set_entry_type(tar::EntryType::new(flag));
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// `data` padded to whole blocks.
fn padded(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    out.resize(data.len().div_ceil(512) * 512, 0);
    out
}

fn pax_record(key: &str, value: &str) -> String {
    // The length counts itself: try lengths until the record's own length matches.
    let body = format!(" {key}={value}\n");
    let mut len = body.len();
    while format!("{len}{body}").len() != len {
        len += 1;
    }
    format!("{len}{body}")
}

#[test]
fn a_gnu_long_name_wins_over_a_pax_path_as_in_go() {
    let long = "resources/x/namespaces/a/long.json";
    let pax = pax_record("path", "resources/x/namespaces/a/pax.json");
    let bytes = [
        header("././@LongLink", long.len() as u64, b'L'),
        padded(long.as_bytes()),
        header("PaxHeaders/x", pax.len() as u64, b'x'),
        padded(pax.as_bytes()),
        header("short.json", 2, b'0'),
        padded(b"{}"),
        vec![0; 1024],
    ]
    .concat();
    let (seen, _, _) = walk(&bytes, 100).expect("reads");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, long);
}

#[test]
fn a_pax_size_overrides_the_header_and_must_fit_63_bits() {
    let record = pax_record("size", "5");
    let bytes = [
        header("PaxHeaders/x", record.len() as u64, b'x'),
        padded(record.as_bytes()),
        header("a.json", 2, b'0'),
        padded(b"{\"a\"}"),
        vec![0; 1024],
    ]
    .concat();
    let (seen, _, _) = walk(&bytes, 64).expect("reads");
    assert_eq!(seen[0].content, b"{\"a\"}");
    let huge = pax_record("size", &u64::MAX.to_string());
    let bytes = [
        header("PaxHeaders/x", huge.len() as u64, b'x'),
        padded(huge.as_bytes()),
        header("a.json", 2, b'0'),
        vec![0; 1024],
    ]
    .concat();
    assert_refused(&bytes, "fits 63 bits");
    // The same in a header's base-256 size field.
    let mut block = header("a.json", 0, b'0');
    block[124..136].copy_from_slice(&[
        0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ]);
    unsigned_checksum(&mut block);
    let bytes = [block, vec![0; 1024]].concat();
    assert_refused(&bytes, "the size field is too large");
}

/// A directory's size field does not make the bytes after it data: Go reads the next header
/// there, so what looks like a directory's content is an entry of its own.
#[test]
fn entries_that_carry_no_data_are_read_as_go_reads_them() {
    let bytes = [
        header("resources/", 1536, b'5'),
        header("hidden.json", 2, b'0'),
        padded(b"{}"),
        header("resources/link.json", 0, b'2'),
        header("././@LongLink", 9, b'K'),
        padded(b"elsewhere"),
        header("after.json", 2, b'0'),
        padded(b"[]"),
        vec![0; 1024],
    ]
    .concat();
    let (seen, _, _) = walk(&bytes, 333).expect("reads");
    let found: Vec<(&str, Kind)> = seen.iter().map(|s| (s.path.as_str(), s.kind)).collect();
    assert_eq!(
        found,
        [
            ("resources/", Kind::Directory),
            ("hidden.json", Kind::File),
            ("resources/link.json", Kind::Other(b'2')),
            ("after.json", Kind::File),
        ]
    );
}

/// Damage aimed at headers: an archive of many small entries, where most blocks are headers.
#[test]
fn damaged_headers_end_in_entries_or_an_error() {
    let list: Vec<(String, Vec<u8>)> = (0..60)
        .map(|i| {
            (
                format!("resources/s/namespaces/n/{i}.json"),
                vec![b'x'; i % 7],
            )
        })
        .collect();
    let borrowed: Vec<(&str, &[u8])> = list
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice()))
        .collect();
    let good = entries(&borrowed);
    let mut rng = XorShift::new(0x00c0_ffee_1234_5678);
    let (mut read, mut refused) = (0, 0);
    for _ in 0..2000 {
        let mut bytes = good.clone();
        let block = rng.below(bytes.len() / 512) * 512;
        // Inside a header's fields: name, size, checksum, type, magic or prefix.
        let at = block + [0, 5, 124, 130, 135, 148, 150, 156, 257, 345][rng.below(10)];
        bytes[at] = match rng.below(4) {
            0 => 0,
            1 => 0x80,
            2 => 0xff,
            _ => rng.next_u64() as u8,
        };
        match walk(&bytes, 1 + rng.below(2000)) {
            Ok(_) => read += 1,
            Err(_) => refused += 1,
        }
    }
    assert!(
        read > 100 && refused > 100,
        "{read} read, {refused} refused"
    );
}
