//! libFuzzer target for the layer engine: arbitrary bytes as a tar, gzip or zstd layer,
//! applied into a scratch root. Panics and anything outside the root are bugs; typed errors
//! are the expected outcome. The selector byte also picks the path resolver, so the kernel's
//! `openat2(RESOLVE_IN_ROOT)` and the component-wise fallback are both fuzzed.
//! Run: `cargo +nightly fuzz run unpack_layer -- -max_total_time=60`.
#![no_main]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;
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
    options.resolver = if selector & 0x80 == 0 {
        Resolver::Auto
    } else {
        Resolver::Walk
    };
    options.limits = UnpackLimits {
        max_bytes: Some(16 << 20),
        max_entries: Some(10_000),
        max_file_size: Some(8 << 20),
        max_path_length: Some(4096),
    };
    let _ = unpack_reader(
        std::io::Cursor::new(blob.to_vec()),
        &base.join("root"),
        &options,
        true,
    );
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
