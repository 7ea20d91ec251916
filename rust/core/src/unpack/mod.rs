//! Safe streaming layer application (tar, gzip, zstd, OCI whiteouts).
//!
//! One pass over the bytes, in a pipeline of three threads: the first reads the blob, hashes
//! it (`digest`), optionally saves it and decompresses it; the second hashes the tar
//! (`diff_id`); the calling thread parses it and applies each entry inside the root with
//! descriptor-relative syscalls (`root.rs`). Both digests are checked at the end; the tar is
//! read to its very end so the diff_id covers every byte. Small regular files are handed, data
//! in memory, to a few worker threads (`workers.rs`, `UnpackOptions::writers`), so that one
//! layer's file creations use more than one core; the applying thread keeps every step others
//! depend on (directories, links, removals) in entry order and waits for a file's job before
//! anything touches its path.

mod access;
mod apply;
pub mod decompress;
mod error;
mod hash_stage;
mod limits;
mod root;
mod safe_path;
mod stream;
pub mod tar_reader;
mod whiteout;
mod workers;
mod writer;

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender};
use std::thread::JoinHandle;

pub use apply::Privileges;
pub use decompress::{Compression, LAYER_MEDIA_TYPES};
pub use error::{Result, UnpackError};
pub use limits::UnpackLimits;
pub use root::Resolver;
pub use writer::LayerWriter;

use crate::digest::{Algorithm, ContentDigest, Hasher};
use apply::Applier;
use decompress::{StageConfig, StageEnd};
use stream::TarStream;
use tar_reader::TarReader;

/// What unpacking a layer did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Tar entries read (whiteouts and directories included).
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub bytes_written: u64,
    /// Whiteout and opaque markers applied.
    pub whiteouts: u64,
    /// Entries (or attributes) not applied, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Digest of the compressed blob, when it was asked to be verified.
    pub digest: Option<String>,
    /// Digest of the uncompressed tar stream.
    pub diff_id: String,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
}

/// How to unpack one layer.
#[derive(Clone, Debug)]
pub struct UnpackOptions {
    /// What the media type declares. The blob's magic bytes decide how it is decompressed,
    /// as in containerd; the media type only has to be a layer type.
    pub compression: Compression,
    /// Expected digest of the compressed blob; `None` skips hashing it altogether.
    pub digest: Option<ContentDigest>,
    /// Expected digest of the uncompressed tar; the diff_id is computed either way.
    pub diff_id: Option<ContentDigest>,
    pub limits: UnpackLimits,
    /// Where to save a copy of the compressed blob (streaming use).
    pub blob_path: Option<PathBuf>,
    pub resolver: Resolver,
    pub privileges: Privileges,
    /// Worker threads writing small regular files (0: every entry on the applying thread).
    pub writers: usize,
}

/// Environment variable that sets the default of `UnpackOptions::writers` (`0`: none).
pub const WRITERS_ENV: &str = "OCISTORE_UNPACK_WRITERS";

/// The default worker count: `$OCISTORE_UNPACK_WRITERS` if set, else 2 with four or more
/// CPUs and none below. With fewer cores the pipeline's own threads (decompress, hash, apply)
/// and the downloads already keep them busy, and handing files to workers only adds CPU: on a
/// journaled ext4 and 2 cores, 7% more CPU for a 453 MB zstd pull + unpack, and no faster at
/// any size. (They pay where creating a file is itself CPU-bound: ext4 without a journal.)
pub fn default_writers() -> usize {
    if let Some(count) = std::env::var(WRITERS_ENV)
        .ok()
        .and_then(|value| value.trim().parse::<usize>().ok())
    {
        return count.min(16);
    }
    match std::thread::available_parallelism() {
        Ok(cpus) => writers_for(cpus.get()),
        Err(_) => 0,
    }
}

/// The default worker count on `cpus` CPUs.
fn writers_for(cpus: usize) -> usize {
    if cpus >= 4 {
        2
    } else {
        0
    }
}

impl UnpackOptions {
    /// Options for a media type, with everything else defaulted.
    pub fn for_media_type(media_type: &str) -> Result<UnpackOptions> {
        Ok(UnpackOptions {
            compression: Compression::from_media_type(media_type)?,
            digest: None,
            diff_id: None,
            limits: UnpackLimits::DEFAULT,
            blob_path: None,
            resolver: Resolver::Auto,
            privileges: Privileges::Auto,
            writers: default_writers(),
        })
    }

