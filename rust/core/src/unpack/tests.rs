//! End-to-end tests of the engine on tars built in memory.

use super::*;
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "ocistore-unpack-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("outside")).unwrap();
        std::fs::write(dir.join("outside/canary"), b"canary").unwrap();
        Scratch(dir)
    }
    fn dest(&self) -> PathBuf {
        self.0.join("root")
    }
    fn outside_untouched(&self) {
        let names: Vec<_> = std::fs::read_dir(self.0.join("outside"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("canary")]);
        assert_eq!(
            std::fs::read(self.0.join("outside/canary")).unwrap(),
            b"canary"
        );
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A tar under construction; entries are raw headers so tests can write anything.
struct TarBuilder(tar::Builder<Vec<u8>>);

impl TarBuilder {
    fn new() -> Self {
        TarBuilder(tar::Builder::new(Vec::new()))
    }
    fn entry(
        mut self,
        kind: tar::EntryType,
        path: &str,
        link: &str,
        data: &[u8],
        mode: u32,
    ) -> Self {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        h.set_size(data.len() as u64);
        // Raw names: the builder's own path checks would refuse the hostile ones.
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..path.len()].copy_from_slice(path.as_bytes());
        gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }
    fn file_owned(mut self, path: &str, data: &[u8], uid: u64, gid: u64) -> Self {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_size(data.len() as u64);
        h.set_path(path).unwrap();
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }
    /// A file whose name may be longer than a header holds (a GNU long-name entry).
    fn long_file(mut self, path: &str, data: &[u8]) -> Self {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        self.0.append_data(&mut h, path, data).unwrap();
        self
    }
    fn file(self, path: &str, data: &[u8]) -> Self {
        self.entry(tar::EntryType::Regular, path, "", data, 0o644)
    }
    fn dir(self, path: &str) -> Self {
        self.entry(tar::EntryType::Directory, path, "", b"", 0o755)
    }
    fn symlink(self, path: &str, target: &str) -> Self {
        self.entry(tar::EntryType::Symlink, path, target, b"", 0o777)
    }
    fn hardlink(self, path: &str, target: &str) -> Self {
        self.entry(tar::EntryType::Link, path, target, b"", 0o644)
    }
    /// `count` files of a few kB in `dir` (`""` or ending in `/`).
    fn many_files(mut self, dir: &str, count: usize) -> Self {
        for i in 0..count {
            self = self.file(&format!("{dir}burst-{i}"), &pattern(4000, i as u8));
        }
        self
    }
    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// Options for a plain tar, with the worker threads on whatever the machine or environment says
/// (so that every test here covers them).
fn options() -> UnpackOptions {
    let mut opts = UnpackOptions::for_media_type("application/vnd.oci.image.layer.v1.tar").unwrap();
    opts.writers = 2;
    opts
}

fn unpack(bytes: Vec<u8>, dest: &Path, opts: &UnpackOptions) -> Result<UnpackStats> {
    unpack_reader(io::Cursor::new(bytes), dest, opts, true)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn sha256(data: &[u8]) -> ContentDigest {
    let mut h = Hasher::new(Algorithm::Sha256);
    h.update(data);
    h.digest()
}

#[test]
fn regular_tree_with_links_and_modes() {
    let s = Scratch::new("tree");
    let tar = TarBuilder::new()
        .dir("etc/")
        .file("etc/hostname", b"node\n")
        .entry(tar::EntryType::Regular, "bin/tool", "", b"#!", 0o755)
        .symlink("usr/bin/tool", "/bin/tool")
        .hardlink("etc/hostname.bak", "etc/hostname")
        .bytes();
    let stats = unpack(tar.clone(), &s.dest(), &options()).unwrap();
    assert_eq!(stats.entries, 5);
    assert_eq!(stats.bytes_written, 7);
    assert_eq!(stats.diff_id, sha256(&tar).to_string());
    assert_eq!(stats.uncompressed_size, tar.len() as u64);
    let d = s.dest();
    assert_eq!(std::fs::read(d.join("etc/hostname")).unwrap(), b"node\n");
    let meta = std::fs::metadata(d.join("bin/tool")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
    assert_eq!(meta.mtime(), 1_600_000_000);
    assert_eq!(
        std::fs::read_link(d.join("usr/bin/tool")).unwrap(),
        Path::new("/bin/tool")
    );
    let a = std::fs::metadata(d.join("etc/hostname")).unwrap();
    let b = std::fs::metadata(d.join("etc/hostname.bak")).unwrap();
    assert_eq!(a.ino(), b.ino());
    assert_eq!(
        std::fs::metadata(d.join("etc")).unwrap().mtime(),
        1_600_000_000
    );
}

#[test]
fn gzip_digests_are_verified_in_one_pass() {
    let s = Scratch::new("gzip");
    let tar = TarBuilder::new().file("a", b"hello").bytes();
    let blob = gzip(&tar);
    let mut opts = options();
    opts.compression = Compression::Gzip;
    opts.digest = Some(sha256(&blob));
    opts.diff_id = Some(sha256(&tar));
    let stats = unpack(blob.clone(), &s.dest(), &opts).unwrap();
    assert_eq!(
        stats.digest.as_deref(),
        Some(sha256(&blob).to_string().as_str())
    );
    assert_eq!(stats.compressed_size, blob.len() as u64);

    opts.diff_id = Some(sha256(b"other"));
    match unpack(blob.clone(), &s.dest(), &opts) {
        Err(UnpackError::DigestMismatch {
            what: "diff_id",
            actual,
            ..
        }) => {
            assert_eq!(actual, sha256(&tar).to_string())
        }
        other => panic!("unexpected {other:?}"),
    }
    opts.diff_id = None;
    opts.digest = Some(sha256(b"other"));
    assert!(matches!(
        unpack(blob, &s.dest(), &opts),
        Err(UnpackError::DigestMismatch { what: "digest", .. })
    ));
}

#[test]
fn trailing_data_after_the_tar_end_is_hashed() {
    let s = Scratch::new("trailing");
    let mut tar = TarBuilder::new().file("a", b"x").bytes();
    tar.extend_from_slice(b"garbage after the end");
    let stats = unpack(tar.clone(), &s.dest(), &options()).unwrap();
    assert_eq!(stats.diff_id, sha256(&tar).to_string());
    assert_eq!(stats.uncompressed_size, tar.len() as u64);
}

#[test]
fn whiteouts_and_opaque_directories_across_layers() {
    let s = Scratch::new("whiteout");
    let lower = TarBuilder::new()
        .file("keep", b"1")
        .file("gone", b"1")
        .file("dir/old", b"1")
        .file("opq/lower", b"1")
        .file("opq/sub/lower", b"1")
        .bytes();
    unpack(lower, &s.dest(), &options()).unwrap();
    let upper = TarBuilder::new()
        .file(".wh.gone", b"")
        .file("dir/.wh.old", b"")
        .file("opq/new", b"2")
        .file("opq/sub/new", b"2")
        .file("opq/.wh..wh..opq", b"") // late marker: must not hide this layer's entries
        .file(".wh.keep-not-there", b"")
        .bytes();
    let stats = unpack(upper, &s.dest(), &options()).unwrap();
    assert_eq!(stats.whiteouts, 4);
    let d = s.dest();
    assert!(d.join("keep").exists());
    assert!(!d.join("gone").exists() && !d.join(".wh.gone").exists());
    assert!(d.join("dir").is_dir() && !d.join("dir/old").exists());
    assert!(d.join("opq/new").exists() && d.join("opq/sub/new").exists());
    assert!(!d.join("opq/lower").exists() && !d.join("opq/sub/lower").exists());
    assert!(!d.join("opq/.wh..wh..opq").exists());
}

#[test]
fn hostile_entries_are_refused_and_nothing_escapes() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "dotdot",
            TarBuilder::new().file("../outside/evil", b"x").bytes(),
        ),
        (
            "hardlink-out",
            TarBuilder::new().hardlink("h", "../outside/canary").bytes(),
        ),
        (
            "whiteout-dotdot",
            TarBuilder::new().file("a/.wh...", b"").bytes(),
        ),
        (
            "root-hardlink",
            TarBuilder::new().hardlink("x", "/").bytes(),
        ),
    ];
    for (tag, tar) in cases {
        let s = Scratch::new(tag);
        let err = unpack(tar, &s.dest(), &options()).unwrap_err();
        assert!(matches!(err, UnpackError::Unsafe { .. }), "{tag}: {err:?}");
        s.outside_untouched();
    }
    // Whatever resolves to the root is ignored, as containerd does ("resolved to root").
    for (tag, tar) in [
        ("root-symlink", TarBuilder::new().symlink(".", "/").bytes()),
        ("root-file", TarBuilder::new().file(".", b"x").bytes()),
    ] {
        let s = Scratch::new(tag);
        let stats = unpack(tar, &s.dest(), &options()).unwrap();
        assert!(stats.skipped[0].1.contains("root"), "{tag}: {stats:?}");
        assert!(s.dest().is_dir() && !s.dest().is_symlink());
        s.outside_untouched();
    }
}

