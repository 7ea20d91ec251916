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
        // The blob itself could not be read: the usual OSError subclasses.
        UnpackError::Source(io) => (PyErr::from(io), None),
    };
    if let Some(entry) = entry {
        Python::attach(|py| {
            let _ = py_err.value(py).setattr("entry", entry);
        });
    }
    py_err
}
