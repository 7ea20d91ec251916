//! The reader against hand-made archives: one test per rule it shares with Go.

use super::*;

/// A ustar (or GNU, or v7) header block with the checksum filled in.
struct Hdr {
    block: [u8; BLOCK],
}

impl Hdr {
    fn new(name: &[u8], typeflag: u8, size: u64) -> Hdr {
        let mut block = [0u8; BLOCK];
        block[..name.len()].copy_from_slice(name);
        block[100..108].copy_from_slice(b"0000644\0");
        block[108..116].copy_from_slice(b"0000000\0");
        block[116..124].copy_from_slice(b"0000000\0");
        block[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        block[136..148].copy_from_slice(b"14000000000\0");
        block[156] = typeflag;
        block[257..265].copy_from_slice(b"ustar\x0000");
        Hdr { block }
    }

    fn gnu(mut self) -> Hdr {
        self.block[257..265].copy_from_slice(b"ustar  \0");
        self
    }

    fn set(mut self, at: usize, bytes: &[u8]) -> Hdr {
        self.block[at..at + bytes.len()].copy_from_slice(bytes);
        self
    }

    fn bytes(mut self) -> Vec<u8> {
        self.block[148..156].copy_from_slice(b"        ");
        let sum: u32 = self.block.iter().map(|&b| u32::from(b)).sum();
        self.block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        self.block.to_vec()
    }
}

fn padded(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    out.resize(data.len().div_ceil(BLOCK) * BLOCK, 0);
    out
}

fn record(key: &str, value: &[u8]) -> Vec<u8> {
    pax::format_record(key.as_bytes(), value)
}

fn pax(records: &[u8]) -> Vec<u8> {
    let mut out = Hdr::new(b"PaxHeaders/x", b'x', records.len() as u64).bytes();
    out.extend(padded(records));
    out
}

fn file(name: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Hdr::new(name, b'0', data.len() as u64).bytes();
    out.extend(padded(data));
    out
}

fn end() -> Vec<u8> {
    vec![0; 2 * BLOCK]
}

/// Every entry of `archive` with its data (the stored bytes).
fn read_all(archive: &[u8]) -> Result<Vec<(Entry, Vec<u8>)>> {
    let mut reader = TarReader::new(archive);
    let mut out = Vec::new();
    while let Some(entry) = reader.next_entry()? {
        let mut data = Vec::new();
        let mut buf = [0u8; 100];
        loop {
            let n = reader.read_data(&mut buf).map_err(UnpackError::Source)?;
            if n == 0 {
                break;
            }
            data.extend_from_slice(&buf[..n]);
        }
        out.push((entry, data));
    }
    Ok(out)
}

fn names(archive: &[u8]) -> Vec<String> {
    read_all(archive)
        .unwrap()
        .iter()
        .map(|(e, _)| e.display_name())
        .collect()
}

fn format_error(archive: &[u8]) -> String {
    match read_all(archive) {
        Err(UnpackError::Format { reason, .. }) => reason,
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn pax_values_with_newlines_are_read() {
    // A capability mask with 0x0a bytes (cap_dac_override,cap_fowner has one).
    let capability =
        b"\x01\x00\x00\x02\x0a\x00\x00\x00\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    let mut archive = pax(&[
        record("SCHILY.xattr.security.capability", capability),
        record("path", b"new\nline"),
    ]
    .concat());
    archive.extend(file(b"ignored", b"data"));
    archive.extend(end());
    let entries = read_all(&archive).unwrap();
    assert_eq!(entries.len(), 1);
    let (entry, data) = &entries[0];
    assert_eq!(entry.name, b"new\nline");
    assert_eq!(
        entry.records.get(b"SCHILY.xattr.security.capability"),
        Some(&capability[..])
    );
    assert_eq!(data, b"data");
}

#[test]
fn header_only_entries_have_no_data_whatever_their_size() {
    for typeflag in [b'1', b'2', b'3', b'4', b'5', b'6'] {
        let mut archive = Hdr::new(b"node", typeflag, 1024).bytes();
        // What a size-honouring reader would skip as data: two more members.
        archive.extend(file(b"hidden-1", b"one"));
        archive.extend(file(b"hidden-2", b"two"));
        archive.extend(end());
        assert_eq!(
            names(&archive),
            ["node", "hidden-1", "hidden-2"],
            "type {}",
            typeflag as char
        );
    }
    // The PAX size record does not give them data either.
    let mut archive = pax(&record("size", b"1024"));
    archive.extend(Hdr::new(b"dir/", b'5', 0).bytes());
    archive.extend(file(b"after", b"x"));
    archive.extend(end());
    assert_eq!(names(&archive), ["dir/", "after"]);
    // A v7 directory (type \0, trailing slash) is header-only too.
    let mut archive = Hdr::new(b"old/", 0, 1024).bytes();
    archive.extend(file(b"after", b"x"));
    archive.extend(end());
    let entries = read_all(&archive).unwrap();
    assert_eq!(entries[0].0.typeflag, kind::DIR);
    assert_eq!(entries[1].0.name, b"after");
}

#[test]
fn negative_base256_times_read_signed() {
    let mut mtime = [0xffu8; 12];
    mtime[4..].copy_from_slice(&(-86_400i64).to_be_bytes());
    let mut archive = Hdr::new(b"old", b'0', 0).gnu().set(136, &mtime).bytes();
    archive.extend(end());
    let entries = read_all(&archive).unwrap();
    assert_eq!(entries[0].0.mtime.secs, -86_400);
}

#[test]
fn blank_numeric_fields_read_as_zero() {
    for blank in [&[b' '; 8][..], &[0u8; 8][..]] {
        let mut archive = Hdr::new(b"f", b'0', 0)
            .set(108, blank) // uid
            .set(116, blank) // gid
            .set(100, blank) // mode
            .set(136, &[b' '; 12]) // mtime
            .bytes();
        archive.extend(end());
        let entries = read_all(&archive).unwrap();
        let e = &entries[0].0;
        assert_eq!((e.uid, e.gid, e.mode, e.mtime.secs), (0, 0, 0, 0));
    }
    let archive = [
        Hdr::new(b"f", b'0', 0).set(108, b"12x4567\0").bytes(),
        end(),
    ]
    .concat();
    assert!(format_error(&archive).contains("uid"));
}

#[test]
fn the_last_of_several_metadata_headers_wins() {
    let long = |name: &[u8], typeflag| {
        let mut out = Hdr::new(b"././@LongLink", typeflag, name.len() as u64 + 1)
            .gnu()
            .bytes();
        out.extend(padded(&[name, b"\0"].concat()));
        out
    };
    let archive = [
        long(b"first-name", b'L'),
        long(b"second-name", b'L'),
        long(b"first-link", b'K'),
        long(b"second-link", b'K'),
        Hdr::new(b"short", b'2', 0).gnu().bytes(),
        pax(&record("path", b"pax-one")),
        pax(&[record("path", b"pax-two"), record("uid", b"7")].concat()),
        file(b"short", b""),
        end(),
    ]
    .concat();
    let entries = read_all(&archive).unwrap();
    assert_eq!(entries[0].0.name, b"second-name");
    assert_eq!(entries[0].0.link, b"second-link");
    assert_eq!(entries[1].0.name, b"pax-two");
    assert_eq!(entries[1].0.uid, 7);
    // A GNU long name wins over a PAX path; an empty PAX value keeps the header's.
    let archive = [
        pax(&[record("path", b"from-pax"), record("linkpath", b"")].concat()),
        long(b"from-gnu", b'L'),
        Hdr::new(b"short", b'2', 0).set(157, b"target").bytes(),
        end(),
    ]
    .concat();
    let entries = read_all(&archive).unwrap();
    assert_eq!(entries[0].0.name, b"from-gnu");
    assert_eq!(entries[0].0.link, b"target");
}

#[test]
fn global_headers_are_entries_that_do_not_apply_later() {
    let records = record("uid", b"9");
    let mut global = Hdr::new(b"pax_global_header", b'g', records.len() as u64).bytes();
    global.extend(padded(&records));
    let archive = [global, file(b"f", b"x"), end()].concat();
    let entries = read_all(&archive).unwrap();
    assert_eq!(entries[0].0.typeflag, kind::PAX_GLOBAL);
    assert_eq!(entries[1].0.uid, 0);
}

#[test]
fn the_archive_ends_as_go_decides() {
    // No end marker at all, a lone zero block, and a stream cut inside the last padding.
    let body = file(b"f", b"x");
    for archive in [
        body.clone(),
        [body.clone(), vec![0; BLOCK]].concat(),
        body[..BLOCK + 1].to_vec(),
    ] {
        assert_eq!(names(&archive), ["f"]);
    }
    // A header after one zero block, a truncated header, truncated data.
    let hidden = [body.clone(), vec![0; BLOCK], file(b"g", b"y"), end()].concat();
    assert!(format_error(&hidden).contains("zero block"));
    let cut_header = [body.clone(), vec![1; 100]].concat();
    assert!(
        matches!(read_all(&cut_header), Err(UnpackError::Source(e)) if e.kind() == io::ErrorKind::UnexpectedEof)
    );
    let cut_data = file(b"f", &[7; 2000])[..1000].to_vec();
    assert!(
        matches!(read_all(&cut_data), Err(UnpackError::Source(e)) if e.kind() == io::ErrorKind::UnexpectedEof)
    );
}

#[test]
fn headers_go_refuses_are_refused() {
    let bad_sum = {
        let mut b = Hdr::new(b"f", b'0', 0).bytes();
        b[0] = b'g';
        b
    };
    let negative_size = Hdr::new(b"f", b'0', 0).set(124, &[0xff; 12]).bytes();
    let huge_pax = {
        let mut b = Hdr::new(b"PaxHeaders/x", b'x', (1 << 20) + 1).bytes();
        b.extend(vec![b'x'; (1 << 20) + 512]);
        b
    };
    for (archive, rule) in [
        (bad_sum, "checksum"),
        (negative_size, "negative size"),
        (pax(b"5 a=b\n"), "malformed PAX record"),
        (pax(&record("mtime", b"soon")), "mtime"),
        (huge_pax, "1 MiB"),
    ] {
        let archive = [archive, file(b"after", b""), end()].concat();
        let reason = format_error(&archive);
        assert!(reason.contains(rule), "{reason} lacks {rule}");
    }
}

#[test]
fn prefixes_join_names_by_format() {
    let ustar = Hdr::new(b"name", b'0', 0).set(345, b"pre/fix").bytes();
    let star = Hdr::new(b"name", b'0', 0)
        .set(345, b"star")
        .set(476, b"00000000001\0")
        .set(508, b"tar\0")
        .bytes();
    let archive = [ustar, star, end()].concat();
    assert_eq!(names(&archive), ["pre/fix/name", "star/name"]);
}

fn sparse_expectation(
    archive: &[u8],
    name: &str,
    size: i64,
    fragments: &[(u64, u64)],
    data: &[u8],
) {
    let entries = read_all(archive).unwrap();
    let (entry, stored) = &entries[0];
    assert_eq!(entry.display_name(), name);
    assert_eq!(entry.size, size);
    let got: Vec<(u64, u64)> = entry
        .sparse
        .as_ref()
        .expect("sparse")
        .iter()
        .map(|f| (f.offset, f.length))
        .collect();
    assert_eq!(got, fragments);
    assert_eq!(stored, data);
}

#[test]
fn pax_sparse_formats_are_read() {
    let data = b"abcdef";
    // 0.0: repeated offset/numbytes records.
    let v00 = [
        pax(&[
            record("GNU.sparse.size", b"1000000"),
            record("GNU.sparse.numblocks", b"2"),
            record("GNU.sparse.offset", b"0"),
            record("GNU.sparse.numbytes", b"3"),
            record("GNU.sparse.offset", b"999997"),
            record("GNU.sparse.numbytes", b"3"),
        ]
        .concat()),
        file(b"GNUSparseFile.0/f", data),
        end(),
    ]
    .concat();
    sparse_expectation(
        &v00,
        "GNUSparseFile.0/f",
        1_000_000,
        &[(0, 3), (999_997, 3)],
        data,
    );
    // 0.1: one map record and the real name.
    let v01 = [
        pax(&[
            record("GNU.sparse.size", b"1000000"),
            record("GNU.sparse.numblocks", b"2"),
            record("GNU.sparse.map", b"0,3,999997,3"),
            record("GNU.sparse.name", b"real"),
        ]
        .concat()),
        file(b"GNUSparseFile.0/f", data),
        end(),
    ]
    .concat();
    sparse_expectation(&v01, "real", 1_000_000, &[(0, 3), (999_997, 3)], data);
    // 1.0: the map heads the data, padded to a block.
    let mut stored = padded(b"2\n0\n3\n999997\n3\n");
    stored.extend_from_slice(data);
    let v10 = [
        pax(&[
            record("GNU.sparse.major", b"1"),
            record("GNU.sparse.minor", b"0"),
            record("GNU.sparse.realsize", b"1000000"),
            record("GNU.sparse.name", b"real"),
        ]
        .concat()),
        file(b"GNUSparseFile.0/f", &stored),
        end(),
    ]
    .concat();
    sparse_expectation(&v10, "real", 1_000_000, &[(0, 3), (999_997, 3)], data);
    // A 1.0 map longer than the data it heads is refused (found by the fuzzer: it used to
    // loop forever waiting for the rest of the map).
    for stored in [&b""[..], b"2\n0\n3\n", b"9999999999\n"] {
        let truncated = [
            pax(&[
                record("GNU.sparse.major", b"1"),
                record("GNU.sparse.minor", b"0"),
                record("GNU.sparse.realsize", b"1000000"),
            ]
            .concat()),
            file(b"GNUSparseFile.0/f", stored),
            end(),
        ]
        .concat();
        assert!(
            format_error(&truncated).contains("sparse map truncated"),
            "{stored:?}"
        );
    }
    // A map that does not account for the stored bytes, or overlaps, is refused.
    for map in [&b"0,3,999997,2"[..], b"0,3,2,3", b"0,3,999999,3"] {
        let bad = [
            pax(&[
                record("GNU.sparse.size", b"1000000"),
                record("GNU.sparse.numblocks", b"2"),
                record("GNU.sparse.map", map),
            ]
            .concat()),
            file(b"f", data),
            end(),
        ]
        .concat();
        assert!(format_error(&bad).contains("sparse"), "{map:?}");
    }
}

#[test]
fn old_gnu_sparse_with_extension_blocks_is_read() {
    // Six fragments: four in the header, two in an extension block.
    let fragments: Vec<(u64, u64)> = (0..6).map(|i| (i * 1000, 1)).collect();
    let mut header = Hdr::new(b"sparse", b'S', 6).gnu();
    for (i, (offset, length)) in fragments.iter().take(4).enumerate() {
        header = header
            .set(386 + i * 24, format!("{offset:011o}\0").as_bytes())
            .set(398 + i * 24, format!("{length:011o}\0").as_bytes());
    }
    header = header.set(482, &[1]).set(483, b"00000013611\0"); // real size 6025
    let mut extension = [0u8; BLOCK];
    for (i, (offset, length)) in fragments.iter().skip(4).enumerate() {
        extension[i * 24..i * 24 + 12].copy_from_slice(format!("{offset:011o}\0").as_bytes());
        extension[i * 24 + 12..i * 24 + 24].copy_from_slice(format!("{length:011o}\0").as_bytes());
    }
    let archive = [header.bytes(), extension.to_vec(), padded(b"abcdef"), end()].concat();
    sparse_expectation(&archive, "sparse", 6025, &fragments, b"abcdef");
}
