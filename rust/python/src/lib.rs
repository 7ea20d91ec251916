//! `ocistore._core`: the thin native boundary. Each submodule converts types, releases the GIL
//! and maps errors; the work itself lives in the `ocistore-core` crate.

use pyo3::prelude::*;

mod buffer;
mod credmatch;
mod digest;
mod errors;
mod httphead;
mod mediatypes;
mod unpack;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    digest::register(m)?;
    unpack::register(m)?;
    mediatypes::register(m)?;
    credmatch::register(m)?;
    httphead::register(m)?;
    Ok(())
}
