//! A push-style front end: a download hands compressed chunks to `write`, a worker thread
//! behind a bounded channel hashes, saves, decompresses and applies them as they come.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::decompress::Aborted;
use super::error::{Result, UnpackError};
use super::{unpack_reader, UnpackOptions, UnpackStats};

/// Compressed chunks waiting for the worker (each as large as the caller's write).
const QUEUE_DEPTH: usize = 8;

/// Streams a layer into a directory while it is being downloaded.
pub struct LayerWriter {
    tx: Option<SyncSender<Vec<u8>>>,
    abort: Arc<AtomicBool>,
    worker: Option<JoinHandle<Result<UnpackStats>>>,
}

impl LayerWriter {
    /// Starts the worker that will apply the layer into `dest`.
    pub fn new(dest: PathBuf, options: UnpackOptions) -> Result<LayerWriter> {
        let (tx, rx) = sync_channel(QUEUE_DEPTH);
        let abort = Arc::new(AtomicBool::new(false));
        let source = ChunkSource {
            rx,
            chunk: Vec::new(),
            pos: 0,
            abort: Arc::clone(&abort),
        };
        let worker = std::thread::Builder::new()
            .name("ocistore-apply".into())
            .spawn(move || unpack_reader(source, &dest, &options, false))
            .map_err(|e| UnpackError::Write {
                entry: None,
                source: e,
            })?;
        Ok(LayerWriter {
            tx: Some(tx),
            abort,
            worker: Some(worker),
        })
    }

    /// Queues a chunk (blocks while the queue is full). An error means the layer failed (the
    /// writer is then finished: later calls report that it is closed).
    pub fn write(&mut self, chunk: Vec<u8>) -> Result<()> {
        let Some(tx) = &self.tx else {
            return Err(closed());
        };
        if chunk.is_empty() {
            return Ok(());
        }
        if tx.send(chunk).is_ok() {
            return Ok(());
        }
        // The worker stopped reading: it failed. Report why.
        self.tx = None;
        match self.join() {
            Err(e) => Err(e),
            Ok(_) => Err(UnpackError::format(None, "data after the end of the layer")),
        }
    }

    /// Signals the end of the blob and waits for the layer to be applied and verified.
    pub fn close(&mut self) -> Result<UnpackStats> {
        if self.tx.take().is_none() && self.worker.is_none() {
            return Err(closed());
        }
        self.join()
    }

    /// Stops the worker; what was already written to the destination stays.
    pub fn abort(&mut self) {
        self.abort.store(true, Ordering::SeqCst);
        self.tx = None;
        let _ = self.join();
    }

    /// Whether `close` or `abort` has run (or a write failed).
    pub fn is_closed(&self) -> bool {
        self.worker.is_none()
    }

    fn join(&mut self) -> Result<UnpackStats> {
        match self.worker.take() {
            Some(worker) => worker
                .join()
                .unwrap_or_else(|_| Err(UnpackError::format(None, "layer worker panicked"))),
            None => Err(closed()),
        }
    }
}

impl Drop for LayerWriter {
    fn drop(&mut self) {
        if self.worker.is_some() {
            self.abort();
        }
    }
}

fn closed() -> UnpackError {
    UnpackError::Source(io::Error::other("the layer writer is closed"))
}

/// The worker's view of the queued chunks.
struct ChunkSource {
    rx: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
    abort: Arc<AtomicBool>,
}

impl Read for ChunkSource {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            if self.abort.load(Ordering::SeqCst) {
                return Err(io::Error::other(Aborted));
            }
            match self.rx.recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Err(_) if self.abort.load(Ordering::SeqCst) => {
                    return Err(io::Error::other(Aborted))
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
