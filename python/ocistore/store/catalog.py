"""The store's catalogue: SQLite in WAL mode (image names, refs, leases), shared by processes.

Blobs stay immutable files; everything mutable (image names, last-used times, references
between blobs, pull records, leases) lives here. Every write runs in one ``BEGIN IMMEDIATE``
transaction so concurrent writers queue on SQLite's lock instead of failing half-way; a process
killed mid-transaction leaves nothing behind (the WAL rolls it back). The threads of one process
queue on a lock of their own first: SQLite's busy handler would make them sleep 1, 2, 5, 10 ms
... and poll, which a pull's layer threads hit at every blob they commit.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocistore.errors import StoreError, StoreWriteError
from ocistore.store.records import BlobInfo, ImageRecord

if TYPE_CHECKING:
    from ocistore.store.pullcredentials import PullCredential, PullRecord

__all__ = ["SCHEMA_VERSION", "Catalog"]

# Waiting this long for another process's transaction is normal (a GC sweep can take a while).
_BUSY_TIMEOUT_MS = 120_000

# One writer lock per database file and process (a child after fork starts with none held);
# a thread gives up on it as it would on SQLite's lock.
_WRITER_WAIT_SECONDS = _BUSY_TIMEOUT_MS / 1000
_WRITERS: dict[Path, threading.Lock] = {}
_WRITERS_LOCK = threading.Lock()


def _forget_writers_after_fork() -> None:
    # A fork while another thread held a lock would leave it held forever in the child.
    global _WRITERS_LOCK
    _WRITERS_LOCK = threading.Lock()
    _WRITERS.clear()


os.register_at_fork(after_in_child=_forget_writers_after_fork)


def _writer_lock(path: Path) -> threading.Lock:
    with _WRITERS_LOCK:
        return _WRITERS.setdefault(path, threading.Lock())


# Each entry migrates the schema from version N to N+1; the list index is N.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE blobs (
        digest      TEXT PRIMARY KEY,
        size        INTEGER NOT NULL,
        media_type  TEXT,
        created     REAL NOT NULL,
        pinned      INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE blob_refs (
        parent  TEXT NOT NULL,
        child   TEXT NOT NULL,
        kind    TEXT NOT NULL,
        PRIMARY KEY (parent, child)
    ) WITHOUT ROWID;
    CREATE INDEX blob_refs_by_child ON blob_refs (child);
    CREATE TABLE images (
        reference     TEXT PRIMARY KEY,
        repository    TEXT NOT NULL,
        tag           TEXT,
        digest        TEXT NOT NULL,
        index_digest  TEXT,
        config_digest TEXT,
        platform      TEXT,
        media_type    TEXT NOT NULL,
        size          INTEGER NOT NULL,
        chain_id      TEXT,
        created       REAL NOT NULL,
        last_used     REAL NOT NULL,
        pinned        INTEGER NOT NULL DEFAULT 0,
        source        TEXT NOT NULL
    );
    CREATE INDEX images_by_digest ON images (digest);
    CREATE TABLE pull_credentials (
        image_ref       TEXT NOT NULL,
        image_name      TEXT NOT NULL,
        kind            TEXT NOT NULL,
        namespace       TEXT NOT NULL DEFAULT '',
        name            TEXT NOT NULL DEFAULT '',
        uid             TEXT NOT NULL DEFAULT '',
        credential_hash TEXT NOT NULL DEFAULT '',
        updated         REAL NOT NULL,
        PRIMARY KEY (image_ref, image_name, kind, namespace, name, uid, credential_hash)
    ) WITHOUT ROWID;
    CREATE TABLE leases (
        id       TEXT PRIMARY KEY,
        pid      INTEGER NOT NULL,
        created  REAL NOT NULL
    );
    CREATE TABLE lease_blobs (
        lease   TEXT NOT NULL REFERENCES leases (id) ON DELETE CASCADE,
        digest  TEXT NOT NULL,
        PRIMARY KEY (lease, digest)
    ) WITHOUT ROWID;
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)

_IMAGE_COLUMNS = (
    "reference, repository, tag, digest, index_digest, platform, media_type, size, created,"
    " last_used, pinned, source, config_digest, chain_id"
)


def _to_datetime(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _image_from_row(row: sqlite3.Row) -> ImageRecord:
    return ImageRecord(
        reference=row["reference"],
        repository=row["repository"],
        tag=row["tag"],
        digest=row["digest"],
        index_digest=row["index_digest"],
        platform=row["platform"],
        media_type=row["media_type"],
        size=row["size"],
        created=_to_datetime(row["created"]),
        last_used=_to_datetime(row["last_used"]),
        pinned=bool(row["pinned"]),
        source=row["source"],
        config_digest=row["config_digest"],
        chain_id=row["chain_id"],
    )


class Catalog:
    """The SQLite index of one store (``index.db`` under the root)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._migrate()

    # --- connections and transactions ---------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        # One connection per thread, and a fresh one after fork (SQLite forbids sharing).
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        try:
            conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store index {self.path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            self._set_wal(conn)
            # FULL: a committed transaction survives power loss, not only a killed process.
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            conn.close()
            self._raise_if_write_failure(exc)
            raise StoreError(f"cannot open the store index {self.path}: {exc}") from exc
        self._local.conn = conn
        self._local.pid = os.getpid()
        return conn

    @staticmethod
    def _set_wal(conn: sqlite3.Connection) -> None:
        # Switching to WAL needs a moment of exclusive access; another process opening the
        # fresh database at the same instant can make it fail with "locked" at once.
        for attempt in range(200):
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError:
                if attempt == 199:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        """Closes this thread's connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None

    @contextlib.contextmanager
    def write(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): commits on success, rolls back on error.

        ``durable=False`` is for rows that mean nothing after a power loss (leases: their
        owners are gone with it): the commit is atomic and at once visible to every process,
        but it skips the fsync, which is most of a small transaction's cost. The next durable
        commit makes it durable too.
        """
        conn = self._connection()
        if conn.in_transaction:  # nested use joins the outer transaction
            yield conn
            return
        writer = _writer_lock(self.path)
        if not writer.acquire(timeout=_WRITER_WAIT_SECONDS):
            raise StoreError("store index is unavailable: another thread holds its write lock")
        try:
            if not durable:
                conn.execute("PRAGMA synchronous = NORMAL")  # WAL: no fsync at commit
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"store index is unavailable: {exc}") from exc
            try:
                yield conn
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    self._raise_if_write_failure(exc)
                    raise StoreError(f"store index write failed: {exc}") from exc
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                self._raise_if_write_failure(exc)
                raise StoreError(f"store index commit failed: {exc}") from exc
        finally:
            writer.release()
            if not durable:
                conn.execute("PRAGMA synchronous = FULL")

    def _raise_if_write_failure(self, exc: sqlite3.Error) -> None:
        """SQLite's "disk is full" and I/O errors as the typed error a failed write is."""
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary result code
        failure = {sqlite3.SQLITE_FULL: errno.ENOSPC, sqlite3.SQLITE_IOERR: errno.EIO}.get(code)
        if failure == errno.EIO:
            # SQLite reports a full disk while growing its -wal/-shm files as an I/O error.
            with contextlib.suppress(OSError):
                fs = os.statvfs(self.path.parent)
                if fs.f_bavail == 0 or fs.f_favail == 0:
                    failure = errno.ENOSPC
        if failure is not None:
            raise StoreWriteError(failure, os.strerror(failure), str(self.path)) from exc

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: one consistent snapshot across several queries."""
        conn = self._connection()
        if conn.in_transaction:
            yield conn
            return
        try:
            conn.execute("BEGIN")
        except sqlite3.Error as exc:
            raise StoreError(f"store index is unavailable: {exc}") from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            raise StoreError(f"store index read failed: {exc}") from exc
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("COMMIT")

    def _migrate(self) -> None:
        try:
            current = self.schema_version()
        except sqlite3.Error as exc:
            self._raise_if_write_failure(exc)
            raise StoreError(f"cannot read the store index {self.path}: {exc}") from exc
        if current == SCHEMA_VERSION:
            return  # the common case: opening a store takes no write lock
        with self.write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"store index schema {version} is newer than this ocistore ({SCHEMA_VERSION})"
                )
            for step in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[step].split(";"):
                    if statement.strip():
                        conn.execute(statement)
            if version != SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def schema_version(self) -> int:
        """The schema version of the database file."""
        return int(self._connection().execute("PRAGMA user_version").fetchone()[0])

    def integrity_problems(self) -> list[str]:
        """SQLite's own integrity check (empty when the database is sound)."""
        rows = self._connection().execute("PRAGMA integrity_check").fetchall()
        messages = [str(r[0]) for r in rows]
        return [] if messages == ["ok"] else messages

    # --- blobs --------------------------------------------------------------------------

    def add_blob(self, digest: str, size: int, media_type: str | None) -> None:
        """Records a committed blob (keeps an existing row, filling in a missing media type)."""
        with self.write() as conn:
            self.index_blobs(conn, [(digest, size, media_type)])

    def index_blobs(
        self, conn: sqlite3.Connection, blobs: Iterable[tuple[str, int, str | None]]
    ) -> None:
        """Records committed ``(digest, size, media_type)`` blobs inside the caller's write
        transaction, as :meth:`add_blob` does for one."""
        now = time.time()
        conn.executemany(
            "INSERT INTO blobs (digest, size, media_type, created) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (digest) DO UPDATE SET size = excluded.size,"
            " media_type = coalesce(blobs.media_type, excluded.media_type)",
            [(digest, size, media_type, now) for digest, size, media_type in blobs],
        )

    def blob(self, digest: str) -> BlobInfo | None:
        """The metadata of one blob."""
        with self.read() as conn:
            row = conn.execute("SELECT * FROM blobs WHERE digest = ?", (digest,)).fetchone()
            if row is None:
                return None
            parents = conn.execute(
                "SELECT parent FROM blob_refs WHERE child = ? ORDER BY parent", (digest,)
            ).fetchall()
        return BlobInfo(
            digest=row["digest"],
            size=row["size"],
            media_type=row["media_type"],
            created=_to_datetime(row["created"]),
            pinned=bool(row["pinned"]),
            referenced_by=tuple(p[0] for p in parents),
        )

    def blob_sizes(self) -> dict[str, int]:
        """Every indexed blob and its size."""
        rows = self._connection().execute("SELECT digest, size FROM blobs").fetchall()
        return {r[0]: r[1] for r in rows}

    def remove_blob_rows(self, conn: sqlite3.Connection, digests: Iterable[str]) -> None:
        """Forgets blobs (inside the caller's write transaction), with their outgoing edges."""
        for digest in digests:
            conn.execute("DELETE FROM blobs WHERE digest = ?", (digest,))
            conn.execute("DELETE FROM blob_refs WHERE parent = ?", (digest,))

    def set_blob_pinned(self, digest: str, pinned: bool) -> bool:
        """Marks a blob as a GC root; False if the blob is unknown."""
        with self.write() as conn:
            cur = conn.execute(
                "UPDATE blobs SET pinned = ? WHERE digest = ?", (int(pinned), digest)
            )
            return cur.rowcount > 0

    def add_refs(
        self, conn: sqlite3.Connection, parent: str, children: Iterable[tuple[str, str]]
    ) -> None:
        """Records that ``parent`` references each ``(child, kind)``."""
        conn.executemany(
            "INSERT OR IGNORE INTO blob_refs (parent, child, kind) VALUES (?, ?, ?)",
            [(parent, child, kind) for child, kind in children],
        )

    def refs(self, conn: sqlite3.Connection) -> list[tuple[str, str]]:
        """Every ``(parent, child)`` edge."""
        return [(r[0], r[1]) for r in conn.execute("SELECT parent, child FROM blob_refs")]

    # --- images -------------------------------------------------------------------------

    def put_image(self, conn: sqlite3.Connection, record: ImageRecord) -> None:
        """Inserts or replaces an image record (inside the caller's write transaction)."""
        conn.execute(
            f"INSERT OR REPLACE INTO images ({_IMAGE_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.reference,
                record.repository,
                record.tag,
                record.digest,
                record.index_digest,
                record.platform,
                record.media_type,
                record.size,
                record.created.timestamp(),
                record.last_used.timestamp(),
                int(record.pinned),
                record.source,
                record.config_digest,
                record.chain_id,
            ),
        )

    def image(self, reference: str, conn: sqlite3.Connection | None = None) -> ImageRecord | None:
        """The record stored under a normalised reference string."""
        conn = conn or self._connection()
        row = conn.execute(
            f"SELECT {_IMAGE_COLUMNS} FROM images WHERE reference = ?", (reference,)
        ).fetchone()
        return None if row is None else _image_from_row(row)

    def images_by_digest(self, digest: str) -> list[ImageRecord]:
        """Records whose manifest or index digest is ``digest``."""
        rows = self._connection().execute(
            f"SELECT {_IMAGE_COLUMNS} FROM images WHERE digest = ? OR index_digest = ?"
            " ORDER BY reference",
            (digest, digest),
        )
        return [_image_from_row(r) for r in rows]

    def images(self, conn: sqlite3.Connection | None = None) -> list[ImageRecord]:
        """Every image record, sorted by reference."""
        conn = conn or self._connection()
        rows = conn.execute(f"SELECT {_IMAGE_COLUMNS} FROM images ORDER BY reference")
        return [_image_from_row(r) for r in rows]

    def touch_image(self, reference: str, when: float) -> bool:
        """Sets last-used; False if there is no such image."""
        with self.write() as conn:
            cur = conn.execute(
                "UPDATE images SET last_used = ? WHERE reference = ?", (when, reference)
            )
            return cur.rowcount > 0

    def set_image_pinned(self, reference: str, pinned: bool) -> bool:
        """Pins or unpins an image; False if there is no such image."""
        with self.write() as conn:
            cur = conn.execute(
                "UPDATE images SET pinned = ? WHERE reference = ?", (int(pinned), reference)
            )
            return cur.rowcount > 0

    def remove_image(self, conn: sqlite3.Connection, reference: str) -> bool:
        """Deletes an image record; False if there was none."""
        return conn.execute("DELETE FROM images WHERE reference = ?", (reference,)).rowcount > 0

    # --- pull records (KEP-2535) --------------------------------------------------------

    def add_pull_credentials(
        self, image_ref: str, image_name: str, credentials: Iterable[PullCredential]
    ) -> None:
        """Merges credentials into the pulled record of ``image_ref``."""
        from ocistore.store.pullcredentials import PullCredentialKind

        now = time.time()
        with self.write() as conn:
            for cred in credentials:
                if cred.kind is PullCredentialKind.PRELOADED:
                    # "preloaded" is exclusive of real credentials: only add it to a bare record.
                    exists = conn.execute(
                        "SELECT 1 FROM pull_credentials WHERE image_ref = ? AND image_name = ?"
                        " AND kind != ?",
                        (image_ref, image_name, PullCredentialKind.PRELOADED.value),
                    ).fetchone()
                    if exists:
                        continue
                else:
                    conn.execute(
                        "DELETE FROM pull_credentials WHERE image_ref = ? AND image_name = ?"
                        " AND kind = ?",
                        (image_ref, image_name, PullCredentialKind.PRELOADED.value),
                    )
                conn.execute(
                    "INSERT INTO pull_credentials (image_ref, image_name, kind, namespace, name,"
                    " uid, credential_hash, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT DO UPDATE SET updated = excluded.updated",
                    (
                        image_ref,
                        image_name,
                        cred.kind.value,
                        cred.namespace,
                        cred.name,
                        cred.uid,
                        cred.credential_hash,
                        now,
                    ),
                )
            conn.execute(
                "UPDATE pull_credentials SET updated = ? WHERE image_ref = ?", (now, image_ref)
            )

    def pull_records(self, image_ref: str | None = None) -> list[PullRecord]:
        """Pulled records, all or for one image."""
        from ocistore.store.pullcredentials import PullCredential, PullCredentialKind, PullRecord

        query = "SELECT * FROM pull_credentials"
        args: tuple[Any, ...] = ()
        if image_ref is not None:
            query += " WHERE image_ref = ?"
            args = (image_ref,)
        query += " ORDER BY image_ref, image_name, kind, namespace, name, uid, credential_hash"
        grouped: dict[str, tuple[float, dict[str, list[PullCredential]]]] = {}
        for row in self._connection().execute(query, args):
            updated, mapping = grouped.setdefault(row["image_ref"], (row["updated"], {}))
            mapping.setdefault(row["image_name"], []).append(
                PullCredential(
                    kind=PullCredentialKind(row["kind"]),
                    namespace=row["namespace"],
                    name=row["name"],
                    uid=row["uid"],
                    credential_hash=row["credential_hash"],
                )
            )
            grouped[row["image_ref"]] = (max(updated, row["updated"]), mapping)
        return [
            PullRecord(
                image_ref=ref,
                last_updated=_to_datetime(updated),
                credentials={name: tuple(creds) for name, creds in mapping.items()},
            )
            for ref, (updated, mapping) in grouped.items()
        ]

    def remove_pull_records(self, image_ref: str) -> int:
        """Deletes the pulled record of one image; returns the number of rows removed."""
        with self.write() as conn:
            cur = conn.execute("DELETE FROM pull_credentials WHERE image_ref = ?", (image_ref,))
            return cur.rowcount

    def prune_pull_records(self, keep: set[str], until: float) -> list[str]:
        """Drops records of images not in ``keep`` last updated before ``until``."""
        with self.write() as conn:
            rows = conn.execute(
                "SELECT image_ref, max(updated) FROM pull_credentials GROUP BY image_ref"
            ).fetchall()
            pruned = [r[0] for r in rows if r[0] not in keep and r[1] < until]
            for ref in pruned:
                conn.execute("DELETE FROM pull_credentials WHERE image_ref = ?", (ref,))
        return pruned

    # --- leases -------------------------------------------------------------------------

    def add_lease(self, lease_id: str) -> None:
        """Registers a lease owned by this process."""
        with self.write(durable=False) as conn:
            conn.execute(
                "INSERT INTO leases (id, pid, created) VALUES (?, ?, ?)",
                (lease_id, os.getpid(), time.time()),
            )

    def add_lease_blobs(self, lease_ids: Iterable[str], digest: str) -> None:
        """Protects a blob from GC for as long as the leases live (an ended one is skipped:
        another thread of the store may end its lease meanwhile)."""
        with self.write(durable=False) as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO lease_blobs (lease, digest)"
                " SELECT id, ? FROM leases WHERE id = ?",
                [(digest, lease_id) for lease_id in lease_ids],
            )

    def remove_lease(self, lease_id: str, conn: sqlite3.Connection | None = None) -> None:
        """Ends a lease (its blobs lose that protection)."""
        if conn is not None:
            conn.execute("DELETE FROM leases WHERE id = ?", (lease_id,))
            return
        with self.write(durable=False) as own:
            own.execute("DELETE FROM leases WHERE id = ?", (lease_id,))

    def leases(self, conn: sqlite3.Connection) -> dict[str, set[str]]:
        """Every lease and the blobs it protects."""
        result: dict[str, set[str]] = {r[0]: set() for r in conn.execute("SELECT id FROM leases")}
        for lease_id, digest in conn.execute("SELECT lease, digest FROM lease_blobs"):
            result.setdefault(lease_id, set()).add(digest)
        return result
