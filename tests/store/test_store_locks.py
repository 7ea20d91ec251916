"""flock-based locks whose files may be deleted while others wait for them."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ocistore.store.locks import FileLock, LockTimeoutError, is_locked


def test_exclusive_between_objects(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    first, second = FileLock(path), FileLock(path)
    assert first.acquire(blocking=False)
    assert is_locked(path)
    assert not second.acquire(blocking=False)
    first.release()
    assert not is_locked(path)
    assert second.acquire(blocking=False)
    second.release()


def test_reacquiring_the_same_object_is_an_error(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "x.lock")
    with lock, pytest.raises(Exception, match="already held"):
        lock.acquire()


def test_timeout(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with FileLock(path), pytest.raises(LockTimeoutError):
        FileLock(path).acquire(timeout=0.1)


def test_unlinking_on_release_keeps_waiters_exclusive(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    holder = FileLock(path)
    holder.acquire()
    waiter = FileLock(path)
    got_it = threading.Event()
    release_waiter = threading.Event()

    def wait() -> None:
        waiter.acquire()  # blocks on the inode the holder is about to unlink
        got_it.set()
        release_waiter.wait(10)
        waiter.release(unlink=True)

    thread = threading.Thread(target=wait)
    thread.start()
    assert not got_it.wait(0.2)
    holder.release(unlink=True)
    assert got_it.wait(10)
    # The waiter noticed the unlink and locked the file now at the path: a newcomer (who
    # opens that path) is excluded, which would not be so had it kept the deleted inode.
    newcomer = FileLock(path)
    assert not newcomer.acquire(blocking=False)
    release_waiter.set()
    thread.join(10)
    assert newcomer.acquire(blocking=False)
    newcomer.release(unlink=True)
    assert not path.exists()
