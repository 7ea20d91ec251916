//! Zero-copy access to any object that supports the buffer protocol (bytes, bytearray,
//! memoryview, mmap, numpy arrays, ...), in the stable ABI (Python >= 3.11).

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;

/// A held `Py_buffer` in simple (C-contiguous bytes) form; released on drop.
pub struct ByteView {
    view: Box<ffi::Py_buffer>,
}

// The exporter keeps the memory alive while the view is held; reading it without the GIL is
// what hashlib and cryptography do too. A concurrent writer can only change the bytes read.
unsafe impl Send for ByteView {}
unsafe impl Sync for ByteView {}

impl ByteView {
    /// Borrows `obj`'s bytes without copying them.
    pub fn new(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let mut view = Box::new(std::mem::MaybeUninit::<ffi::Py_buffer>::uninit());
        // SAFETY: PyObject_GetBuffer initialises the view on success (return value 0).
        let rc =
            unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), view.as_mut_ptr(), ffi::PyBUF_SIMPLE) };
        if rc != 0 {
            let err = PyErr::take(obj.py());
            return Err(
                err.unwrap_or_else(|| PyTypeError::new_err("a bytes-like object is required"))
            );
        }
        // SAFETY: initialised above.
        let view = unsafe { Box::from_raw(Box::into_raw(view).cast::<ffi::Py_buffer>()) };
        Ok(ByteView { view })
    }

    pub fn as_slice(&self) -> &[u8] {
        let len = usize::try_from(self.view.len).unwrap_or(0);
        if len == 0 || self.view.buf.is_null() {
            return &[];
        }
        // SAFETY: PyBUF_SIMPLE guarantees `len` contiguous bytes at `buf` while the view is held.
        unsafe { std::slice::from_raw_parts(self.view.buf.cast::<u8>(), len) }
    }
}

impl Drop for ByteView {
    fn drop(&mut self) {
        // PyBuffer_Release needs the GIL (the view may be dropped from a detached section).
        Python::attach(|_py| unsafe { ffi::PyBuffer_Release(&mut *self.view) });
    }
}