#[test]
fn symlinked_parents_resolve_inside_the_root() {
    for resolver in [Resolver::Auto, Resolver::Walk] {
        let s = Scratch::new(&format!("symparent-{resolver:?}"));
        let outside = s.0.join("outside");
        let mut opts = options();
        opts.resolver = resolver;
        let first = TarBuilder::new()
            .symlink("abs", outside.to_str().unwrap())
            .symlink("rel", "../../../../../../outside")
            .bytes();
        unpack(first, &s.dest(), &opts).unwrap();
        let second = TarBuilder::new()
            .file("abs/canary", b"pwned")
            .file("rel/canary", b"pwned")
            .hardlink("abs/link", "abs/canary")
            .file("abs/.wh.canary", b"")
            .bytes();
        unpack(second, &s.dest(), &opts).unwrap();
        s.outside_untouched();
        assert_eq!(
            std::fs::read(s.dest().join("outside/canary")).unwrap(),
            b"pwned"
        );
    }
}

#[test]
fn later_entries_replace_earlier_ones_of_another_type() {
    let s = Scratch::new("replace");
    let tar = TarBuilder::new()
        .file("a/b", b"file")
        .file("a", b"now a file")
        .dir("c/")
        .file("c/inner", b"x")
        .symlink("c", "a")
        .file("d", b"x")
        .dir("d/")
        .bytes();
    unpack(tar, &s.dest(), &options()).unwrap();
    let d = s.dest();
    assert_eq!(std::fs::read(d.join("a")).unwrap(), b"now a file");
    assert_eq!(std::fs::read_link(d.join("c")).unwrap(), Path::new("a"));
    assert!(d.join("d").is_dir());
}

