"""Blob GC: mark-and-sweep of blobs, unpacked trees and stale ingests (kubelet's image GC is
``ocistore.manager.imagegc``).

Roots are image records (manifest and index digests), pinned blobs and the blobs of live
leases; edges are the manifest/index references recorded in the index. The sweep runs inside
one index write transaction, so no image can be recorded and no lease extended while it
decides; a blob whose digest lock is held (an ingest is committing or reusing it) is skipped.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from typing import TYPE_CHECKING

from ocistore.store.blobs import fsync_dir
from ocistore.store.leases import lease_is_alive
from ocistore.store.locks import FileLock, is_locked
from ocistore.store.paths import TMP_PREFIX, remove_tree, unpack_dir_name, unpack_lock_path
from ocistore.store.reports import GcReport

if TYPE_CHECKING:
    from ocistore.store.store import Store

__all__ = ["collect_garbage", "live_blobs"]


def live_blobs(store: Store, conn: sqlite3.Connection) -> set[str]:
    """Every blob reachable from an image, a pinned blob or a live lease (prunes dead leases)."""
    roots: set[str] = set()
    for record in store.catalog.images(conn):
        roots.add(record.digest)
        if record.index_digest:
            roots.add(record.index_digest)
    roots.update(r[0] for r in conn.execute("SELECT digest FROM blobs WHERE pinned = 1"))
    for lease_id, digests in store.catalog.leases(conn).items():
        if lease_is_alive(store.leases_dir, lease_id):
            roots.update(digests)
        else:
            store.catalog.remove_lease(lease_id, conn)
            stale = FileLock(store.leases_dir / f"{lease_id}.lock")
            if stale.acquire(blocking=False):
                stale.release(unlink=True)
    edges: dict[str, list[str]] = {}
    for parent, child in store.catalog.refs(conn):
        edges.setdefault(parent, []).append(child)
    marked: set[str] = set()
    stack = list(roots)
    while stack:
        digest = stack.pop()
        if digest in marked:
            continue
        marked.add(digest)
        stack.extend(edges.get(digest, ()))
    return marked


def live_chain_ids(store: Store, conn: sqlite3.Connection) -> set[str]:
    """Chain IDs of every recorded image (the names of the unpacked trees to keep)."""
    return {r.chain_id for r in store.catalog.images(conn) if r.chain_id}


def collect_garbage(store: Store, *, dry_run: bool, ingest_max_age: float) -> GcReport:
    """Implements :meth:`Store.gc`."""
    report = GcReport(dry_run=dry_run)
    now = time.time()
    with store.catalog.write() as conn:
        marked = live_blobs(store, conn)
        indexed = store.catalog.blob_sizes()
        on_disk = {digest: path for digest, path in store.blobs.files() if digest is not None}
        candidates = sorted((set(indexed) | set(on_disk)) - marked)
        removed_rows: list[str] = []
        for digest in candidates:
            lock = store.blobs.lock(digest)
            if not lock.acquire(blocking=False):
                report.kept_locked.append(digest)
                continue
            try:
                path = on_disk.get(digest)
                size = path.stat().st_size if path is not None and path.exists() else 0
                report.removed_blobs.append(digest)
                report.bytes_freed += size
                if not dry_run:
                    if path is not None:
                        with contextlib.suppress(FileNotFoundError):
                            path.unlink()
                    removed_rows.append(digest)
            finally:
                lock.release(unlink=not dry_run)
        if not dry_run and removed_rows:
            store.catalog.remove_blob_rows(conn, removed_rows)
            for algo_dir in {p.parent for d, p in on_disk.items() if d in set(removed_rows)}:
                fsync_dir(algo_dir)
        keep_trees = {unpack_dir_name(c) for c in live_chain_ids(store, conn)}
        _sweep_unpacked(store, keep_trees, dry_run, report)
    _sweep_ingests(store, now - ingest_max_age, dry_run, report)
    return report


def _sweep_unpacked(store: Store, keep: set[str], dry_run: bool, report: GcReport) -> None:
    for entry in sorted(store.unpacked_dir.iterdir()):
        name = entry.name
        key = name[len(TMP_PREFIX) :].split(".", 1)[0] if name.startswith(TMP_PREFIX) else name
        if not name.startswith(TMP_PREFIX) and name in keep:
            continue
        lock = FileLock(unpack_lock_path(store, key))
        if not lock.acquire(blocking=False):
            continue  # being built right now
        try:
            if not entry.exists():
                continue
            report.removed_unpacked.append(name)
            if not dry_run:
                remove_tree(entry)
        finally:
            lock.release()


def _sweep_ingests(store: Store, older_than: float, dry_run: bool, report: GcReport) -> None:
    for digest, path in store.blobs.partials():
        if digest is not None and is_locked(store.blobs.lock_path(digest)):
            continue  # an ingest is writing it
        try:
            if path.stat().st_mtime > older_than:
                continue
        except FileNotFoundError:
            continue
        lock = store.blobs.lock(digest) if digest is not None else None
        if lock is not None and not lock.acquire(blocking=False):
            continue
        try:
            if not path.exists():
                continue  # committed by its writer meanwhile
            report.removed_ingests.append(path.name)
            if not dry_run:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        finally:
            if lock is not None:
                lock.release(unlink=not dry_run)
