//! Python bindings for the layer engine: `unpack_layer`, `LayerWriter`, `PreparedLayer`,
//! `UnpackLimits`, `UnpackStats`. The GIL is released while bytes are decompressed and applied.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use ocistore_core::unpack::{self, UnpackOptions};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::buffer::ByteView;
use crate::errors::unpack_error;

/// Bytes read from a Python file object per call.
const READ_CHUNK: usize = 1 << 20;

/// Upper bounds for one layer; ``None`` means unlimited.
#[pyclass(module = "ocistore._core", frozen, get_all, eq)]
#[derive(Clone, PartialEq, Eq)]
pub struct UnpackLimits {
    max_bytes: Option<u64>,
    max_entries: Option<u64>,
    max_file_size: Option<u64>,
    max_path_length: Option<u64>,
}

#[pymethods]
impl UnpackLimits {
    #[new]
    #[pyo3(signature = (
        *,
        max_bytes = Some(68_719_476_736),
        max_entries = Some(4_000_000),
        max_file_size = Some(34_359_738_368),
        max_path_length = Some(4096),
    ))]
    #[pyo3(
        text_signature = "(*, max_bytes=68719476736, max_entries=4000000, max_file_size=34359738368, max_path_length=4096)"
    )]
    fn new(
        max_bytes: Option<u64>,
        max_entries: Option<u64>,
        max_file_size: Option<u64>,
        max_path_length: Option<u64>,
    ) -> Self {
        UnpackLimits {
            max_bytes,
            max_entries,
            max_file_size,
            max_path_length,
        }
    }

    fn __repr__(&self) -> String {
        let show = |v: Option<u64>| v.map_or_else(|| "None".to_owned(), |v| v.to_string());
        format!(
            "UnpackLimits(max_bytes={}, max_entries={}, max_file_size={}, max_path_length={})",
            show(self.max_bytes),
            show(self.max_entries),
            show(self.max_file_size),
            show(self.max_path_length)
        )
    }
}

impl UnpackLimits {
    fn to_core(&self) -> unpack::UnpackLimits {
        unpack::UnpackLimits {
            max_bytes: self.max_bytes,
            max_entries: self.max_entries,
            max_file_size: self.max_file_size,
            max_path_length: self.max_path_length,
        }
    }
}

/// What unpacking a layer did.
#[pyclass(module = "ocistore._core", frozen, get_all)]
pub struct UnpackStats {
    entries: u64,
    bytes_written: u64,
    whiteouts: u64,
    skipped: Vec<(String, String)>,
    digest: Option<String>,
    diff_id: String,
    compressed_size: u64,
    uncompressed_size: u64,
}

#[pymethods]
impl UnpackStats {
    fn __repr__(&self) -> String {
        format!(
            "UnpackStats(entries={}, bytes_written={}, whiteouts={}, skipped={}, digest={:?}, \
             diff_id={:?}, compressed_size={}, uncompressed_size={})",
            self.entries,
            self.bytes_written,
            self.whiteouts,
            self.skipped.len(),
            self.digest,
            self.diff_id,
            self.compressed_size,
            self.uncompressed_size
        )
    }
}

impl From<unpack::UnpackStats> for UnpackStats {
    fn from(s: unpack::UnpackStats) -> Self {
        UnpackStats {
            entries: s.entries,
            bytes_written: s.bytes_written,
            whiteouts: s.whiteouts,
            skipped: s.skipped,
            digest: s.digest,
            diff_id: s.diff_id,
            compressed_size: s.compressed_size,
            uncompressed_size: s.uncompressed_size,
        }
    }
}

fn build_options(
    media_type: &str,
    digest: Option<&str>,
    diff_id: Option<&str>,
    limits: Option<&UnpackLimits>,
    blob_path: Option<PathBuf>,
    resolver: &str,
) -> PyResult<UnpackOptions> {
    let mut options = UnpackOptions::for_media_type(media_type).map_err(unpack_error)?;
    options.resolver = parse_resolver(resolver)?;
    options.digest = digest
        .map(|d| UnpackOptions::parse_digest("digest", d))
        .transpose()
        .map_err(unpack_error)?;
    options.diff_id = diff_id
        .map(|d| UnpackOptions::parse_digest("diff_id", d))
        .transpose()
        .map_err(unpack_error)?;
    if let Some(limits) = limits {
        options.limits = limits.to_core();
    }
    options.blob_path = blob_path;
    Ok(options)
}

