//! Content digests as OCI writes them: `algorithm:hex`.

use sha2::{Digest as _, Sha256, Sha512};
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::str::FromStr;

/// A digest algorithm that OCI registers (image-spec `descriptor.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The algorithm's name as it appears before the colon.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the lowercase hex encoding.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

impl FromStr for Algorithm {
    type Err = DigestError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "sha256" => Ok(Algorithm::Sha256),
            "sha512" => Ok(Algorithm::Sha512),
            other => Err(DigestError::UnknownAlgorithm(other.to_owned())),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a digest could not be parsed, computed or verified.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("unsupported digest algorithm {0:?} (expected sha256 or sha512)")]
    UnknownAlgorithm(String),
    #[error("malformed digest {digest:?}: {reason}")]
    Malformed {
        digest: String,
        reason: &'static str,
    },
    #[error("digest mismatch: expected {expected}, got {actual}")]
    Mismatch { expected: String, actual: String },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// A parsed, validated `algorithm:hex` digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContentDigest {
    pub algorithm: Algorithm,
    pub hex: String,
}

impl ContentDigest {
    /// Parses and validates `algorithm:hex` (lowercase hex of the algorithm's length).
    pub fn parse(text: &str) -> Result<Self, DigestError> {
        let malformed = |reason| DigestError::Malformed {
            digest: text.to_owned(),
            reason,
        };
        let (name, hex) = text
            .split_once(':')
            .ok_or_else(|| malformed("missing ':' between algorithm and hex"))?;
        let algorithm: Algorithm = name.parse()?;
        if hex.len() != algorithm.hex_len() {
            return Err(malformed("wrong hex length for the algorithm"));
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(malformed("hex must be lowercase [0-9a-f]"));
        }
        Ok(ContentDigest {
            algorithm,
            hex: hex.to_owned(),
        })
    }
}

impl fmt::Display for ContentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

/// An incremental hasher that yields OCI digest strings.
#[derive(Clone)]
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything fed so far, without consuming the hasher.
    pub fn digest(&self) -> ContentDigest {
        let hex = match self {
            Hasher::Sha256(h) => hex::encode(h.clone().finalize()),
            Hasher::Sha512(h) => hex::encode(h.clone().finalize()),
        };
        ContentDigest {
            algorithm: self.algorithm(),
            hex,
        }
    }
}