#[test]
fn limits_stop_bombs() {
    let s = Scratch::new("limits");
    let big = vec![0u8; 1 << 20];
    let tar = TarBuilder::new().file("big", &big).bytes();
    let mut opts = options();
    opts.compression = Compression::Gzip;
    opts.limits.max_file_size = Some(1000);
    assert!(matches!(
        unpack(gzip(&tar), &s.dest(), &opts),
        Err(UnpackError::Limit {
            what: "file size",
            ..
        })
    ));
    opts.limits = UnpackLimits::NONE;
    opts.limits.max_bytes = Some(4096);
    assert!(matches!(
        unpack(gzip(&tar), &s.dest(), &opts),
        Err(UnpackError::Limit {
            what: "uncompressed bytes",
            ..
        })
    ));
    opts.limits = UnpackLimits::NONE;
    opts.limits.max_entries = Some(1);
    let two = TarBuilder::new().file("a", b"").file("b", b"").bytes();
    assert!(matches!(
        unpack(gzip(&two), &s.dest(), &opts),
        Err(UnpackError::Limit {
            what: "entries",
            ..
        })
    ));
}

#[test]
fn truncated_and_corrupt_streams_are_format_errors() {
    let s = Scratch::new("truncated");
    let tar = TarBuilder::new().file("a", &[7u8; 5000]).bytes();
    let blob = gzip(&tar);
    let mut opts = options();
    opts.compression = Compression::Gzip;
    for cut in [blob.len() / 2, 12] {
        let err = unpack(blob[..cut].to_vec(), &s.dest(), &opts).unwrap_err();
        assert!(matches!(err, UnpackError::Format { .. }), "{err:?}");
    }
    let err = unpack(tar[..1000].to_vec(), &s.dest(), &options()).unwrap_err();
    assert!(matches!(err, UnpackError::Format { .. }), "{err:?}");
    let err = unpack(b"not gzip".to_vec(), &s.dest(), &opts).unwrap_err();
    assert!(matches!(err, UnpackError::Format { .. }), "{err:?}");
}