/// `"auto"` (`openat2(RESOLVE_IN_ROOT)` where the kernel has it) or `"walk"` (always the
/// component-wise fallback; tests run the hostile corpus through both).
fn parse_resolver(name: &str) -> PyResult<unpack::Resolver> {
    match name {
        "auto" => Ok(unpack::Resolver::Auto),
        "walk" => Ok(unpack::Resolver::Walk),
        other => Err(PyValueError::new_err(format!(
            "resolver must be \"auto\" or \"walk\", not {other:?}"
        ))),
    }
}

/// The file-writing worker threads a layer gets by default here
/// (``$OCISTORE_UNPACK_WRITERS``, else by CPU count).
#[pyfunction]
fn default_unpack_writers() -> usize {
    unpack::default_writers()
}

/// Unpacks one layer blob (a path or a binary file object) into ``dest``, verifying digests.
#[pyfunction]
#[pyo3(signature = (
    source, dest, media_type, *, digest = None, diff_id = None, limits = None, resolver = "auto"
))]
#[allow(clippy::too_many_arguments)]
fn unpack_layer(
    py: Python<'_>,
    source: &Bound<'_, PyAny>,
    dest: PathBuf,
    media_type: &str,
    digest: Option<&str>,
    diff_id: Option<&str>,
    limits: Option<PyRef<'_, UnpackLimits>>,
    resolver: &str,
) -> PyResult<UnpackStats> {
    let options = build_options(
        media_type,
        digest,
        diff_id,
        limits.as_deref(),
        None,
        resolver,
    )?;
    if let Ok(path) = source.extract::<PathBuf>() {
        return py
            .detach(|| unpack::unpack_file(&path, &dest, &options))
            .map(UnpackStats::from)
            .map_err(unpack_error);
    }
    if !source.hasattr("read")? {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "source must be a path or a binary file object",
        ));
    }
    // A file object: read it with the GIL in large chunks, decompress and apply without it.
    let mut writer = unpack::LayerWriter::new(dest, options).map_err(unpack_error)?;
    loop {
        let data = source.call_method1("read", (READ_CHUNK,))?;
        let view = ByteView::new(&data)?;
        if view.as_slice().is_empty() {
            break;
        }
        let owned = view.as_slice().to_vec();
        drop(view);
        if let Err(e) = py.detach(|| writer.write(owned)) {
            return Err(unpack_error(e));
        }
    }
    py.detach(|| writer.close())
        .map(UnpackStats::from)
        .map_err(unpack_error)
}

/// A layer blob being decompressed (and its diff_id hashed) ahead of ``apply``, with up to
/// ``ahead_bytes`` of tar held in memory: the next layer decompresses on a second core while
/// the current one is applied.
#[pyclass(module = "ocistore._core", frozen)]
pub struct PreparedLayer {
    inner: Mutex<Option<unpack::PreparedLayer>>,
}

#[pymethods]
impl PreparedLayer {
    #[new]
    #[pyo3(signature = (
        source, media_type, *, digest = None, diff_id = None, limits = None,
        ahead_bytes = 16_777_216, resolver = "auto"
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        source: PathBuf,
        media_type: &str,
        digest: Option<&str>,
        diff_id: Option<&str>,
        limits: Option<PyRef<'_, UnpackLimits>>,
        ahead_bytes: usize,
        resolver: &str,
    ) -> PyResult<Self> {
        let options = build_options(
            media_type,
            digest,
            diff_id,
            limits.as_deref(),
            None,
            resolver,
        )?;
        let inner = py
            .detach(|| unpack::PreparedLayer::open(&source, options, ahead_bytes))
            .map_err(unpack_error)?;
        Ok(PreparedLayer {
            inner: Mutex::new(Some(inner)),
        })
    }

    /// Applies the layer into ``dest`` and verifies it (as ``unpack_layer``); only once.
    fn apply(&self, py: Python<'_>, dest: PathBuf) -> PyResult<UnpackStats> {
        let prepared = self.take().ok_or_else(prepared_closed)?;
        py.detach(|| prepared.apply(&dest))
            .map(UnpackStats::from)
            .map_err(unpack_error)
    }

    /// Stops decompressing without applying anything (``apply`` then fails).
    fn close(&self, py: Python<'_>) {
        if let Some(prepared) = self.take() {
            py.detach(|| drop(prepared));
        }
    }

    /// Whether ``apply`` or ``close`` has run.
    #[getter]
    fn closed(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    fn __repr__(&self) -> String {
        let state = if self.closed() { "closed" } else { "open" };
        format!("<PreparedLayer {state}>")
    }
}

