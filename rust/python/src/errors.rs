//! Maps core errors to the exceptions defined in `ocistore/errors.py`.
//!
//! Exceptions live in Python so users can subclass and catch them naturally; Rust raises them.

use ocistore_core::digest::DigestError;
use ocistore_core::unpack::UnpackError;
use pyo3::prelude::*;

pyo3::import_exception!(ocistore.errors, DigestMismatchError);
pyo3::import_exception!(ocistore.errors, InvalidDigestError);

/// Converts a digest error into the matching Python exception.
pub fn digest_error(err: DigestError) -> PyErr {
    match err {
        DigestError::Mismatch { expected, actual } => {
            let message = format!("digest mismatch: expected {expected}, got {actual}");
            DigestMismatchError::new_err((message, expected, actual))
        }
        // PyO3 maps io::Error kinds to FileNotFoundError, PermissionError, ...
        DigestError::Io(io) => PyErr::from(io),
        other @ (DigestError::UnknownAlgorithm(_) | DigestError::Malformed { .. }) => {
            InvalidDigestError::new_err(other.to_string())
        }
    }
}

pyo3::import_exception!(ocistore.errors, UnsupportedMediaTypeError);
pyo3::import_exception!(ocistore.errors, UnsafeLayerError);
pyo3::import_exception!(ocistore.errors, LayerLimitError);
pyo3::import_exception!(ocistore.errors, LayerFormatError);
pyo3::import_exception!(ocistore.errors, LayerWriteError);
pyo3::import_exception!(ocistore.errors, LayerSourceError);

/// Converts a layer engine error into the matching Python exception (`entry` is set on the
/// exception when the error names one).
pub fn unpack_error(err: UnpackError) -> PyErr {
    let message = err.to_string();
    let (py_err, entry) = match err {
        UnpackError::UnsupportedMediaType(_) => (UnsupportedMediaTypeError::new_err(message), None),
        UnpackError::InvalidDigest { .. } => (InvalidDigestError::new_err(message), None),
        UnpackError::DigestMismatch {
            expected, actual, ..
        } => (
            DigestMismatchError::new_err((message, expected, actual)),
            None,
        ),
        UnpackError::Unsafe { entry, .. } => (UnsafeLayerError::new_err(message), Some(entry)),
        UnpackError::Limit { entry, .. } => (LayerLimitError::new_err(message), entry),
        UnpackError::Format { entry, .. } => (LayerFormatError::new_err(message), entry),
        UnpackError::Write { entry, source } => {
            let errno = source.raw_os_error().unwrap_or(0);
            (LayerWriteError::new_err((errno, message)), entry)
        }
        UnpackError::Aborted => (LayerFormatError::new_err(message), None),
        // OSError subclasses: errno, strerror and filename as `except OSError` code expects.
        UnpackError::Source(io) => (os_error::<LayerSourceError>(&io, message, None), None),
        UnpackError::SourceFile { path, source } => {
            let strerror = format!("reading the layer blob failed: {source}");
            (
                os_error::<LayerSourceError>(&source, strerror, Some(path)),
                None,
            )
        }
        UnpackError::Destination { path, source } => {
            let strerror = format!("unusable unpack destination: {source}");
            (
                os_error::<LayerWriteError>(&source, strerror, Some(path)),
                None,
            )
        }
    };
    if let Some(entry) = entry {
        Python::attach(|py| {
            let _ = py_err.value(py).setattr("entry", entry);
        });
    }
    py_err
}

/// An `OSError` subclass built like `OSError(errno, strerror[, filename])`, so `errno`,
/// `strerror` and `filename` are set (a bare message when the error has no errno).
fn os_error<T: pyo3::PyTypeInfo>(
    io: &std::io::Error,
    strerror: String,
    path: Option<std::path::PathBuf>,
) -> PyErr {
    match (io.raw_os_error(), path) {
        (errno, Some(path)) => PyErr::new::<T, _>((errno, strerror, path.into_os_string())),
        (Some(errno), None) => PyErr::new::<T, _>((errno, strerror)),
        (None, None) => PyErr::new::<T, _>((strerror,)),
    }
}
