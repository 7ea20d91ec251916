//! The first pipeline stage: read the blob, hash it, optionally save it, decompress it.
//!
//! It runs on its own thread and hands 256 KiB chunks of tar bytes on over a bounded channel
//! (to the hashing stage, then the applying one), so one layer keeps both cores busy while
//! memory stays at a few MiB however large the layer is.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use flate2::bufread::GzDecoder;

use super::error::{Result, UnpackError};
use crate::digest::{ContentDigest, Hasher};

/// Bytes handed from one stage to the next in one message: large enough that handing over
/// costs nothing, small enough to stay in the L2 cache between producer and consumer.
pub const CHUNK_SIZE: usize = 256 << 10;
/// Chunks in flight between two stages (bounds memory to a few MiB).
pub const CHANNEL_DEPTH: usize = 8;

const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Skippable frames have magic numbers 0x184D2A50 to 0x184D2A5F.
const ZSTD_SKIPPABLE: u32 = 0x184D_2A50;

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Every layer media type the engine applies, with the compression it declares. This table is
/// the authority: Python's `ocistore.mediatypes` is checked against it (`_core.layer_media_types`).
pub const LAYER_MEDIA_TYPES: &[(&str, Compression)] = &[
    ("application/vnd.oci.image.layer.v1.tar", Compression::None),
    (
        "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Gzip,
    ),
    (
        "application/vnd.oci.image.layer.v1.tar+zstd",
        Compression::Zstd,
    ),
    (
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        Compression::None,
    ),
    (
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        Compression::Gzip,
    ),
    (
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        Compression::Zstd,
    ),
    (
        "application/vnd.docker.image.rootfs.diff.tar",
        Compression::None,
    ),
    (
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        Compression::Gzip,
    ),
    (
        "application/vnd.docker.image.rootfs.diff.tar.zstd",
        Compression::Zstd,
    ),
    (
        "application/vnd.docker.image.rootfs.foreign.diff.tar",
        Compression::None,
    ),
    (
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        Compression::Gzip,
    ),
];

impl Compression {
    /// The name Python's `ocistore.mediatypes.Compression` uses.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The compression a layer media type declares (parameters and case ignored, as in a
    /// `Content-Type`); other media types are refused.
    pub fn from_media_type(media_type: &str) -> Result<Compression> {
        let base = media_type.split(';').next().unwrap_or("").trim();
        LAYER_MEDIA_TYPES
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(base))
            .map(|&(_, compression)| compression)
            .ok_or_else(|| UnpackError::UnsupportedMediaType(media_type.to_owned()))
    }

    /// What the first bytes of a blob show, whatever its media type says, as containerd's
    /// `DecompressStream` decides: the magic bytes choose (registries mislabel; containerd
    /// applies a plain tar under a `+gzip` type). A zstd stream may open with a skippable
    /// frame (every `pzstd` output does, RFC 8878 section 3.1.2); that needs 8 bytes.
    pub fn detect(head: &[u8]) -> Compression {
        let skippable = head.len() >= 8
            && u32::from_le_bytes([head[0], head[1], head[2], head[3]]) & !0xf == ZSTD_SKIPPABLE;
        if head.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(&ZSTD_MAGIC) || skippable {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// What the first stage saw of the compressed blob.
pub struct BlobSummary {
    pub digest: Option<ContentDigest>,
    pub size: u64,
    /// Whether the digest covers the whole blob.
    pub complete: bool,
}

/// How the first stage ended.
pub enum StageEnd {
    /// The whole blob was read and decompressed.
    Done(BlobSummary),
    /// The applying stage hung up first (it has the real error); what was hashed so far.
    Abandoned(BlobSummary),
    /// Reading or decompressing failed; the summary covers the bytes that could be hashed.
    Failed(UnpackError, BlobSummary),
}

/// Configuration of the first stage.
pub struct StageConfig {
    /// Hash the compressed bytes with this algorithm's hasher (None: no hashing at all).
    pub hasher: Option<Hasher>,
    /// Also write the compressed bytes here.
    pub blob_path: Option<PathBuf>,
    /// After a failure, keep reading (not decompressing) the source to finish the digest.
    pub drain_on_error: bool,
}

/// The compressed side: counts, hashes and saves every byte read from the source.
struct Tap<R> {
    inner: R,
    hasher: Option<Hasher>,
    blob: Option<File>,
    blob_error: Option<io::Error>,
    source_error: Option<io::Error>,
    bytes: u64,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                let kind = e.kind();
                self.source_error = Some(e);
                return Err(io::Error::new(kind, "reading the layer source failed"));
            }
        };
        let data = &buf[..n];
        if let Some(h) = self.hasher.as_mut() {
            h.update(data);
        }
        if let Some(blob) = self.blob.as_mut() {
            if let Err(e) = blob.write_all(data) {
                self.blob_error = Some(e);
                self.blob = None;
            }
        }
        self.bytes += n as u64;
        Ok(n)
    }
}

