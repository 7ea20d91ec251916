"""Image garbage collection as kubelet's image GC manager does it: disk-usage thresholds, minimum
and maximum age, least recently used first, in-use and pinned images never removed."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ocistore._valueclass import field, valueclass
from ocistore.errors import OciStoreError

if TYPE_CHECKING:
    from ocistore.store import ImageRecord, Store

#: kubelet's ``imageGCHighThresholdPercent`` default.
DEFAULT_HIGH_THRESHOLD = 85
#: kubelet's ``imageGCLowThresholdPercent`` default.
DEFAULT_LOW_THRESHOLD = 80
#: kubelet's ``imageMinimumGCAge`` default (2 minutes).
DEFAULT_MIN_AGE = 120.0


class ImageGCError(OciStoreError):
    """Image GC could not free what the thresholds ask for (kubelet's FreeDiskSpaceFailed)."""


@valueclass
class ImageGCPolicy:
    """kubelet's image GC settings; ``max_age`` 0 disables age-based removal."""

    high_threshold_percent: int = DEFAULT_HIGH_THRESHOLD
    low_threshold_percent: int = DEFAULT_LOW_THRESHOLD
    min_age: float = DEFAULT_MIN_AGE
    max_age: float = 0.0

    def __post_init__(self) -> None:
        for name in ("high_threshold_percent", "low_threshold_percent"):
            value = getattr(self, name)
            if not 0 <= value <= 100:
                raise ValueError(f"{name} must be between 0 and 100, got {value}")
        if self.low_threshold_percent > self.high_threshold_percent:
            raise ValueError(
                f"low threshold {self.low_threshold_percent} is above high threshold "
                f"{self.high_threshold_percent}"
            )


@valueclass
class GcCandidate:
    """One image (all tags of one digest) as GC sees it."""

    digest: str
    references: tuple[str, ...]
    size: int
    last_used: float
    first_detected: float
    pinned: bool


@valueclass(frozen=False)
class ImageGCReport:
    """What an image GC pass removed (or, in a dry run, would remove) and why."""

    dry_run: bool
    usage_percent: int | None = None
    bytes_to_free: int = 0
    bytes_freed: int = 0
    removed: list[GcCandidate] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


DiskUsage = Callable[[], tuple[int, int]]


class ImageGCManager:
    """Removes unused images from a store when its filesystem passes the high threshold."""

    def __init__(
        self,
        store: Store,
        policy: ImageGCPolicy | None = None,
        *,
        wall_clock: Callable[[], float] = time.time,
        disk_usage: DiskUsage | None = None,
    ) -> None:
        self.store = store
        self.policy = policy or ImageGCPolicy()
        self._now = wall_clock
        self._disk_usage = disk_usage or self._filesystem_usage

    def _filesystem_usage(self) -> tuple[int, int]:
        usage = shutil.disk_usage(self.store.root)
        return usage.total, usage.free

    def candidates(self, in_use: Iterable[str] = ()) -> list[GcCandidate]:
        """Images that may be removed, in eviction order (LRU, then oldest detected)."""
        in_use_set = set(in_use)
        groups: dict[str, list[ImageRecord]] = {}
        for record in self.store.images():
            groups.setdefault(record.digest, []).append(record)
        result = []
        for digest, records in groups.items():
            references = tuple(sorted(r.reference for r in records))
            if digest in in_use_set or in_use_set.intersection(references):
                continue
            if any(r.pinned for r in records):
                continue
            result.append(
                GcCandidate(
                    digest=digest,
                    references=references,
                    size=max(r.size for r in records),
                    last_used=max(r.last_used.timestamp() for r in records),
                    first_detected=min(r.created.timestamp() for r in records),
                    pinned=False,
                )
            )
        result.sort(key=lambda c: (c.last_used, c.first_detected))
        return result

    def garbage_collect(
        self, in_use: Iterable[str] = (), *, dry_run: bool = False
    ) -> ImageGCReport:
        """One GC pass: images past ``max_age``, then LRU images until usage is below ``low``."""
        now = self._now()
        report = ImageGCReport(dry_run=dry_run)
        candidates = self.candidates(in_use)
        removed_digests: set[str] = set()

        if self.policy.max_age > 0:
            for candidate in candidates:
                if now - candidate.last_used > self.policy.max_age:
                    self._remove(candidate, "age", report)
                    removed_digests.add(candidate.digest)

        capacity, available = self._disk_usage()
        if capacity <= 0:
            raise ImageGCError(f"invalid capacity {capacity} on image filesystem")
        available = min(available, capacity)
        # A dry run pretends the age pass already freed its bytes.
        if dry_run:
            available = min(capacity, available + report.bytes_freed)
        report.usage_percent = 100 - int(available * 100 / capacity)
        if report.usage_percent >= self.policy.high_threshold_percent:
            amount = capacity * (100 - self.policy.low_threshold_percent) // 100 - available
            report.bytes_to_free = max(0, amount)
            freed = 0
            for candidate in candidates:
                if freed >= amount:
                    break
                if candidate.digest in removed_digests:
                    continue
                if candidate.last_used >= now:
                    continue
                if now - candidate.first_detected < self.policy.min_age:
                    continue
                if self._remove(candidate, "space", report):
                    freed += candidate.size
            if freed < amount:
                report.errors.append(
                    "Failed to garbage collect required amount of images. Attempted to free "
                    f"{amount} bytes, but only found {freed} bytes eligible to free."
                )
        if not dry_run and report.removed:
            self.store.gc()
        return report

    def _remove(self, candidate: GcCandidate, reason: str, report: ImageGCReport) -> bool:
        if not report.dry_run:
            try:
                for reference in candidate.references:
                    self.store.remove(reference)
            except OciStoreError as error:
                report.errors.append(f"removing {candidate.digest}: {error}")
                return False
        report.removed.append(candidate)
        report.reasons[candidate.digest] = reason
        report.bytes_freed += candidate.size
        return True
