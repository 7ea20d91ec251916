"""Leases: protection from GC for content a process is still assembling (a pull in progress).

A lease is a row in the index plus a lock file its owner holds for the lease's lifetime. GC
treats a lease as alive exactly while its lock is held, so a process killed mid-pull releases
its leases automatically (the kernel drops the lock) without any timeout guessing.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType

from ocistore.store.catalog import Catalog
from ocistore.store.locks import FileLock, is_locked

__all__ = ["Lease", "LeaseSet", "lease_is_alive"]


def _lock_path(leases_dir: Path, lease_id: str) -> Path:
    return leases_dir / f"{lease_id}.lock"


def lease_is_alive(leases_dir: Path, lease_id: str) -> bool:
    """Whether the owner of a lease still holds it."""
    return is_locked(_lock_path(leases_dir, lease_id))


class LeaseSet:
    """The leases one :class:`Store` object has open (shared by its threads)."""

    def __init__(self, catalog: Catalog, leases_dir: Path) -> None:
        self._catalog = catalog
        self._dir = leases_dir
        self._open: list[str] = []
        self._mutex = threading.Lock()

    def active(self) -> list[str]:
        """Ids of the open leases."""
        with self._mutex:
            return list(self._open)

    def protect(self, digest: str) -> None:
        """Adds a blob to every open lease."""
        ids = self.active()
        if ids:
            self._catalog.add_lease_blobs(ids, digest)

    def open(self) -> Lease:
        """Creates and registers a new lease."""
        lease = Lease(self, os.urandom(16).hex())  # uuid4's randomness, without importing uuid
        lease._lock = FileLock(_lock_path(self._dir, lease.id))
        lease._lock.acquire()
        try:
            self._catalog.add_lease(lease.id)
        except BaseException:
            lease._lock.release(unlink=True)
            raise
        with self._mutex:
            self._open.append(lease.id)
        return lease

    def close(self, lease: Lease) -> None:
        """Ends a lease."""
        with self._mutex:
            if lease.id in self._open:
                self._open.remove(lease.id)
        try:
            self._catalog.remove_lease(lease.id)
        finally:
            if lease._lock is not None:
                lease._lock.release(unlink=True)


class Lease:
    """A context manager keeping every blob committed (or found) meanwhile safe from GC."""

    def __init__(self, owner: LeaseSet, lease_id: str) -> None:
        self.id = lease_id
        self._owner = owner
        self._lock: FileLock | None = None

    def add(self, digest: str) -> None:
        """Protects one more blob (committed through another store object, say)."""
        self._owner._catalog.add_lease_blobs([self.id], digest)

    def close(self) -> None:
        """Ends the lease (idempotent)."""
        if self._lock is not None and self._lock.held:
            self._owner.close(self)

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Lease({self.id!r})"
