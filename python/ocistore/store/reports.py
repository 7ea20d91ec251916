"""What ``Store.fsck`` and ``Store.gc`` report (apart from the records: a pull never needs them)."""

from __future__ import annotations

import enum

from ocistore._valueclass import field, valueclass

__all__ = ["FsckProblem", "FsckReport", "GcReport", "ProblemKind"]


class ProblemKind(enum.StrEnum):
    """What fsck can find wrong with a store."""

    CORRUPT_BLOB = "corrupt-blob"
    """A blob's bytes do not hash to its name."""
    STRAY_FILE = "stray-file"
    """A file under ``blobs/`` that is not a well-named blob."""
    UNINDEXED_BLOB = "unindexed-blob"
    """A verified blob the index does not know (crash between rename and index update)."""
    MISSING_BLOB = "missing-blob"
    """The index lists a blob that is not on disk."""
    SIZE_MISMATCH = "size-mismatch"
    """The index records a different size than the blob has."""
    WRITABLE_BLOB = "writable-blob"
    """A committed blob has write permission bits."""
    DANGLING_REFERENCE = "dangling-reference"
    """An image or manifest points at content that is missing."""
    LEFTOVER_INGEST = "leftover-ingest"
    """A partial download no process is writing that cannot be resumed: older than the
    ingest age limit, or not named by a digest."""
    LEFTOVER_UNPACK = "leftover-unpack"
    """A half-built root filesystem no process is writing."""
    STALE_LEASE = "stale-lease"
    """A lease whose owning process is gone."""
    STALE_LAYOUT_INDEX = "stale-layout-index"
    """The root ``index.json`` does not list exactly the recorded images."""
    INDEX_CORRUPT = "index-corrupt"
    """SQLite's integrity check failed."""


@valueclass
class FsckProblem:
    """One thing fsck found, and whether ``repair=True`` fixed it."""

    kind: ProblemKind
    subject: str
    detail: str
    repaired: bool = False


@valueclass(frozen=False)
class FsckReport:
    """The result of :meth:`Store.fsck`."""

    problems: list[FsckProblem] = field(default_factory=list)
    blobs_checked: int = 0
    bytes_checked: int = 0
    unreferenced_blobs: int = 0
    """Blobs no image references (not a problem: ``gc`` reclaims them)."""
    resumable_ingests: list[str] = field(default_factory=list)
    """Partial downloads a later pull continues (not a problem: an interrupted pull leaves
    them on purpose; ``gc`` removes them once older than its ``ingest_max_age``)."""

    @property
    def ok(self) -> bool:
        """True when nothing is wrong (or every problem found was repaired)."""
        return all(p.repaired for p in self.problems)

    @property
    def unrepaired(self) -> list[FsckProblem]:
        """Problems still present."""
        return [p for p in self.problems if not p.repaired]


@valueclass(frozen=False)
class GcReport:
    """The result of :meth:`Store.gc` (with ``dry_run`` nothing was deleted)."""

    dry_run: bool
    removed_blobs: list[str] = field(default_factory=list)
    removed_unpacked: list[str] = field(default_factory=list)
    removed_ingests: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    kept_locked: list[str] = field(default_factory=list)
    """Unreferenced blobs kept because an ingest in progress holds their lock."""
