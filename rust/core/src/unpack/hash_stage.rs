//! The middle pipeline stage: hashes the tar bytes (the diff_id) between decompression and
//! application, on its own thread.
//!
//! Decoding, hashing and writing each cost about a third of a zstd layer's CPU time; pinned to
//! either neighbour, SHA-256 made that thread the bottleneck. As a stage of its own, the
//! scheduler spreads the three over both cores, whatever the compression.

use std::io;
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

use crate::digest::Hasher;

/// Starts hashing the chunks arriving on `input`; they are passed on, unchanged, on the
/// returned receiver, which holds up to `depth` of them. The thread ends (returning the
/// hasher) when either side hangs up.
pub fn spawn(
    input: Receiver<Vec<u8>>,
    mut hasher: Hasher,
    depth: usize,
) -> io::Result<(Receiver<Vec<u8>>, JoinHandle<Hasher>)> {
    let (tx, output) = sync_channel(depth);
    let handle = std::thread::Builder::new()
        .name("ocistore-hash".into())
        .spawn(move || {
            for chunk in input {
                hasher.update(&chunk);
                if tx.send(chunk).is_err() {
                    break;
                }
            }
            hasher
        })?;
    Ok((output, handle))
}
