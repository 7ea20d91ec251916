//! The applying stage's view of the tar bytes: chunks from the earlier stages, counted and
//! checked against the byte limit as they arrive.

use std::cell::RefCell;
use std::io::{self, BufRead, Read};
use std::rc::Rc;
use std::sync::mpsc::{Receiver, SyncSender};

use super::error::UnpackError;
use super::limits;

/// Where the reader leaves a typed error that `io::Error` cannot carry through the tar parser.
pub type ErrorSlot = Rc<RefCell<Option<UnpackError>>>;

/// A `Read` over the chunks coming from the decompressing thread.
pub struct TarStream {
    rx: Receiver<Vec<u8>>,
    /// Consumed chunks go back to the first stage for reuse (no allocation per MiB).
    recycle: SyncSender<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
    bytes: u64,
    max_bytes: Option<u64>,
    error: ErrorSlot,
}

impl TarStream {
    pub fn new(
        rx: Receiver<Vec<u8>>,
        recycle: SyncSender<Vec<u8>>,
        max_bytes: Option<u64>,
    ) -> TarStream {
        TarStream {
            rx,
            recycle,
            chunk: Vec::new(),
            pos: 0,
            bytes: 0,
            max_bytes,
            error: Rc::new(RefCell::new(None)),
        }
    }

    pub fn error_slot(&self) -> ErrorSlot {
        Rc::clone(&self.error)
    }

    /// Takes the next chunk; `Ok(false)` at the end of the stream.
    fn next_chunk(&mut self) -> io::Result<bool> {
        let Ok(chunk) = self.rx.recv() else {
            return Ok(false);
        };
        self.bytes += chunk.len() as u64;
        if let Err(e) = limits::check("uncompressed bytes", self.max_bytes, self.bytes, None) {
            *self.error.borrow_mut() = Some(e);
            return Err(io::Error::other("layer byte limit exceeded"));
        }
        let used = std::mem::replace(&mut self.chunk, chunk);
        if used.capacity() > 0 {
            let _ = self.recycle.try_send(used);
        }
        self.pos = 0;
        Ok(true)
    }

    /// Consumes the rest of the stream: the diff_id covers every byte.
    pub fn drain(&mut self) -> io::Result<()> {
        self.pos = self.chunk.len();
        while self.next_chunk()? {}
        Ok(())
    }

    /// The size of everything received.
    pub fn size(&self) -> u64 {
        self.bytes
    }
}

impl Read for TarStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = buf.len().min(available.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// File data is written straight from the chunks (no copy through a buffer of the applier).
impl BufRead for TarStream {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.chunk.len() {
            if !self.next_chunk()? {
                return Ok(&[]);
            }
        }
        Ok(&self.chunk[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.chunk.len());
    }
}