impl<R> Tap<R> {
    fn summary(&self, complete: bool) -> BlobSummary {
        BlobSummary {
            digest: self.hasher.as_ref().map(Hasher::digest),
            size: self.bytes,
            complete,
        }
    }
}

/// Starts the first stage on its own thread; tar bytes arrive on the returned receiver.
/// Also returns the sender on which the consumer gives emptied chunks back; up to
/// `downstream_depth` chunks may be held further down the pipeline, so as many are kept for reuse.
#[allow(clippy::type_complexity)]
pub fn spawn<R: Read + Send + 'static>(
    source: R,
    config: StageConfig,
    downstream_depth: usize,
) -> io::Result<(Receiver<Vec<u8>>, SyncSender<Vec<u8>>, JoinHandle<StageEnd>)> {
    let (tx, rx) = sync_channel(CHANNEL_DEPTH);
    let (recycle_tx, recycle_rx) = sync_channel(CHANNEL_DEPTH + downstream_depth + 2);
    let handle = std::thread::Builder::new()
        .name("ocistore-inflate".into())
        .spawn(move || run(source, config, tx, recycle_rx))?;
    Ok((rx, recycle_tx, handle))
}

fn run<R: Read>(
    source: R,
    config: StageConfig,
    tx: SyncSender<Vec<u8>>,
    recycled: Receiver<Vec<u8>>,
) -> StageEnd {
    let blob = match config.blob_path.as_ref().map(File::create).transpose() {
        Ok(blob) => blob,
        Err(e) => {
            let summary = BlobSummary {
                digest: None,
                size: 0,
                complete: false,
            };
            return StageEnd::Failed(
                UnpackError::Write {
                    entry: None,
                    source: e,
                },
                summary,
            );
        }
    };
    let mut tap = Tap {
        inner: source,
        hasher: config.hasher,
        blob,
        blob_error: None,
        source_error: None,
        bytes: 0,
    };
    let outcome = decompress_into(&mut tap, &tx, &recycled);
    drop(tx);
    let failure = match outcome {
        Ok(true) => None,
        Ok(false) => Some(None),
        Err(e) => Some(Some(e)),
    };
    if let Some(error) = failure {
        // Finish the digest so that a corrupt download is reported as a digest mismatch.
        let mut complete = false;
        if config.drain_on_error && tap.hasher.is_some() && tap.source_error.is_none() {
            complete = io::copy(&mut tap, &mut io::sink()).is_ok();
        }
        return match error {
            None => StageEnd::Abandoned(tap.summary(complete)),
            Some(e) => StageEnd::Failed(e, tap.summary(complete)),
        };
    }
    if let Some(e) = tap.blob_error.take() {
        return StageEnd::Failed(
            UnpackError::Write {
                entry: None,
                source: e,
            },
            tap.summary(true),
        );
    }
    if let Some(blob) = tap.blob.as_mut() {
        if let Err(e) = blob.flush() {
            return StageEnd::Failed(
                UnpackError::Write {
                    entry: None,
                    source: e,
                },
                tap.summary(true),
            );
        }
    }
    StageEnd::Done(tap.summary(true))
}

/// Reads up to `buf.len()` bytes, fewer only at the end of the stream.
pub(crate) fn read_full<R: Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Streams the decompressed bytes into `tx`. `Ok(false)`: the receiver hung up.
fn decompress_into<R: Read>(
    tap: &mut Tap<R>,
    tx: &SyncSender<Vec<u8>>,
    recycled: &Receiver<Vec<u8>>,
) -> Result<bool> {
    let mut head = [0u8; 8];
    let head_len = read_full(tap, &mut head).map_err(|e| match tap.source_error.take() {
        Some(source) => source_error(source),
        None => source_error(e),
    })?;
    let head = &head[..head_len];
    let compression = Compression::detect(head);
    let stream = io::Cursor::new(head.to_vec()).chain(&mut *tap);
    let mut decoder: Box<dyn Read + '_> = match compression {
        Compression::None => Box::new(stream),
        Compression::Gzip => Box::new(GzipMembers::new(BufReader::with_capacity(
            256 << 10,
            stream,
        ))),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(256 << 10, stream))
                .map_err(|e| UnpackError::format(None, format!("zstd: {e}")))?,
        ),
    };
    loop {
        let mut chunk = recycled.try_recv().unwrap_or_default();
        chunk.resize(CHUNK_SIZE, 0); // only a fresh or short buffer is (partly) zeroed
        let n = match read_full(&mut decoder, &mut chunk) {
            Ok(n) => n,
            Err(e) => {
                drop(decoder);
                return Err(match tap.source_error.take() {
                    Some(source) => source_error(source),
                    None => decode_error(compression, e),
                });
            }
        };
        if n == 0 {
            return Ok(true);
        }
        chunk.truncate(n);
        if tx.send(chunk).is_err() {
            return Ok(false);
        }
        if n < CHUNK_SIZE {
            return Ok(true);
        }
    }
}

