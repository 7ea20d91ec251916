//! Python bindings for SHA-256/SHA-512 digests.

use std::path::PathBuf;
use std::sync::Mutex;

use ocistore_core::digest::{self, Algorithm, Hasher};
use pyo3::prelude::*;

use crate::buffer::ByteView;
use crate::errors::digest_error;

/// Buffers smaller than this are hashed without releasing the GIL (the switch costs more).
const DETACH_THRESHOLD: usize = 4096;

fn parse_algorithm(name: &str) -> PyResult<Algorithm> {
    name.parse::<Algorithm>().map_err(digest_error)
}

/// Incremental SHA-256/SHA-512 hasher producing `algorithm:hex` strings.
#[pyclass(module = "ocistore._core", frozen)]
pub struct Digester {
    hasher: Mutex<Hasher>,
    algorithm: Algorithm,
}

#[pymethods]
impl Digester {
    #[new]
    #[pyo3(signature = (algorithm = "sha256"))]
    fn new(algorithm: &str) -> PyResult<Self> {
        let algorithm = parse_algorithm(algorithm)?;
        Ok(Digester {
            hasher: Mutex::new(Hasher::new(algorithm)),
            algorithm,
        })
    }

    /// Feeds a bytes-like object; large buffers are hashed with the GIL released.
    fn update(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let view = ByteView::new(data)?;
        let bytes = view.as_slice();
        if bytes.len() < DETACH_THRESHOLD {
            self.lock().update(bytes);
        } else {
            py.detach(|| self.lock().update(bytes));
        }
        drop(view);
        Ok(())
    }

    /// The digest of everything fed so far, e.g. `"sha256:e3b0…"`.
    fn digest(&self) -> String {
        self.lock().digest().to_string()
    }

    /// The bare lowercase hex of the digest.
    fn hexdigest(&self) -> String {
        self.lock().digest().hex
    }

    /// A new Digester with the same state.
    fn copy(&self) -> Digester {
        Digester {
            hasher: Mutex::new(self.lock().clone()),
            algorithm: self.algorithm,
        }
    }

    #[getter]
    fn algorithm(&self) -> &'static str {
        self.algorithm.name()
    }

    fn __repr__(&self) -> String {
        format!("Digester(algorithm={:?})", self.algorithm.name())
    }
}

impl Digester {
    fn lock(&self) -> std::sync::MutexGuard<'_, Hasher> {
        // A panic while hashing cannot leave the hasher half-updated in a way that matters.
        self.hasher.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Hashes a file (GIL released) and returns `algorithm:hex`.
#[pyfunction]
#[pyo3(signature = (path, algorithm = "sha256"))]
fn digest_file(py: Python<'_>, path: PathBuf, algorithm: &str) -> PyResult<String> {
    let algorithm = parse_algorithm(algorithm)?;
    py.detach(|| digest::digest_file(&path, algorithm))
        .map(|d| d.to_string())
        .map_err(digest_error)
}

/// Raises DigestMismatchError unless the file hashes to `expected`.
#[pyfunction]
fn verify_file(py: Python<'_>, path: PathBuf, expected: &str) -> PyResult<()> {
    let expected = expected.to_owned();
    py.detach(|| digest::verify_file(&path, &expected))
        .map_err(digest_error)
}

/// Raises InvalidDigestError unless `text` is a well-formed `algorithm:hex` digest.
#[pyfunction]
fn validate_digest(text: &str) -> PyResult<()> {
    digest::ContentDigest::parse(text)
        .map(|_| ())
        .map_err(digest_error)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Digester>()?;
    m.add_function(wrap_pyfunction!(digest_file, m)?)?;
    m.add_function(wrap_pyfunction!(verify_file, m)?)?;
    m.add_function(wrap_pyfunction!(validate_digest, m)?)?;
    Ok(())
}
