//! What the irreducible per-byte work of a pull + unpack costs on this machine, per layer blob:
//! the engine's decompression stage alone (no hashing, no tar, no files), and SHA-256 of the
//! compressed bytes and of the uncompressed ones (both digests are verified on every pull).
//!
//!     cargo run --release -p ocistore-core --example stage_costs -- BLOB...
//!
//! Each step runs alone on one core, from the page cache; the machine should be quiet.

use std::fs::File;
use std::time::Instant;

use ocistore_core::digest::{Algorithm, Hasher};
use ocistore_core::unpack::decompress::{self, StageConfig, StageEnd};

/// Seconds to decompress `path` with the engine's first stage; the uncompressed size.
fn decompress_alone(path: &str) -> (f64, u64) {
    let start = Instant::now();
    let config = StageConfig {
        hasher: None,
        blob_path: None,
        drain_on_error: false,
    };
    let source = File::open(path).expect("open blob");
    let (chunks, recycle, stage) = decompress::spawn(source, config, 0).expect("start stage");
    let mut total = 0u64;
    for chunk in chunks {
        total += chunk.len() as u64;
        let _ = recycle.send(chunk);
    }
    match stage.join().expect("stage thread") {
        StageEnd::Done(_) => {}
        _ => panic!("{path}: decompression failed"),
    }
    (start.elapsed().as_secs_f64(), total)
}

/// Seconds for SHA-256 over `data`.
fn sha256_of(data: &[u8]) -> f64 {
    let start = Instant::now();
    let mut hasher = Hasher::new(Algorithm::Sha256);
    for block in data.chunks(1 << 20) {
        hasher.update(block);
    }
    std::hint::black_box(hasher.digest());
    start.elapsed().as_secs_f64()
}

fn main() {
    let blobs: Vec<String> = std::env::args().skip(1).collect();
    if blobs.is_empty() {
        eprintln!("usage: stage_costs BLOB...");
        std::process::exit(2);
    }
    let (mut packed, mut unpacked) = (0u64, 0u64);
    let (mut inflate_s, mut sha_s) = (0f64, 0f64);
    for blob in &blobs {
        let data = std::fs::read(blob).expect("read blob"); // also warms the page cache
        let (seconds, size) = decompress_alone(blob);
        let hashed = sha256_of(&data);
        packed += data.len() as u64;
        unpacked += size;
        inflate_s += seconds;
        sha_s += hashed;
    }
    let sha_rate = packed as f64 / sha_s;
    let mb = |bytes: u64| bytes as f64 / 1e6;
    println!(
        "compressed {:.1} MB, uncompressed {:.1} MB",
        mb(packed),
        mb(unpacked)
    );
    println!(
        "decompression alone: {:.0} ms ({:.0} MB/s of output)",
        inflate_s * 1e3,
        mb(unpacked) / inflate_s
    );
    println!(
        "SHA-256 of the compressed bytes: {:.0} ms ({:.0} MB/s)",
        sha_s * 1e3,
        sha_rate / 1e6
    );
    println!(
        "SHA-256 of the uncompressed bytes, at that rate: {:.0} ms",
        unpacked as f64 / sha_rate * 1e3
    );
}