/// Concatenated gzip members (as `gzip -d` and `unpigz`, which containerd runs, read them),
/// optionally followed by zero bytes: tape-style padding that both ignore. Anything else after
/// the last member is an error.
struct GzipMembers<R: BufRead> {
    /// The member being read; `None` once the stream has ended.
    member: Option<GzDecoder<R>>,
}

impl<R: BufRead> GzipMembers<R> {
    fn new(inner: R) -> Self {
        GzipMembers {
            member: Some(GzDecoder::new(inner)),
        }
    }
}

impl<R: BufRead> Read for GzipMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(member) = self.member.as_mut() else {
                return Ok(0);
            };
            let n = member.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let mut inner = self.member.take().expect("checked above").into_inner();
            let rest = inner.fill_buf()?;
            if rest.is_empty() {
                return Ok(0);
            }
            if rest[0] == 0 {
                skip_zero_padding(&mut inner)?;
                return Ok(0);
            }
            self.member = Some(GzDecoder::new(inner));
        }
    }
}

/// Consumes the rest of the stream, which must be zero bytes.
fn skip_zero_padding(inner: &mut impl BufRead) -> io::Result<()> {
    loop {
        let rest = inner.fill_buf()?;
        if rest.is_empty() {
            return Ok(());
        }
        if rest.iter().any(|&b| b != 0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "data after the gzip stream that is not zero padding",
            ));
        }
        let n = rest.len();
        inner.consume(n);
    }
}

fn source_error(e: io::Error) -> UnpackError {
    if e.get_ref().is_some_and(|inner| inner.is::<Aborted>()) {
        UnpackError::Aborted
    } else {
        UnpackError::Source(e)
    }
}

fn decode_error(compression: Compression, e: io::Error) -> UnpackError {
    let what = match compression {
        Compression::None => "tar",
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
    };
    if e.kind() == io::ErrorKind::UnexpectedEof {
        UnpackError::format(None, format!("truncated {what} stream"))
    } else {
        UnpackError::format(None, format!("corrupt {what} stream: {e}"))
    }
}

/// The error a streaming source returns when its writer aborted.
#[derive(Debug)]
pub struct Aborted;

impl std::fmt::Display for Aborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("aborted")
    }
}

impl std::error::Error for Aborted {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_map_to_compressions() {
        use Compression::*;
        for (mt, c) in [
            ("application/vnd.oci.image.layer.v1.tar", None),
            ("application/vnd.oci.image.layer.v1.tar+gzip", Gzip),
            ("application/vnd.oci.image.layer.v1.tar+zstd", Zstd),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                Gzip,
            ),
            ("application/vnd.docker.image.rootfs.diff.tar.gzip", Gzip),
        ] {
            assert_eq!(Compression::from_media_type(mt).unwrap(), c, "{mt}");
        }
        for bad in [
            "application/json",
            "",
            "application/vnd.oci.image.layer.v1.tar+bzip2",
        ] {
            assert!(matches!(
                Compression::from_media_type(bad),
                Err(UnpackError::UnsupportedMediaType(_))
            ));
        }
    }

    #[test]
    fn the_magic_bytes_decide_as_in_containerd() {
        use Compression::*;
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]), Gzip);
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 7, 0, 0, 0, 0, 0]), None);
        assert_eq!(Compression::detect(&ZSTD_MAGIC), Zstd);
        assert_eq!(
            Compression::detect(&[0x5f, 0x2a, 0x4d, 0x18, 4, 0, 0, 0]),
            Zstd
        );
        assert_eq!(Compression::detect(&[0x5f, 0x2a, 0x4d, 0x18]), None);
        assert_eq!(
            Compression::detect(&[0x60, 0x2a, 0x4d, 0x18, 4, 0, 0, 0]),
            None
        );
        assert_eq!(Compression::detect(b"etc/"), None);
        assert_eq!(Compression::detect(b""), None);
    }

    #[test]
    fn gzip_members_then_zero_padding_are_read() {
        use flate2::write::GzEncoder;
        let member = |data: &[u8]| {
            let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        };
        let read = |blob: Vec<u8>| {
            let mut out = Vec::new();
            GzipMembers::new(&blob[..])
                .read_to_end(&mut out)
                .map(|_| out)
        };
        let two = [member(b"one "), member(b"two")].concat();
        assert_eq!(read(two.clone()).unwrap(), b"one two");
        assert_eq!(
            read([two.clone(), vec![0; 5000]].concat()).unwrap(),
            b"one two"
        );
        assert!(read([two.clone(), vec![0, 0, 1]].concat()).is_err());
        assert!(read([two, b"GARBAGE".to_vec()].concat()).is_err());
    }
}
