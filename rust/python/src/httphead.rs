//! Python binding for the HTTP/1.x response-head parser (the light manifest HEAD's reader).

use ocistore_core::httphead;
use pyo3::prelude::*;

pyo3::import_exception!(ocistore.errors, MalformedResponseError);

/// `(minor_version, status, headers, head_length)` of the response head at the start of
/// `data`, or None while it is incomplete; MalformedResponseError when it is not HTTP/1.x.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn parse_response_head(data: &[u8]) -> PyResult<Option<(u8, u16, Vec<(String, String)>, usize)>> {
    match httphead::parse_response_head(data) {
        Ok(head) => Ok(head.map(|h| (h.minor_version, h.status, h.headers, h.length))),
        Err(err) => Err(MalformedResponseError::new_err(err.to_string())),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(parse_response_head, m)?)?;
    Ok(())
}
