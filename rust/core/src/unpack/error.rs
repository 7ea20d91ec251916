//! The ways applying a layer can fail. Each variant maps to one Python exception class.

use std::io;
use std::path::PathBuf;

/// Why a layer was not (completely) applied.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The media type is not a layer type this engine applies.
    #[error("unsupported layer media type {0:?}")]
    UnsupportedMediaType(String),
    /// An expected digest string is malformed.
    #[error("invalid expected {what}: {reason}")]
    InvalidDigest { what: &'static str, reason: String },
    /// The compressed blob (`digest`) or the uncompressed tar (`diff_id`) hashed differently.
    #[error("{what} mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: &'static str,
        expected: String,
        actual: String,
    },
    /// An entry would create, follow or delete something outside the root.
    #[error("unsafe layer entry {entry:?}: {reason}")]
    Unsafe { entry: String, reason: String },
    /// The layer exceeds one of the configured limits.
    #[error("layer limit exceeded: {what} {actual} > {limit}{}", entry_suffix(.entry))]
    Limit {
        what: &'static str,
        limit: u64,
        actual: u64,
        entry: Option<String>,
    },
    /// The stream is not a valid (compressed) tar, or an entry cannot be applied as written.
    #[error("malformed layer{}: {reason}", entry_suffix(.entry))]
    Format {
        entry: Option<String>,
        reason: String,
    },
    /// The destination filesystem failed (disk full, read-only, I/O error).
    #[error("writing the layer failed{}: {source}", entry_suffix(.entry))]
    Write {
        entry: Option<String>,
        #[source]
        source: io::Error,
    },
    /// Reading the layer blob itself failed (a file or stream error, not the layer's fault).
    #[error("reading the layer failed: {0}")]
    Source(#[source] io::Error),
    /// The layer blob file is missing, unreadable or not a file.
    #[error("reading the layer blob {path:?} failed: {source}")]
    SourceFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The destination cannot be created or opened, or is not a directory.
    #[error("unusable destination {path:?}: {source}")]
    Destination {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The caller aborted a streaming unpack.
    #[error("layer unpack aborted")]
    Aborted,
}

fn entry_suffix(entry: &Option<String>) -> String {
    match entry {
        Some(e) => format!(" at entry {e:?}"),
        None => String::new(),
    }
}

impl UnpackError {
    pub(crate) fn unsafe_entry(entry: &str, reason: impl Into<String>) -> Self {
        UnpackError::Unsafe {
            entry: entry.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn format(entry: Option<&str>, reason: impl Into<String>) -> Self {
        UnpackError::Format {
            entry: entry.map(str::to_owned),
            reason: reason.into(),
        }
    }

    /// Classifies an I/O error met while applying `entry`: environment failures (disk full,
    /// read-only filesystem, EIO, out of descriptors) are write errors; anything else was caused
    /// by what the layer asked for (a hardlink to a missing file, a file as a parent, ...).
    pub(crate) fn from_io(entry: Option<&str>, err: io::Error) -> Self {
        if is_environmental(&err) {
            UnpackError::Write {
                entry: entry.map(str::to_owned),
                source: err,
            }
        } else {
            UnpackError::format(entry, err.to_string())
        }
    }

    /// Classifies an error from reading the (decompressed) stream.
    pub(crate) fn from_stream(err: io::Error) -> Self {
        if err.kind() == io::ErrorKind::UnexpectedEof {
            UnpackError::format(None, "truncated stream (unexpected end of data)")
        } else {
            UnpackError::format(None, format!("corrupt stream: {err}"))
        }
    }
}

/// Errors that say nothing about the layer and everything about where it is written (EACCES:
/// a destination directory the user may not change).
fn is_environmental(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(
            libc_errno::ENOSPC
                | libc_errno::EDQUOT
                | libc_errno::EROFS
                | libc_errno::EIO
                | libc_errno::EMFILE
                | libc_errno::ENFILE
                | libc_errno::ENOMEM
                | libc_errno::EACCES
        )
    )
}

/// The few errno values we classify, from rustix so that no libc dependency is needed.
mod libc_errno {
    use rustix::io::Errno;
    pub const ENOSPC: i32 = Errno::NOSPC.raw_os_error();
    pub const EDQUOT: i32 = Errno::DQUOT.raw_os_error();
    pub const EROFS: i32 = Errno::ROFS.raw_os_error();
    pub const EIO: i32 = Errno::IO.raw_os_error();
    pub const EMFILE: i32 = Errno::MFILE.raw_os_error();
    pub const ENFILE: i32 = Errno::NFILE.raw_os_error();
    pub const ENOMEM: i32 = Errno::NOMEM.raw_os_error();
    pub const EACCES: i32 = Errno::ACCESS.raw_os_error();
}

pub type Result<T> = std::result::Result<T, UnpackError>;
