//! Python bindings for credential matching. Filled in by the "Credentials" work.

use pyo3::prelude::*;

pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
