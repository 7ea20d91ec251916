//! Python bindings for the layer engine. Filled in by the "Rust layer engine" work.

use pyo3::prelude::*;

pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
