"""Content-addressed blobs (``blobs/<alg>/<hex>``) and the crash-safe :class:`Ingest` writer.

A blob becomes visible only by ``rename(2)`` of a fully written, fsynced and verified partial
file, so a reader never sees a blob whose bytes do not match its name. Partial files live in
``ingest/`` on the same filesystem (so the rename is atomic) and survive a crash for resuming.
One lock file per digest serialises writers across processes: a second process asking for the
same blob waits, then finds it committed and skips the download.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

from ocistore.digest import Digester, digest_bytes, validate_digest
from ocistore.errors import (
    BlobNotFoundError,
    DigestMismatchError,
    SizeMismatchError,
    StoreError,
    store_writes,
)
from ocistore.store.locks import FileLock

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["BlobStore", "Ingest", "fsync_dir"]

_CHUNK = 1 << 20
_READ_ONLY = 0o444
_ALGORITHMS = ("sha256", "sha512")
_PARALLEL_MIN = 256 * 1024
# Written bytes are handed to the disk every this many bytes, so commit's fsync has little left.
WRITEBACK_EVERY = 8 * 1024 * 1024
_SYNC_FILE_RANGE_WRITE = 2


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """Linux's ``sync_file_range(2)`` (Python's ``os`` lacks it), or None."""
    import ctypes

    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Starts writing a file range to disk without waiting (a hint: durability is fsync's)."""
    function = _sync_file_range()
    if function is not None:
        function(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


# Called once a blob is committed (or found already present): digest, size, media type.
CommitHook = Callable[[str, int, "str | None"], None]


def fsync_dir(path: Path) -> None:
    """Makes a rename or unlink inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _split(digest: str) -> tuple[str, str]:
    validate_digest(digest)  # never build a path from an unchecked digest (CVE-2024-3727)
    algorithm, _, encoded = digest.partition(":")
    return algorithm, encoded


class BlobStore:
    """The blob directories of a store root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs_dir = root / "blobs"
        self.ingest_dir = root / "ingest"
        self.locks_dir = root / "locks"
        for directory in (self.blobs_dir / "sha256", self.ingest_dir, self.locks_dir):
            directory.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        """Where the committed blob lives (it may not exist)."""
        algorithm, encoded = _split(digest)
        return self.blobs_dir / algorithm / encoded

    def partial_path(self, digest: str) -> Path:
        """The partial file of an ingest of ``digest``."""
        algorithm, encoded = _split(digest)
        return self.ingest_dir / f"{algorithm}-{encoded}.partial"

    def lock_path(self, digest: str) -> Path:
        """The lock file serialising writers (and GC) of ``digest``."""
        algorithm, encoded = _split(digest)
        return self.locks_dir / f"{algorithm}-{encoded}.lock"

    def lock(self, digest: str) -> FileLock:
        """An (unacquired) lock on ``digest``."""
        return FileLock(self.lock_path(digest))

    def has(self, digest: str) -> bool:
        """Whether the blob is committed."""
        return self.path(digest).is_file()

    def open(self, digest: str) -> BinaryIO:
        """Opens a committed blob for reading."""
        try:
            return self.path(digest).open("rb")
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {digest} is not in the store") from None

    def read(self, digest: str, max_size: int | None = None) -> bytes:
        """Reads a whole blob, verifying it (meant for manifests and configs)."""
        with self.open(digest) as handle:
            size = os.fstat(handle.fileno()).st_size
            if max_size is not None and size > max_size:
                raise StoreError(f"blob {digest} is {size} bytes, over the {max_size} limit")
            data = handle.read()
        actual = digest_bytes(data, digest.partition(":")[0])
        if actual != digest:
            raise DigestMismatchError(
                f"blob {digest} is corrupt on disk (hashes to {actual}); run fsck",
                expected=digest,
                actual=actual,
            )
        return data

    def size(self, digest: str) -> int:
        """Size of a committed blob."""
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {digest} is not in the store") from None

    def files(self) -> Iterator[tuple[str | None, Path]]:
        """Every file under ``blobs/`` with its digest (None if the name is not a digest)."""
        if not self.blobs_dir.is_dir():
            return
        for algo_dir in sorted(self.blobs_dir.iterdir()):
            if algo_dir.name not in _ALGORITHMS or algo_dir.is_symlink() or not algo_dir.is_dir():
                yield None, algo_dir
                continue
            for entry in sorted(algo_dir.iterdir()):
                digest = f"{algo_dir.name}:{entry.name}"
                try:
                    validate_digest(digest)
                except ValueError:
                    yield None, entry
                    continue
                yield digest, entry

    def partials(self) -> Iterator[tuple[str | None, Path]]:
        """Every file under ``ingest/`` with the digest it is an ingest of (None if unknown)."""
        for entry in sorted(self.ingest_dir.iterdir()):
            name = entry.name
            digest = None
            if name.endswith(".partial"):
                algorithm, _, encoded = name.removesuffix(".partial").partition("-")
                try:
                    validate_digest(f"{algorithm}:{encoded}")
                    digest = f"{algorithm}:{encoded}"
                except ValueError:
                    digest = None
            yield digest, entry


class Ingest:
    """Writes one blob: append, hash as written, then :meth:`commit` verifies and publishes it.

    Entering the context takes a cross-process lock on the digest (waiting for another writer
    to finish). Then ``done`` tells whether the blob is already committed (nothing to do), and
    ``offset`` how many bytes a previous, interrupted ingest left (resume from there). Leaving
    the context without committing keeps the partial file for a later resume.
    """

    def __init__(
        self,
        blobs: BlobStore,
        digest: str,
        size: int | None,
        *,
        media_type: str | None = None,
        on_commit: CommitHook | None = None,
        lock_timeout: float | None = None,
    ) -> None:
        if size is not None and size < 0:
            raise SizeMismatchError(f"blob {digest}: negative size {size}")
        self.digest = digest
        self.size = size
        self.media_type = media_type
        self.path = blobs.partial_path(digest)
        self.done = False
        self.offset = 0
        self._blobs = blobs
        self._on_commit = on_commit
        self._lock_timeout = lock_timeout
        self._lock = blobs.lock(digest)
        self._fd: int | None = None
        self._written_back = 0
        self._executor: ThreadPoolExecutor | None = None
        self._digester = Digester(digest.partition(":")[0])

    # --- context ------------------------------------------------------------------------

    def __enter__(self) -> Ingest:
        with store_writes(self._lock.path):
            self._lock.acquire(timeout=self._lock_timeout)
        try:
            with store_writes(self.path):
                self._open()
        except BaseException:
            self._close_fd()
            self._lock.release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close_fd()
        # A lock file is only worth keeping while a partial is waiting to be resumed.
        self._lock.release(unlink=self.done or not self.path.exists())

    def _open(self) -> None:
        target = self._blobs.path(self.digest)
        if target.is_file():
            self.done = True
            self.offset = target.stat().st_size
            if self._on_commit is not None:
                self._on_commit(self.digest, self.offset, self.media_type)
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._fd = fd
        length = os.fstat(fd).st_size
        if self.size is not None and length > self.size:
            length = 0  # longer than the blob can be: not a prefix of it
            os.ftruncate(fd, 0)
        # Re-hash what an earlier attempt wrote, so the digest covers the whole blob.
        os.lseek(fd, 0, os.SEEK_SET)
        remaining = length
        while remaining:
            chunk = os.read(fd, min(_CHUNK, remaining))
            if not chunk:  # the file shrank under us: keep what we hashed
                length -= remaining
                os.ftruncate(fd, length)
                break
            self._digester.update(chunk)
            remaining -= len(chunk)
        os.lseek(fd, length, os.SEEK_SET)
        self.offset = self._written_back = length

    def _close_fd(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(1, thread_name_prefix="ocistore-hash")
        return self._executor

    def _require_open(self) -> int:
        if self.done:
            raise StoreError(f"blob {self.digest} is already committed; nothing to write")
        if self._fd is None:
            raise StoreError("ingest is not open: use it as a context manager")
        return self._fd

    # --- writing ------------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Appends ``data`` and hashes it (rejecting bytes beyond the declared size)."""
        fd = self._require_open()
        view = memoryview(data).cast("B")
        if self.size is not None and self.offset + len(view) > self.size:
            self.abort()
            raise SizeMismatchError(
                f"blob {self.digest}: got more than the declared {self.size} bytes"
            )
        hashing: Future[None] | None = None
        if len(view) >= _PARALLEL_MIN:
            # Both os.write and the Rust hasher release the GIL: hash on a second core while
            # this thread writes. Small chunks are not worth the hand-off.
            hashing = self._pool().submit(self._digester.update, view)
        try:
            with store_writes(self.path):
                written = 0
                while written < len(view):
                    written += os.write(fd, view[written:])
        except BaseException:
            if hashing is not None:
                hashing.result()
            self.abort()  # the digest and the file no longer agree
            raise
        if hashing is None:
            self._digester.update(view)
        else:
            hashing.result()
        self.offset += len(view)
        if self.offset - self._written_back >= WRITEBACK_EVERY > 0:
            start_writeback(fd, self._written_back, self.offset - self._written_back)
            self._written_back = self.offset

    def truncate(self) -> None:
        """Discards the partial bytes and restarts from offset 0 (the server ignored Range)."""
        fd = self._require_open()
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        self._digester = Digester(self.digest.partition(":")[0])
        self.offset = self._written_back = 0

    def abort(self) -> None:
        """Deletes the partial file; the ingest cannot be written any more."""
        self._close_fd()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def commit(self) -> str:
        """Verifies size and digest, then publishes the blob; returns the blob's path."""
        target = self._blobs.path(self.digest)
        if self.done:
            return str(target)
        fd = self._require_open()
        if self.size is not None and self.offset != self.size:
            self.abort()
            raise SizeMismatchError(
                f"blob {self.digest}: expected {self.size} bytes, got {self.offset}"
            )
        actual = self._digester.digest()
        if actual != self.digest:
            self.abort()
            raise DigestMismatchError(
                f"blob content hashes to {actual}, expected {self.digest}",
                expected=self.digest,
                actual=actual,
            )
        with store_writes(self.path):
            os.fsync(fd)
            os.fchmod(fd, _READ_ONLY)  # committed blobs are immutable: drop the write bits
            self._close_fd()
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(self.path, target)
            fsync_dir(target.parent)
            fsync_dir(self.path.parent)
        self.done = True
        if self._on_commit is not None:
            self._on_commit(self.digest, self.offset, self.media_type)
        return str(target)

    def __repr__(self) -> str:
        return f"Ingest({self.digest!r}, size={self.size}, offset={self.offset}, done={self.done})"


def is_read_only(path: Path) -> bool:
    """Whether a file has no write bits."""
    return not (path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