    /// Parses an expected digest (`what` is "digest" or "diff_id" for the error message).
    pub fn parse_digest(what: &'static str, text: &str) -> Result<ContentDigest> {
        ContentDigest::parse(text).map_err(|e| UnpackError::InvalidDigest {
            what,
            reason: e.to_string(),
        })
    }
}

/// Unpacks the layer blob at `source` into `dest`.
pub fn unpack_file(source: &Path, dest: &Path, options: &UnpackOptions) -> Result<UnpackStats> {
    let file = open_source(source)?;
    naming_source(unpack_reader(file, dest, options, true), source)
}

/// A read error of the layer blob, with the blob's path.
fn naming_source<T>(result: Result<T>, source: &Path) -> Result<T> {
    result.map_err(|error| match error {
        UnpackError::Source(e) => UnpackError::SourceFile {
            path: source.to_path_buf(),
            source: e,
        },
        other => other,
    })
}

/// Unpacks a layer read from `source` into `dest`. `drain_on_error`: after a failure, read
/// the rest of the source to finish its digest, so corruption is reported as a mismatch.
pub fn unpack_reader<R: Read + Send + 'static>(
    source: R,
    dest: &Path,
    options: &UnpackOptions,
    drain_on_error: bool,
) -> Result<UnpackStats> {
    let root = open_root(dest, options)?;
    Stages::spawn(source, options, drain_on_error, decompress::CHANNEL_DEPTH)?.apply(&root, options)
}

/// A layer blob already being decompressed and hashed (its diff_id) on two threads, ahead of
/// being applied: up to `ahead_bytes` of tar wait in memory, so a pull can overlap the
/// decompression of the next layer with the application of the current one.
pub struct PreparedLayer {
    stages: Option<Stages>,
    options: UnpackOptions,
    source: PathBuf,
}

impl PreparedLayer {
    /// Opens the layer blob at `source` and starts decompressing it; nothing is written yet.
    pub fn open(source: &Path, options: UnpackOptions, ahead_bytes: usize) -> Result<Self> {
        let file = open_source(source)?;
        let depth = (ahead_bytes / decompress::CHUNK_SIZE).max(decompress::CHANNEL_DEPTH);
        let stages = Stages::spawn(file, &options, true, depth)?;
        Ok(PreparedLayer {
            stages: Some(stages),
            options,
            source: source.to_path_buf(),
        })
    }

    /// Applies the layer into `dest` and verifies its digests (as [`unpack_file`] does).
    pub fn apply(mut self, dest: &Path) -> Result<UnpackStats> {
        let stages = self
            .stages
            .take()
            .expect("stages are present until applied");
        let result =
            open_root(dest, &self.options).and_then(|root| stages.apply(&root, &self.options));
        naming_source(result, &self.source)
    }
}

impl Drop for PreparedLayer {
    /// Never applied: hang up on the stages and wait for their threads.
    fn drop(&mut self) {
        if let Some(stages) = self.stages.take() {
            stages.abandon();
        }
    }
}

fn open_source(source: &Path) -> Result<File> {
    let source_error = |e: io::Error| UnpackError::SourceFile {
        path: source.to_path_buf(),
        source: e,
    };
    let file = File::open(source).map_err(source_error)?;
    // Refuse a directory before the destination is touched (reading it would fail later).
    if file.metadata().map_err(source_error)?.is_dir() {
        return Err(source_error(io::Error::from_raw_os_error(
            rustix::io::Errno::ISDIR.raw_os_error(),
        )));
    }
    Ok(file)
}

fn open_root(dest: &Path, options: &UnpackOptions) -> Result<root::Root> {
    let mut root =
        root::Root::open(dest, options.resolver).map_err(|e| UnpackError::Destination {
            path: dest.to_path_buf(),
            source: e,
        })?;
    if !options.privileges.as_root() {
        root.enable_widening();
    }
    Ok(root)
}

/// The decompressing and hashing threads of one layer, feeding the applying thread.
struct Stages {
    rx: Receiver<Vec<u8>>,
    recycle: SyncSender<Vec<u8>>,
    first_stage: JoinHandle<StageEnd>,
    hash_stage: JoinHandle<Hasher>,
}

