//! Maps core errors to the exceptions defined in `ocistore/errors.py`.
//!
//! Exceptions live in Python so users can subclass and catch them naturally; Rust raises them.

use ocistore_core::digest::DigestError;
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