impl PreparedLayer {
    fn take(&self) -> Option<unpack::PreparedLayer> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

fn prepared_closed() -> PyErr {
    PyValueError::new_err("PreparedLayer was already applied or closed")
}

/// Streams a layer into ``dest`` while it downloads: ``write`` chunks, then ``close``.
#[pyclass(module = "ocistore._core", frozen)]
pub struct LayerWriter {
    inner: Mutex<unpack::LayerWriter>,
}

#[pymethods]
impl LayerWriter {
    #[new]
    #[pyo3(signature = (
        dest, media_type, digest = None, diff_id = None, blob_path = None, limits = None,
        *, resolver = "auto"
    ))]
    fn new(
        dest: PathBuf,
        media_type: &str,
        digest: Option<&str>,
        diff_id: Option<&str>,
        blob_path: Option<PathBuf>,
        limits: Option<PyRef<'_, UnpackLimits>>,
        resolver: &str,
    ) -> PyResult<Self> {
        let options = build_options(
            media_type,
            digest,
            diff_id,
            limits.as_deref(),
            blob_path,
            resolver,
        )?;
        let inner = unpack::LayerWriter::new(dest, options).map_err(unpack_error)?;
        Ok(LayerWriter {
            inner: Mutex::new(inner),
        })
    }

    /// Queues a bytes-like chunk of the compressed blob (blocks while the queue is full).
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let view = ByteView::new(data)?;
        let result = py.detach(|| {
            let mut inner = self.lock();
            if inner.is_closed() {
                return Ok(false);
            }
            inner.write(view.as_slice().to_vec()).map(|()| true)
        });
        drop(view);
        match result {
            Ok(true) => Ok(()),
            Ok(false) => Err(closed_error()),
            Err(e) => Err(unpack_error(e)),
        }
    }

    /// Ends the blob, waits until the layer is applied and verified, returns the statistics.
    fn close(&self, py: Python<'_>) -> PyResult<UnpackStats> {
        let result = py.detach(|| {
            let mut inner = self.lock();
            if inner.is_closed() {
                return Ok(None);
            }
            inner.close().map(Some)
        });
        match result {
            Ok(Some(stats)) => Ok(stats.into()),
            Ok(None) => Err(closed_error()),
            Err(e) => Err(unpack_error(e)),
        }
    }

    /// Stops unpacking; entries already written to ``dest`` stay.
    fn abort(&self, py: Python<'_>) {
        py.detach(|| self.lock().abort());
    }

    /// Whether the writer was closed or aborted (or a write failed).
    #[getter]
    fn closed(&self) -> bool {
        self.lock().is_closed()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Closes on success (errors propagate), aborts when the block raised.
    #[pyo3(signature = (exc_type, _exc = None, _tb = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if self.lock().is_closed() {
            return Ok(false);
        }
        if exc_type.is_some_and(|t| !t.is_none()) {
            self.abort(py);
        } else {
            self.close(py)?;
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let state = if self.lock().is_closed() {
            "closed"
        } else {
            "open"
        };
        format!("<LayerWriter {state}>")
    }
}

impl LayerWriter {
    fn lock(&self) -> MutexGuard<'_, unpack::LayerWriter> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn closed_error() -> PyErr {
    PyValueError::new_err("I/O operation on a closed LayerWriter")
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<UnpackLimits>()?;
    m.add_class::<UnpackStats>()?;
    m.add_class::<LayerWriter>()?;
    m.add_class::<PreparedLayer>()?;
    m.add_function(wrap_pyfunction!(unpack_layer, m)?)?;
    m.add_function(wrap_pyfunction!(default_unpack_writers, m)?)?;
    Ok(())
}