impl Stages {
    /// Starts both stages; `depth` chunks of tar may wait for the applying thread.
    fn spawn<R: Read + Send + 'static>(
        source: R,
        options: &UnpackOptions,
        drain_on_error: bool,
        depth: usize,
    ) -> Result<Stages> {
        let diff_algorithm = options
            .diff_id
            .as_ref()
            .map_or(Algorithm::Sha256, |d| d.algorithm);
        let config = StageConfig {
            hasher: options.digest.as_ref().map(|d| Hasher::new(d.algorithm)),
            blob_path: options.blob_path.clone(),
            drain_on_error,
        };
        let thread_error = |e| UnpackError::Write {
            entry: None,
            source: e,
        };
        let (rx, recycle, first_stage) =
            decompress::spawn(source, config, depth).map_err(thread_error)?;
        let (rx, hash_stage) =
            hash_stage::spawn(rx, Hasher::new(diff_algorithm), depth).map_err(thread_error)?;
        Ok(Stages {
            rx,
            recycle,
            first_stage,
            hash_stage,
        })
    }

    /// Hangs up and waits for both threads (they stop at their next chunk).
    fn abandon(self) {
        drop(self.rx);
        drop(self.recycle);
        let _ = self.hash_stage.join();
        let _ = self.first_stage.join();
    }

    /// Applies the tar into `root`, then checks both digests.
    fn apply(self, root: &root::Root, options: &UnpackOptions) -> Result<UnpackStats> {
        let mut stream = TarStream::new(self.rx, self.recycle, options.limits.max_bytes);
        let applied = apply_tar(&mut stream, root, options);
        // Hang up before joining so that earlier stages blocked on a full channel finish.
        let uncompressed_size = stream.size();
        drop(stream);
        let diff_hasher = self.hash_stage.join().ok();
        let blob = self.first_stage.join().unwrap_or_else(|_| {
            StageEnd::Failed(
                UnpackError::format(None, "decompression thread panicked"),
                decompress::BlobSummary {
                    digest: None,
                    size: 0,
                    complete: false,
                },
            )
        });
        let (blob_summary, blob_error) = match blob {
            StageEnd::Done(s) | StageEnd::Abandoned(s) => (s, None),
            StageEnd::Failed(e, s) => (s, Some(e)),
        };
        // Precedence: the wrong blob explains everything else; then the decoder's own error
        // (the tar stage only saw the stream stop); then the tar stage's; then the diff_id.
        if let (Some(expected), Some(actual)) = (&options.digest, &blob_summary.digest) {
            if blob_summary.complete && expected != actual {
                return Err(UnpackError::DigestMismatch {
                    what: "digest",
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        if let Some(e) = blob_error {
            return Err(e);
        }
        let applied = applied?;
        let diff_id = diff_hasher
            .ok_or_else(|| UnpackError::format(None, "diff_id was not computed"))?
            .digest();
        if let Some(expected) = &options.diff_id {
            if *expected != diff_id {
                return Err(UnpackError::DigestMismatch {
                    what: "diff_id",
                    expected: expected.to_string(),
                    actual: diff_id.to_string(),
                });
            }
        }
        Ok(UnpackStats {
            entries: applied.entries,
            bytes_written: applied.bytes_written,
            whiteouts: applied.whiteouts,
            skipped: applied.into_skipped(),
            digest: blob_summary.digest.map(|d| d.to_string()),
            diff_id: diff_id.to_string(),
            compressed_size: blob_summary.size,
            uncompressed_size,
        })
    }
}

/// Parses the tar and applies every entry, then drains the stream to its end.
fn apply_tar(
    stream: &mut TarStream,
    root: &root::Root,
    options: &UnpackOptions,
) -> Result<apply::ApplyStats> {
    let slot = stream.error_slot();
    // A typed error left by the stream (the byte limit) explains any parser failure.
    let stream_error = |e: io::Error| -> UnpackError {
        slot.borrow_mut()
            .take()
            .unwrap_or_else(|| UnpackError::from_stream(e))
    };
    let source_error = |e: UnpackError| match e {
        UnpackError::Source(e) => stream_error(e),
        other => other,
    };
    let mut applier = Applier::new(root, options.limits, options.privileges, options.writers);
    let mut reader = TarReader::new(&mut *stream);
    while let Some(entry) = reader
        .next_entry()
        .map_err(|e| applier.first_error(source_error(e)))?
    {
        applier.apply(&mut reader, entry).map_err(source_error)?;
    }
    let stats = applier.finish()?;
    stream.drain().map_err(stream_error)?;
    Ok(stats)
}

#[cfg(test)]
mod tests;
