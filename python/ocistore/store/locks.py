"""Cross-process file locks (``flock``) whose lock files can be deleted safely.

``filelock`` never removes its lock files on POSIX because a process may have opened the file
just before another one unlinked it, and both would then believe they hold the lock. We need to
remove lock files (one per digest would otherwise pile up forever), so after taking the lock we
check that the path still names the inode we locked, and retry otherwise. Whoever deletes a lock
file does so while holding it, which makes the check sufficient.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from ocistore.errors import StoreError

__all__ = ["FileLock", "LockTimeoutError", "is_locked"]

# How long a timed wait sleeps between non-blocking attempts (flock has no timed variant).
_POLL_SECONDS = 0.05


class LockTimeoutError(StoreError, TimeoutError):
    """A lock stayed held by another process for longer than the caller wanted to wait."""


class FileLock:
    """An exclusive ``flock`` on ``path``; re-entrant use is an error, not a deadlock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object currently holds the lock."""
        return self._fd is not None

    def acquire(self, *, blocking: bool = True, timeout: float | None = None) -> bool:
        """Takes the lock; returns False if ``blocking`` is False (or ``timeout`` ran out)."""
        if self._fd is not None:
            raise StoreError(f"lock {self.path.name} is already held by this object")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                if not self._flock(fd, blocking=blocking and deadline is None):
                    os.close(fd)
                    if not blocking or (deadline is not None and time.monotonic() >= deadline):
                        if deadline is not None:
                            raise LockTimeoutError(
                                f"timed out waiting for lock {self.path.name} ({timeout} s)"
                            )
                        return False
                    time.sleep(_POLL_SECONDS)
                    continue
                if self._still_linked(fd):
                    self._fd = fd
                    return True
                # Someone removed the file between our open() and flock(): lock the new one.
                os.close(fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(fd)
                raise

    def release(self, *, unlink: bool = False) -> None:
        """Releases the lock, first removing the lock file when ``unlink`` is True."""
        fd = self._fd
        if fd is None:
            return
        self._fd = None
        try:
            if unlink:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
        finally:
            os.close(fd)  # closing the only descriptor drops the flock

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __del__(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)

    def __repr__(self) -> str:
        return f"FileLock({str(self.path)!r}, held={self.held})"

    @staticmethod
    def _flock(fd: int, *, blocking: bool) -> bool:
        flags = fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB
        while True:
            try:
                fcntl.flock(fd, flags)
                return True
            except InterruptedError:
                continue
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    return False
                raise

    def _still_linked(self, fd: int) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)


def is_locked(path: Path) -> bool:
    """Whether some process (this one included, through another object) holds the lock."""
    if not path.exists():
        return False
    probe = FileLock(path)
    if probe.acquire(blocking=False):
        probe.release()
        return False
    return True
