//! Python bindings for the layer media types the engine knows: the Rust table is the authority
//! that `ocistore.mediatypes` is checked against.

use ocistore_core::unpack::{Compression, LAYER_MEDIA_TYPES};
use pyo3::prelude::*;

/// Every layer media type the engine applies, with its compression name.
#[pyfunction]
fn layer_media_types() -> Vec<(&'static str, &'static str)> {
    LAYER_MEDIA_TYPES
        .iter()
        .map(|&(media_type, compression)| (media_type, compression.name()))
        .collect()
}

/// The compression the first bytes of a blob show (``none``, ``gzip`` or ``zstd``).
#[pyfunction]
fn detect_compression(head: &[u8]) -> &'static str {
    Compression::detect(head).name()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(layer_media_types, m)?)?;
    m.add_function(wrap_pyfunction!(detect_compression, m)?)?;
    Ok(())
}
