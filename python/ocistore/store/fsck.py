"""``fsck``: re-hash every blob and cross-check blobs, index, ingests, unpacked trees, leases."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ocistore.digest import digest_file
from ocistore.store.blobgc import live_blobs
from ocistore.store.leases import lease_is_alive
from ocistore.store.locks import FileLock, is_locked
from ocistore.store.paths import TMP_PREFIX, remove_tree, unpack_lock_path
from ocistore.store.records import ImageRecord
from ocistore.store.reports import FsckProblem, FsckReport, ProblemKind

if TYPE_CHECKING:
    from ocistore.store.store import Store

__all__ = ["check_store"]


class _Checker:
    def __init__(self, store: Store, repair: bool, ingest_max_age: float) -> None:
        self.store = store
        self.repair = repair
        self.ingest_max_age = ingest_max_age
        self.report = FsckReport()
        self.hashed: set[str] = set()

    def found(self, kind: ProblemKind, subject: str, detail: str, repaired: bool = False) -> None:
        self.report.problems.append(FsckProblem(kind, subject, detail, repaired))

    # --- blobs on disk ------------------------------------------------------------------

    def check_blob_files(self) -> dict[str, int]:
        """Hashes every blob; returns the sound ones with their sizes."""
        sound: dict[str, int] = {}
        for digest, path in self.store.blobs.files():
            if digest is None:
                self.found(
                    ProblemKind.STRAY_FILE,
                    str(path.relative_to(self.store.root)),
                    "not a blob name",
                    self.repair and self._remove_stray(path),
                )
                continue
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue  # GC removed it while we looked
            if not stat.S_ISREG(info.st_mode):
                self.found(
                    ProblemKind.STRAY_FILE,
                    digest,
                    "not a regular file",
                    self.repair and self._remove_blob(digest, path),
                )
                continue
            try:
                actual = digest_file(path, digest.partition(":")[0])
            except FileNotFoundError:
                continue
            self.hashed.add(digest)
            self.report.blobs_checked += 1
            self.report.bytes_checked += info.st_size
            if actual != digest:
                self.found(
                    ProblemKind.CORRUPT_BLOB,
                    digest,
                    f"content hashes to {actual}",
                    self.repair and self._remove_blob(digest, path),
                )
                continue
            if info.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
                repaired = False
                if self.repair:
                    os.chmod(path, stat.S_IMODE(info.st_mode) & ~0o222)
                    repaired = True
                self.found(ProblemKind.WRITABLE_BLOB, digest, "has write bits", repaired)
            sound[digest] = info.st_size
        return sound

    def _remove_stray(self, path: Path) -> bool:
        remove_tree(path)
        return True

    def _remove_blob(self, digest: str, path: Path) -> bool:
        lock = self.store.blobs.lock(digest)
        if not lock.acquire(blocking=False):
            return False
        try:
            with contextlib.suppress(FileNotFoundError):
                if path.is_dir() and not path.is_symlink():
                    remove_tree(path)
                else:
                    path.unlink()
        finally:
            lock.release(unlink=True)
        return True

    # --- the index ----------------------------------------------------------------------

    def check_index(self, conn: sqlite3.Connection, sound: dict[str, int]) -> None:
        index = self.store.catalog
        indexed = index.blob_sizes()
        for digest, size in sorted(indexed.items()):
            if digest not in sound:
                if self.repair:
                    index.remove_blob_rows(conn, [digest])
                self.found(ProblemKind.MISSING_BLOB, digest, "indexed but not on disk", self.repair)
            elif sound[digest] != size:
                if self.repair:
                    conn.execute(
                        "UPDATE blobs SET size = ? WHERE digest = ?", (sound[digest], digest)
                    )
                self.found(
                    ProblemKind.SIZE_MISMATCH,
                    digest,
                    f"index says {size} bytes, blob has {sound[digest]}",
                    self.repair,
                )
        for digest, size in sorted(sound.items()):
            if digest in indexed:
                continue
            if is_locked(self.store.blobs.lock_path(digest)):
                continue  # an ingest is between its rename and its index update
            if self.repair:
                conn.execute(
                    "INSERT OR IGNORE INTO blobs (digest, size, media_type, created)"
                    " VALUES (?, ?, NULL, strftime('%s', 'now'))",
                    (digest, size),
                )
            self.found(
                ProblemKind.UNINDEXED_BLOB,
                digest,
                "verified blob missing from the index",
                self.repair,
            )
        self.check_references(conn, set(sound))

    def check_references(self, conn: sqlite3.Connection, present: set[str]) -> None:
        index = self.store.catalog
        edges: dict[str, list[str]] = {}
        for parent, child in index.refs(conn):
            edges.setdefault(parent, []).append(child)
        for record in index.images(conn):
            missing = self._missing_content(record, edges, present)
            if missing:
                if self.repair:
                    index.remove_image(conn, record.reference)
                self.found(
                    ProblemKind.DANGLING_REFERENCE,
                    record.reference,
                    f"image content missing: {', '.join(sorted(missing))}",
                    self.repair,
                )
        for parent, children in sorted(edges.items()):
            if parent not in present:
                if self.repair:
                    conn.execute("DELETE FROM blob_refs WHERE parent = ?", (parent,))
                continue  # the parent's own absence is reported above (missing blob)
            for child in children:
                if child not in present:
                    if self.repair:
                        conn.execute(
                            "DELETE FROM blob_refs WHERE parent = ? AND child = ?", (parent, child)
                        )
                    self.found(
                        ProblemKind.DANGLING_REFERENCE,
                        parent,
                        f"references missing blob {child}",
                        self.repair,
                    )
        with contextlib.suppress(sqlite3.Error):
            live = live_blobs(self.store, conn) if self.repair else self._live_readonly(conn)
            self.report.unreferenced_blobs = len(present - live)

    def _live_readonly(self, conn: sqlite3.Connection) -> set[str]:
        roots = {r.digest for r in self.store.catalog.images(conn)}
        roots |= {r.index_digest for r in self.store.catalog.images(conn) if r.index_digest}
        for digests in self.store.catalog.leases(conn).values():
            roots |= digests
        roots |= {r[0] for r in conn.execute("SELECT digest FROM blobs WHERE pinned = 1")}
        edges: dict[str, list[str]] = {}
        for parent, child in self.store.catalog.refs(conn):
            edges.setdefault(parent, []).append(child)
        marked: set[str] = set()
        stack = list(roots)
        while stack:
            digest = stack.pop()
            if digest not in marked:
                marked.add(digest)
                stack.extend(edges.get(digest, ()))
        return marked

    @staticmethod
    def _missing_content(
        record: ImageRecord, edges: dict[str, list[str]], present: set[str]
    ) -> set[str]:
        missing: set[str] = set()
        if record.index_digest and record.index_digest not in present:
            missing.add(record.index_digest)
        # The image's own closure: its manifest and everything below (not the index's
        # other platforms, which a single-platform pull never fetched).
        stack, seen = [record.digest], set()
        while stack:
            digest = stack.pop()
            if digest in seen:
                continue
            seen.add(digest)
            if digest not in present:
                missing.add(digest)
                continue
            stack.extend(edges.get(digest, ()))
        return missing

    # --- leftovers ----------------------------------------------------------------------

    def check_ingests(self) -> None:
        for digest, path in self.store.blobs.partials():
            lock = self.store.blobs.lock(digest) if digest is not None else None
            if lock is not None and not lock.acquire(blocking=False):
                continue  # an ingest is writing it: in progress, not a problem
            try:
                if not path.exists():
                    continue  # its writer committed it between our listing and our lock
                if digest is not None and not self._stale(path):
                    # An interrupted pull left it to be continued with HTTP Range.
                    self.report.resumable_ingests.append(path.name)
                    continue
                if self.repair:
                    remove_tree(path)
                self.found(
                    ProblemKind.LEFTOVER_INGEST,
                    path.name,
                    "partial download no process is writing, too old to resume"
                    if digest is not None
                    else "file in ingest/ that is no partial download",
                    self.repair,
                )
            finally:
                if lock is not None:
                    lock.release(unlink=self.repair)

    def _stale(self, path: Path) -> bool:
        try:
            return time.time() - path.stat().st_mtime > self.ingest_max_age
        except FileNotFoundError:
            return False

    def check_unpacked(self) -> None:
        for entry in sorted(self.store.unpacked_dir.iterdir()):
            if not entry.name.startswith(TMP_PREFIX):
                continue
            key = entry.name[len(TMP_PREFIX) :].split(".", 1)[0]
            lock = FileLock(unpack_lock_path(self.store, key))
            if not lock.acquire(blocking=False):
                continue
            try:
                if not entry.exists():
                    continue  # finished and renamed between our listing and our lock
                if self.repair:
                    remove_tree(entry)
                self.found(
                    ProblemKind.LEFTOVER_UNPACK,
                    entry.name,
                    "half-built root filesystem",
                    self.repair,
                )
            finally:
                lock.release()

    def check_layout_index(self) -> None:
        # Imported here: layout imports the store package, which imports this module.
        from ocistore.store.rootlayout import store_index_document, write_store_layout_files

        # Temporary files of an index.json rewrite a crash interrupted (writers hold the
        # layout lock while they write, and so do we now).
        for leftover in sorted(self.store.root.glob(".index.json.*")) + sorted(
            self.store.root.glob(".oci-layout.*")
        ):
            if self.repair:
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
            self.found(ProblemKind.STRAY_FILE, leftover.name, "interrupted rewrite", self.repair)
        expected = store_index_document(self.store)
        try:
            current = (self.store.root / "index.json").read_bytes()
        except OSError:
            current = b""
        layout_marker = (self.store.root / "oci-layout").is_file()
        if current == expected and layout_marker:
            return
        if self.repair:
            write_store_layout_files(self.store, expected)
        self.found(
            ProblemKind.STALE_LAYOUT_INDEX,
            "index.json",
            "the root index.json does not match the image records",
            self.repair,
        )

    def check_leases(self, conn: sqlite3.Connection) -> None:
        for lease_id in sorted(self.store.catalog.leases(conn)):
            if lease_is_alive(self.store.leases_dir, lease_id):
                continue
            if self.repair:
                self.store.catalog.remove_lease(lease_id, conn)
                with contextlib.suppress(FileNotFoundError):
                    (self.store.leases_dir / f"{lease_id}.lock").unlink()
            self.found(ProblemKind.STALE_LEASE, lease_id, "owner process is gone", self.repair)


def _index_pass(store: Store, checker: _Checker, hashed_sizes: dict[str, int]) -> _Checker:
    """Cross-checks leases and the index against the blobs now on disk (a fresh checker)."""
    result = _Checker(store, checker.repair, checker.ingest_max_age)
    transaction = store.catalog.write() if checker.repair else store.catalog.read()
    # The layout lock first (the order every writer uses): index.json and the records agree.
    with FileLock(store.blobs.locks_dir / "layout-index.lock"), transaction as conn:
        result.check_leases(conn)
        # Re-list after hashing: GC or an ingest may have changed the set meanwhile. Blobs
        # committed after the scan were verified by their ingest; count them as sound.
        current = {d: p for d, p in store.blobs.files() if d is not None}
        sound = {d: s for d, s in hashed_sizes.items() if d in current}
        for digest, path in current.items():
            if digest not in checker.hashed:
                with contextlib.suppress(FileNotFoundError):
                    sound[digest] = path.stat().st_size
        result.check_index(conn, sound)
        result.check_layout_index()
    return result


def check_store(store: Store, *, repair: bool, ingest_max_age: float) -> FsckReport:
    """Implements :meth:`Store.fsck`."""
    checker = _Checker(store, repair, ingest_max_age)
    for message in store.catalog.integrity_problems():
        checker.found(ProblemKind.INDEX_CORRUPT, "index.db", message)
    checker.check_ingests()
    checker.check_unpacked()
    sound = checker.check_blob_files()
    first = _index_pass(store, checker, sound)
    problems = first.report.problems
    if problems and not repair:
        # A read-only pass can catch another process between two steps (a lease closed after
        # our snapshot, a blob indexed just after it). Real problems persist: keep those.
        second = _index_pass(store, checker, sound)
        persisting = {(p.kind, p.subject) for p in second.report.problems}
        problems = [p for p in problems if (p.kind, p.subject) in persisting]
    checker.report.problems.extend(problems)
    checker.report.unreferenced_blobs = first.report.unreferenced_blobs
    return checker.report