/// An `io::Write` adaptor is handy for `io::copy` into a hasher.
impl io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A reader that hashes what passes through it and counts the bytes.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R, algorithm: Algorithm) -> Self {
        HashingReader {
            inner,
            hasher: Hasher::new(algorithm),
            bytes: 0,
        }
    }

    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    pub fn digest(&self) -> ContentDigest {
        self.hasher.digest()
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    pub fn into_parts(self) -> (R, Hasher, u64) {
        (self.inner, self.hasher, self.bytes)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Size of one read. A quarter MiB stays in the core's L2 cache between the copy out of the page
/// cache and the hashing, which measured faster here than 1 MiB or 4 MiB reads.
const FILE_CHUNK: usize = 256 << 10;

/// Hashes a whole file with `algorithm`, in bounded memory (one read buffer).
///
/// A file that shrinks while being read just ends early: plain reads, not a memory map, so a
/// truncation cannot kill the process with SIGBUS.
pub fn digest_file(path: &Path, algorithm: Algorithm) -> Result<ContentDigest, DigestError> {
    let file = File::open(path)?;
    advise_sequential(&file);
    let mut hasher = Hasher::new(algorithm);
    hash_serially(file, &mut hasher)?;
    Ok(hasher.digest())
}

/// Doubles the kernel's read-ahead window, which helps files that are not in the page cache.
fn advise_sequential(file: &File) {
    #[cfg(target_os = "linux")]
    {
        // Only a hint: a file (a FIFO, say) that refuses it is read just the same.
        let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::Sequential);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// Reads until `buf` is full or the file ends; returns how many bytes were read.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn hash_serially(mut file: File, hasher: &mut Hasher) -> io::Result<()> {
    let mut buf = vec![0u8; FILE_CHUNK];
    loop {
        match read_full(&mut file, &mut buf)? {
            0 => return Ok(()),
            n => hasher.update(&buf[..n]),
        }
    }
}

/// Checks that `path` hashes to `expected`; the error names both digests.
pub fn verify_file(path: &Path, expected: &str) -> Result<(), DigestError> {
    let expected = ContentDigest::parse(expected)?;
    let actual = digest_file(path, expected.algorithm)?;
    if actual != expected {
        return Err(DigestError::Mismatch {
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn empty_input_has_the_well_known_digest() {
        assert_eq!(
            Hasher::new(Algorithm::Sha256).digest().to_string(),
            EMPTY_SHA256
        );
    }

    #[test]
    fn abc_sha512_matches_fips_vector() {
        let mut h = Hasher::new(Algorithm::Sha512);
        h.update(b"abc");
        assert!(h.digest().hex.starts_with("ddaf35a193617aba"));
    }

    #[test]
    fn incremental_equals_one_shot() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut a = Hasher::new(Algorithm::Sha256);
        a.update(&data);
        let mut b = Hasher::new(Algorithm::Sha256);
        for chunk in data.chunks(7) {
            b.update(chunk);
        }
        assert_eq!(a.digest(), b.digest());
    }

    #[test]
    fn parse_rejects_malformed_digests() {
        assert!(ContentDigest::parse(EMPTY_SHA256).is_ok());
        for bad in [
            "sha256",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:abc",
            "sha256:zzb0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(
                ContentDigest::parse(bad).is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn verify_file_reports_both_digests() {
        let dir = std::env::temp_dir().join(format!("ocistore-digest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("blob");
        std::fs::write(&path, b"hello").unwrap();
        let err = verify_file(&path, EMPTY_SHA256).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(EMPTY_SHA256) && msg.contains("2cf24dba"),
            "{msg}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn scratch_file(name: &str, data: &[u8]) -> (std::path::PathBuf, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("ocistore-digest-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("blob");
        std::fs::write(&path, data).unwrap();
        (dir, path)
    }

    fn one_shot(algorithm: Algorithm, data: &[u8]) -> ContentDigest {
        let mut h = Hasher::new(algorithm);
        h.update(data);
        h.digest()
    }

    fn patterned(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 253) as u8).collect()
    }

    #[test]
    fn file_reads_agree_with_one_shot_at_buffer_edges() {
        let sizes = [
            0,
            1,
            FILE_CHUNK - 1,
            FILE_CHUNK,
            2 * FILE_CHUNK + 1,
            40 * FILE_CHUNK + 123,
        ];
        for (n, size) in sizes.into_iter().enumerate() {
            let data = patterned(size);
            let (dir, path) = scratch_file(&format!("edge{n}"), &data);
            for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
                assert_eq!(
                    digest_file(&path, algorithm).unwrap(),
                    one_shot(algorithm, &data),
                    "{algorithm}, {size} bytes"
                );
            }
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn a_file_truncated_after_opening_hashes_what_is_left() {
        let data = patterned(12 * FILE_CHUNK);
        let (dir, path) = scratch_file("truncated", &data);
        let kept = 3 * FILE_CHUNK + 5;
        let file = File::open(&path).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(kept as u64)
            .unwrap();
        let mut hasher = Hasher::new(Algorithm::Sha256);
        hash_serially(file, &mut hasher).unwrap();
        assert_eq!(hasher.digest(), one_shot(Algorithm::Sha256, &data[..kept]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_read_error_is_returned_not_hashed() {
        // Opening a directory works; reading it fails with EISDIR.
        let err = digest_file(&std::env::temp_dir(), Algorithm::Sha256).unwrap_err();
        assert!(
            matches!(&err, DigestError::Io(e) if e.kind() == io::ErrorKind::IsADirectory),
            "{err}"
        );
    }
}