#[test]
fn unprivileged_mode_strips_setid_and_skips_devices() {
    let s = Scratch::new("unpriv");
    let mut opts = options();
    opts.privileges = Privileges::Unprivileged;
    let tar = TarBuilder::new()
        .entry(tar::EntryType::Regular, "suid", "", b"x", 0o4755)
        .entry(tar::EntryType::Char, "null", "", b"", 0o666)
        .bytes();
    let stats = unpack(tar, &s.dest(), &opts).unwrap();
    let mode = std::fs::metadata(s.dest().join("suid"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);
    assert!(!s.dest().join("null").exists());
    assert_eq!(stats.skipped.len(), 2, "{:?}", stats.skipped);
}

#[test]
fn layer_writer_streams_chunks() {
    let s = Scratch::new("writer");
    let tar = TarBuilder::new().file("a", &[1u8; 300_000]).bytes();
    let blob = gzip(&tar);
    let mut opts = options();
    opts.compression = Compression::Gzip;
    opts.diff_id = Some(sha256(&tar));
    opts.blob_path = Some(s.0.join("blob"));
    let mut writer = LayerWriter::new(s.dest(), opts).unwrap();
    for chunk in blob.chunks(1000) {
        writer.write(chunk.to_vec()).unwrap();
    }
    let stats = writer.close().unwrap();
    assert_eq!(stats.digest, None);
    assert_eq!(std::fs::read(s.0.join("blob")).unwrap(), blob);
    assert_eq!(std::fs::read(s.dest().join("a")).unwrap().len(), 300_000);
    assert!(writer.close().is_err());
}

#[test]
fn layer_writer_reports_failures_from_write_or_close() {
    let s = Scratch::new("writer-fail");
    let tar = TarBuilder::new()
        .file("../evil", b"x")
        .file("b", &[0; 100_000])
        .bytes();
    let mut writer = LayerWriter::new(s.dest(), options()).unwrap();
    let mut failed = None;
    for chunk in tar.chunks(512) {
        if let Err(e) = writer.write(chunk.to_vec()) {
            failed = Some(e);
            break;
        }
    }
    let err = match failed {
        Some(e) => e,
        None => writer.close().unwrap_err(),
    };
    assert!(matches!(err, UnpackError::Unsafe { .. }), "{err:?}");
    s.outside_untouched();
    let mut aborted = LayerWriter::new(s.dest(), options()).unwrap();
    aborted.write(tar[..512].to_vec()).unwrap();
    aborted.abort();
    assert!(aborted.is_closed());
}

#[test]
fn missing_or_directory_sources_and_unusable_destinations_are_typed() {
    let s = Scratch::new("typed-errors");
    let opts = UnpackOptions::for_media_type("application/vnd.oci.image.layer.v1.tar").unwrap();
    let missing = s.0.join("missing.tar");
    match unpack_file(&missing, &s.dest(), &opts) {
        Err(UnpackError::SourceFile { path, source }) => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    match unpack_file(&s.0.join("outside"), &s.dest(), &opts) {
        Err(UnpackError::SourceFile { source, .. }) => {
            assert_eq!(
                source.raw_os_error(),
                Some(rustix::io::Errno::ISDIR.raw_os_error())
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !s.dest().exists(),
        "a bad source leaves the destination alone"
    );
    let layer = s.0.join("layer.tar");
    std::fs::write(&layer, TarBuilder::new().file("f", b"x").bytes()).unwrap();
    for dest in [s.0.join("outside/canary"), s.0.join("outside/canary/sub")] {
        match unpack_file(&layer, &dest, &opts) {
            Err(UnpackError::Destination { path, source }) => {
                assert_eq!(path, dest);
                assert_eq!(
                    source.raw_os_error(),
                    Some(rustix::io::Errno::NOTDIR.raw_os_error())
                );
            }
            other => panic!("{other:?}"),
        }
    }
    s.outside_untouched();
}

#[test]
fn ownership_is_exact_even_when_chown_is_skipped() {
    // Files we create as root are root's: only other owners, or a set-gid parent handing
    // down its group, need an fchown. Check the skip never leaves a wrong owner.
    if !rustix::process::geteuid().is_root() {
        return; // ownership is only applied as root
    }
    let s = Scratch::new("owners");
    std::fs::create_dir_all(s.dest().join("sg")).unwrap();
    std::os::unix::fs::chown(s.dest().join("sg"), None, Some(4242)).unwrap();
    std::fs::set_permissions(s.dest().join("sg"), PermissionsExt::from_mode(0o2775)).unwrap();
    let layer = TarBuilder::new()
        .file_owned("sg/root-file", b"x", 0, 0)
        .file_owned("plain/root-file", b"x", 0, 0)
        .file_owned("plain/user-file", b"x", 1000, 1001)
        .file_owned("plain/group-only", b"x", 0, 7)
        .dir("sg/subdir")
        .dir("plain/subdir")
        .bytes();
    unpack(layer, &s.dest(), &options()).unwrap();
    let owner = |p: &str| {
        let m = std::fs::metadata(s.dest().join(p)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner("sg/root-file"), (0, 0));
    assert_eq!(owner("plain/root-file"), (0, 0));
    assert_eq!(owner("plain/user-file"), (1000, 1001));
    assert_eq!(owner("plain/group-only"), (0, 7));
    // mkdir in a set-gid directory inherits its group and its set-gid bit: both undone.
    assert_eq!(owner("sg/subdir"), (0, 0));
    assert_eq!(owner("plain/subdir"), (0, 0));
    let mode = |p: &str| std::fs::metadata(s.dest().join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("sg/subdir"), 0o755);
    assert_eq!(mode("plain/subdir"), 0o755);
}

/// `len` bytes that differ from one offset to the next, so a lost or repeated byte shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}

#[test]
fn files_spanning_chunk_boundaries_are_written_whole() {
    // File data is written straight from the CHUNK_SIZE chunks the earlier stages hand on:
    // these files start and end on both sides of chunk boundaries.
    let chunk = decompress::CHUNK_SIZE;
    let sizes = [
        0,
        1,
        511,
        4096,
        chunk - 700,
        chunk + 1,
        3 * chunk + 12_345,
        77,
    ];
    let files: Vec<(String, Vec<u8>)> = sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| (format!("dir/f{i}"), pattern(len, i as u8)))
        .collect();
    let mut builder = TarBuilder::new().dir("dir/");
    for (name, data) in &files {
        builder = builder.file(name, data);
    }
    let tar = builder.bytes();
    for (tag, compression, blob) in [
        ("chunks-tar", Compression::None, tar.clone()),
        ("chunks-gzip", Compression::Gzip, gzip(&tar)),
    ] {
        let s = Scratch::new(tag);
        let mut opts = options();
        opts.compression = compression;
        opts.diff_id = Some(sha256(&tar));
        let stats = unpack(blob, &s.dest(), &opts).unwrap();
        assert_eq!(stats.bytes_written, sizes.iter().sum::<usize>() as u64);
        for (name, data) in &files {
            let written = std::fs::read(s.dest().join(name)).unwrap();
            assert!(written == *data, "{tag}: {name} differs");
        }
        // Cut inside the largest file: the stream ends while its data is being written.
        let cut = tar.len() - chunk;
        let err = unpack(tar[..cut].to_vec(), &s.dest(), &options()).unwrap_err();
        assert!(matches!(err, UnpackError::Format { .. }), "{err:?}");
    }
}

#[test]
fn a_gzip_member_with_a_wrong_crc_is_a_format_error() {
    // The CRC-32 is computed with PCLMULQDQ where the CPU has it (zlib-rs's runtime detection);
    // a wrong one must still fail the layer, as Go's gzip reader does (ErrChecksum).
    let tar = TarBuilder::new().file("a", &pattern(300_000, 3)).bytes();
    let blob = gzip(&tar);
    let mut opts = options();
    opts.compression = Compression::Gzip;
    let s = Scratch::new("crc");
    unpack(blob.clone(), &s.dest(), &opts).unwrap();
    let mut bad = blob;
    let crc_at = bad.len() - 8; // the trailer: CRC-32, then the size
    bad[crc_at] ^= 0x40;
    let s = Scratch::new("crc-bad");
    let err = unpack(bad, &s.dest(), &opts).unwrap_err();
    match err {
        UnpackError::Format { reason, .. } => assert!(reason.contains("gzip"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn kept_parent_directories_never_outlive_a_replacement() {
    // `a` is still open (two directories back) when an entry replaces it by a symlink to `d`:
    // the next file in `a/` must land in `d/`, not in the removed directory's descriptor.
    for resolver in [Resolver::Auto, Resolver::Walk] {
        let s = Scratch::new(&format!("kept-parents-{resolver:?}"));
        let mut opts = options();
        opts.resolver = resolver;
        let tar = TarBuilder::new()
            .dir("a/")
            .file("a/1", b"1")
            .dir("a/b/")
            .file("a/b/2", b"2")
            .file("a/3", b"3")
            .dir("d/")
            .file("d/4", b"4")
            .symlink("a", "d")
            .file("a/5", b"5")
            .bytes();
        let stats = unpack(tar, &s.dest(), &opts).unwrap();
        assert_eq!(stats.entries, 9);
        let d = s.dest();
        assert_eq!(std::fs::read_link(d.join("a")).unwrap(), Path::new("d"));
        let mut names: Vec<_> = std::fs::read_dir(d.join("d"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["4", "5"]);
        s.outside_untouched();
    }
}

#[test]
fn a_prepared_layer_applies_like_unpack_file_and_a_dropped_one_writes_nothing() {
    let s = Scratch::new("prepared");
    let tar = TarBuilder::new()
        .dir("etc/")
        .file("etc/hostname", b"node\n")
        .file("big", &vec![7u8; 3 << 20])
        .bytes();
    let blob = s.0.join("layer.tar.gz");
    std::fs::write(&blob, gzip(&tar)).unwrap();
    let mut opts =
        UnpackOptions::for_media_type("application/vnd.oci.image.layer.v1.tar+gzip").unwrap();
    opts.diff_id = Some(sha256(&tar));
    let prepared = PreparedLayer::open(&blob, opts.clone(), 16 << 20).unwrap();
    let stats = prepared.apply(&s.dest()).unwrap();
    let direct = s.0.join("direct");
    assert_eq!(stats, unpack_file(&blob, &direct, &opts).unwrap());
    assert_eq!(
        std::fs::read(s.dest().join("etc/hostname")).unwrap(),
        b"node\n"
    );
    assert_eq!(
        std::fs::metadata(s.dest().join("big")).unwrap().len(),
        3 << 20
    );

    let untouched = s.0.join("untouched");
    drop(PreparedLayer::open(&blob, opts.clone(), 0).unwrap());
    assert!(!untouched.exists());

    // A wrong diff_id is found when applied, as by unpack_file.
    opts.diff_id = Some(sha256(b"another layer"));
    let err = PreparedLayer::open(&blob, opts, 0)
        .unwrap()
        .apply(&s.0.join("wrong"))
        .unwrap_err();
    assert!(matches!(
        err,
        UnpackError::DigestMismatch {
            what: "diff_id",
            ..
        }
    ));
    s.outside_untouched();
}

// --- small files written by worker threads ------------------------------------------------

/// Everything observable about a tree: per path its type, mode, owner, mtime, content or link
/// target, and which earlier path it is a hardlink of.
fn snapshot(root: &Path) -> Vec<String> {
    fn visit(root: &Path, dir: &Path, inodes: &mut HashMap<u64, String>, out: &mut Vec<String>) {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&path).unwrap();
            let what = if m.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&path).unwrap().display())
            } else if m.is_dir() {
                "dir".to_owned()
            } else if let Some(first) = inodes.get(&m.ino()) {
                format!("link of {first}")
            } else {
                inodes.insert(m.ino(), rel.clone());
                format!("{:?}", std::fs::read(&path).unwrap())
            };
            // Directories no layer declares keep the time they were last written in.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            let mtime = match m.mtime() {
                _ if m.file_type().is_symlink() => "-".to_owned(),
                t if m.is_dir() && (now - t).abs() < 3600 => "now".to_owned(),
                t => t.to_string(),
            };
            out.push(format!(
                "{rel} {:o} {}:{} {mtime} {what}",
                m.mode(),
                m.uid(),
                m.gid()
            ));
            if m.is_dir() {
                visit(root, &path, inodes, out);
            }
        }
    }
    let mut out = Vec::new();
    visit(root, root, &mut HashMap::new(), &mut out);
    out
}

/// Applies `layers` in order with `writers` worker threads; the tree, and each layer's
/// statistics or error.
fn apply_layers(tag: &str, layers: &[Vec<u8>], writers: usize) -> (Vec<String>, Vec<String>) {
    let s = Scratch::new(&format!("{tag}-w{writers}"));
    let mut opts = options();
    opts.writers = writers;
    let outcomes = layers
        .iter()
        .map(|layer| match unpack(layer.clone(), &s.dest(), &opts) {
            Ok(stats) => format!("{stats:?}"),
            Err(e) => format!("error: {e}"),
        })
        .collect();
    s.outside_untouched();
    (snapshot(&s.dest()), outcomes)
}

/// The trees and outcomes with and without worker threads, which must be the same.
fn same_with_and_without_writers(tag: &str, layers: &[Vec<u8>]) -> (Vec<String>, Vec<String>) {
    let single = apply_layers(tag, layers, 0);
    let threaded = apply_layers(tag, layers, 2);
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter()
            .filter(|l| !b.contains(l))
            .map(|l| l.chars().take(120).collect())
            .collect()
    };
    assert!(
        single == threaded,
        "{tag}: one thread and two writers differ: only with one {:?}, only with two {:?}",
        (only(&single.0, &threaded.0), only(&single.1, &threaded.1)),
        (only(&threaded.0, &single.0), only(&threaded.1, &single.1)),
    );
    threaded
}

fn many_small_files(mut tar: TarBuilder, dirs: usize, files: usize, seed: u8) -> TarBuilder {
    for d in 0..dirs {
        tar = tar.dir(&format!("d{d}/"));
        for f in 0..files {
            let data = pattern(1 + (d * 131 + f * 17) % 3000, seed.wrapping_add(f as u8));
            tar = tar.file(&format!("d{d}/f{f}"), &data);
        }
    }
    tar
}

#[test]
fn worker_threads_write_the_same_tree_as_one_thread() {
    let mut tar = many_small_files(TarBuilder::new(), 12, 40, 1)
        // A duplicate of a file still being written, then a hardlink to it.
        .file("d3/f7", b"second version")
        .hardlink("d3/f7.link", "d3/f7")
        .hardlink("d5/link-to-d4", "d4/f39")
        // Modes that need a chmod after creation, and a file bigger than a job.
        .entry(tar::EntryType::Regular, "d1/setuid", "", b"x", 0o4755)
        .entry(tar::EntryType::Regular, "d1/private", "", b"x", 0o600)
        .entry(tar::EntryType::Regular, "d1/odd", "", b"x", 0o757)
        .file("d2/big", &pattern(3 << 20, 9))
        .file_owned("d6/owned", b"someone else's", 1234, 5678);
    tar = tar.symlink("d7/sym", "f1").file("top", b"t");
    let (tree, outcomes) = same_with_and_without_writers("same-tree", &[tar.bytes()]);
    assert!(tree
        .iter()
        .any(|l| l.starts_with("d3/f7 ") && l.ends_with(&format!("{:?}", b"second version"))));
    assert!(tree
        .iter()
        .any(|l| l.starts_with("d3/f7.link ") && l.ends_with("link of d3/f7")));
    assert!(tree.iter().any(|l| l.starts_with("d1/setuid 104755 ")));
    assert!(
        outcomes[0].starts_with("UnpackStats { entries: 502,"),
        "{}",
        outcomes[0]
    );
}

#[test]
fn worker_threads_keep_the_order_of_replacements_and_whiteouts() {
    let lower = TarBuilder::new()
        .file("lower/file", b"lower")
        .file("lower/gone", b"lower")
        .file("lower/dir-to-file/child", b"lower")
        .file("lower/file-to-dir", b"lower")
        .file("opq/lower", b"lower")
        .bytes();
    let upper = many_small_files(TarBuilder::new(), 3, 20, 2)
        // Lower files replaced by this layer's (the worker finds the name taken).
        .file("lower/file", b"upper")
        .file("lower/dir-to-file", b"upper, was a directory")
        .dir("lower/file-to-dir/")
        .file("lower/file-to-dir/child", b"upper")
        // Within this layer: a file replaced by a directory and a directory by a file, each
        // queued behind a burst of files in the same directory (still being written).
        .many_files("", 100)
        .file("p", b"a file first")
        .dir("p/")
        .file("p/q", b"inside")
        .dir("r/")
        .many_files("r/", 100)
        .file("r/s", b"inside")
        .file("r", b"a file now")
        // A directory whose files are still being written, replaced by a symlink.
        .dir("s/")
        .many_files("s/", 100)
        .symlink("s", "p")
        // A whiteout of a file written earlier in this layer hides nothing of it; one of a
        // lower file next to files being written removes it.
        .many_files("d0/", 100)
        .file("d0/w", b"kept")
        .file("d0/.wh.w", b"")
        .file("lower/new", b"new")
        .file("lower/.wh.gone", b"")
        // An opaque directory with this layer's files before and after the marker.
        .file("opq/before", b"1")
        .file("opq/.wh..wh..opq", b"")
        .file("opq/after", b"2")
        .bytes();
    let (tree, outcomes) = same_with_and_without_writers("order", &[lower, upper]);
    let has = |line: &str| tree.iter().any(|l| l.starts_with(line));
    let content = |path: &str, data: &[u8]| {
        tree.iter()
            .any(|l| l.starts_with(&format!("{path} ")) && l.ends_with(&format!("{data:?}")))
    };
    assert!(content("lower/file", b"upper"));
    assert!(content("lower/dir-to-file", b"upper, was a directory"));
    assert!(content("lower/file-to-dir/child", b"upper"));
    assert!(content("p/q", b"inside") && content("r", b"a file now"));
    assert!(
        has("s 120777 0:0 - -> p"),
        "{:?}",
        tree.iter().find(|l| l.starts_with("s "))
    );
    assert!(!has("r/s ") && !has("lower/gone ") && !has("opq/lower "));
    assert!(content("d0/w", b"kept") && content("opq/before", b"1") && content("opq/after", b"2"));
    assert!(
        outcomes.iter().all(|o| o.starts_with("UnpackStats")),
        "{outcomes:?}"
    );
}

#[test]
fn the_first_error_in_entry_order_is_the_layers_with_worker_threads() {
    // A name too long for the filesystem fails in a worker's create, with files queued behind
    // it and a later entry that fails on the applying thread. (What was written before the
    // layer failed may differ: only the error must be the same.)
    let long = format!("d1/{}", "n".repeat(300));
    let tar = many_small_files(TarBuilder::new(), 4, 30, 3)
        .long_file(&long, b"x")
        .file("d1/after", b"x")
        .file("../outside/evil", b"x")
        .bytes();
    let errors: Vec<_> = [0, 2]
        .into_iter()
        .map(|writers| {
            let (_, outcomes) = apply_layers("first-error", std::slice::from_ref(&tar), writers);
            outcomes
        })
        .collect();
    assert_eq!(errors[0], errors[1]);
    assert!(
        errors[1][0].contains("File name too long"),
        "{}",
        errors[1][0]
    );
    let s = Scratch::new("first-error-typed");
    let err = unpack(tar, &s.dest(), &options()).unwrap_err();
    assert!(
        matches!(err, UnpackError::Format { entry: Some(ref e), .. } if *e == long),
        "{err:?}"
    );
    s.outside_untouched();
}

#[test]
fn worker_threads_by_default_only_from_four_cpus() {
    assert_eq!(super::writers_for(1), 0);
    assert_eq!(super::writers_for(2), 0);
    assert_eq!(super::writers_for(3), 0);
    assert_eq!(super::writers_for(4), 2);
    assert_eq!(super::writers_for(64), 2);
}
