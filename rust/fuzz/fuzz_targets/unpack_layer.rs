//! libFuzzer target for the layer engine: arbitrary bytes as a tar, gzip or zstd layer,
//! applied into a scratch root. Panics and anything outside the root are bugs; typed errors
//! are the expected outcome. For plain tar bytes the tar reader also runs on its own: a layer
//! the reader refuses at some header must never be applied successfully (no entry is accepted
//! past an unreadable header), and the reader's fragments of a sparse file must be in order and
//! inside the file. The selector byte also picks the path resolver, so the kernel's
//! `openat2(RESOLVE_IN_ROOT)` and the component-wise fallback are both fuzzed, and whether small
//! files are written by worker threads. Run: `cargo +nightly fuzz run unpack_layer -- -max_total_time=60`.
#![no_main]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;
use ocistore_core::unpack::tar_reader::TarReader;
use ocistore_core::unpack::{unpack_reader, Resolver, UnpackLimits, UnpackOptions};

static RUN: AtomicU64 = AtomicU64::new(0);

const MEDIA_TYPES: [&str; 3] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, blob)) = data.split_first() else {
        return;
    };
    let base: PathBuf = std::env::temp_dir().join(format!(
        "ocistore-fuzz-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    let outside = base.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("canary"), b"canary").unwrap();
    let mut options =
        UnpackOptions::for_media_type(MEDIA_TYPES[usize::from(selector) % 3]).unwrap();
    options.limits = UnpackLimits {
        max_bytes: Some(16 << 20),
        max_entries: Some(10_000),
        max_file_size: Some(8 << 20),
        max_path_length: Some(4096),
    };
    options.resolver = if selector & 0x80 == 0 {
        Resolver::Auto
    } else {
        Resolver::Walk
    };
    // Small files on the applying thread only, or on two worker threads.
    options.writers = if selector & 0x40 == 0 { 0 } else { 2 };
    let applied = unpack_reader(
        std::io::Cursor::new(blob.to_vec()),
        &base.join("root"),
        &options,
        true,
    );
    if looks_uncompressed(blob) {
        let read_to_the_end = read_alone(blob);
        if applied.is_ok() {
            assert!(read_to_the_end, "a layer the reader refuses was applied");
        }
    }
    let names: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names.len(),
        1,
        "something was created outside the root: {names:?}"
    );
    assert_eq!(std::fs::read(outside.join("canary")).unwrap(), b"canary");
    let _ = std::fs::remove_dir_all(&base);
});

/// Whether the engine will read `blob` as a plain tar (no compression magic).
fn looks_uncompressed(blob: &[u8]) -> bool {
    !(blob.starts_with(&[0x1f, 0x8b, 0x08])
        || blob.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (blob.len() >= 8 && blob[0] & 0xf0 == 0x50 && blob[1..4] == [0x2a, 0x4d, 0x18]))
}

/// Reads every entry and its data with the reader alone; `true` when it reached the end.
fn read_alone(blob: &[u8]) -> bool {
    let mut reader = TarReader::new(blob);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let entry = match reader.next_entry() {
            Ok(Some(entry)) => entry,
            Ok(None) => return true,
            Err(_) => return false,
        };
        if let Some(fragments) = &entry.sparse {
            let mut end = 0u64;
            for f in fragments {
                assert!(f.offset >= end, "sparse fragments out of order");
                end = f.offset + f.length;
                assert!(end <= entry.size as u64, "sparse fragment past the end");
            }
            let stored: u64 = fragments.iter().map(|f| f.length).sum();
            assert_eq!(stored, reader.remaining(), "sparse map and stored data disagree");
        }
        loop {
            match reader.read_data(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }
}
