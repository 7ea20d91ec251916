"""kubelet's image GC policy on a real store: thresholds, ages, LRU order, in-use and pinned."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ocistore.manager import ImageGCManager, ImageGCPolicy
from ocistore.manager.imagegc import ImageGCError
from ocistore.store import Store
from ocistore.testing.imagebuild import build_image

NOW = 1_800_000_000.0


def _store_with_images(tmp_path: Path, ages: dict[str, tuple[float, float]]) -> Store:
    """Images named in ``ages`` with (created, last_used) seconds before NOW."""
    store = Store(tmp_path / "store")
    for number, (name, (created_ago, used_ago)) in enumerate(sorted(ages.items())):
        image = build_image([{f"file-{number}": f"payload {name}" * (number + 1)}])
        image.write_to_store(store, f"registry.test/{name}:v1")
        record = store.image(f"registry.test/{name}:v1")
        # Backdate the record the way a long-running node would have it.
        store.catalog.touch_image(record.reference, NOW - used_ago)
        with store.catalog.write() as conn:
            conn.execute(
                "UPDATE images SET created = ? WHERE reference = ?",
                (NOW - created_ago, record.reference),
            )
    return store


def _disk(capacity: int, available: int):  # type: ignore[no-untyped-def]
    return lambda: (capacity, available)


def _names(report_removed: list) -> list[str]:  # type: ignore[type-arg]
    return [c.references[0].split("/")[1].split(":")[0] for c in report_removed]


def test_defaults_are_kubelets() -> None:
    policy = ImageGCPolicy()
    assert (policy.high_threshold_percent, policy.low_threshold_percent) == (85, 80)
    assert policy.min_age == 120.0 and policy.max_age == 0.0


@pytest.mark.parametrize(("high", "low"), [(80, 85), (101, 50), (50, -1)])
def test_invalid_thresholds(high: int, low: int) -> None:
    with pytest.raises(ValueError):
        ImageGCPolicy(high_threshold_percent=high, low_threshold_percent=low)


def test_below_high_threshold_nothing_is_removed(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path, {"a": (3600, 3600), "b": (3600, 60)})
    gc = ImageGCManager(store, wall_clock=lambda: NOW, disk_usage=_disk(1000, 200))  # 80 %
    report = gc.garbage_collect()
    assert report.usage_percent == 80 and report.removed == []
    assert len(store.images()) == 2


def test_lru_first_until_below_low_threshold(tmp_path: Path) -> None:
    store = _store_with_images(
        tmp_path, {"old": (9000, 5000), "mid": (9000, 3000), "new": (9000, 1000)}
    )
    sizes = {r.reference: r.size for r in store.images()}
    old_size = sizes["registry.test/old:v1"]
    # 90 % used; getting down to 80 % needs exactly old's size freed.
    gc = ImageGCManager(store, wall_clock=lambda: NOW, disk_usage=_disk(10 * old_size, old_size))
    report = gc.garbage_collect(dry_run=True)
    assert _names(report.removed) == ["old"]
    assert len(store.images()) == 3  # dry run
    report = gc.garbage_collect()
    assert _names(report.removed) == ["old"] and report.reasons[report.removed[0].digest] == "space"
    assert sorted(r.reference for r in store.images()) == [
        "registry.test/mid:v1",
        "registry.test/new:v1",
    ]


def test_in_use_pinned_and_young_images_are_kept(tmp_path: Path) -> None:
    store = _store_with_images(
        tmp_path,
        {"used": (9000, 9000), "pinned": (9000, 9000), "young": (30, 9000), "free": (9000, 9000)},
    )
    store.pin("registry.test/pinned:v1")
    gc = ImageGCManager(store, wall_clock=lambda: NOW, disk_usage=_disk(10**9, 0))  # 100 %
    report = gc.garbage_collect(in_use={"registry.test/used:v1"})
    assert _names(report.removed) == ["free"]
    assert (
        report.errors
        and "Failed to garbage collect required amount of images" in (report.errors[0])
    )
    remaining = sorted(r.reference.split("/")[1] for r in store.images())
    assert remaining == ["pinned:v1", "used:v1", "young:v1"]


def test_max_age_removes_regardless_of_disk_usage(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path, {"stale": (90000, 86400 * 3), "recent": (90000, 60)})
    gc = ImageGCManager(
        store,
        ImageGCPolicy(max_age=86400.0),
        wall_clock=lambda: NOW,
        disk_usage=_disk(1000, 900),
    )
    report = gc.garbage_collect()
    assert _names(report.removed) == ["stale"] and list(report.reasons.values()) == ["age"]
    assert [r.reference for r in store.images()] == ["registry.test/recent:v1"]


def test_blobs_of_removed_images_are_deleted(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path, {"gone": (9000, 9000)})
    record = store.images()[0]
    manifest = store.manifest(record.reference)
    layer = manifest.layers[0].digest
    assert store.has_blob(layer)
    ImageGCManager(store, wall_clock=lambda: NOW, disk_usage=_disk(1000, 0)).garbage_collect()
    assert not store.has_blob(layer)
    assert store.fsck().ok


def test_zero_capacity_is_an_error(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path, {})
    with pytest.raises(ImageGCError, match="invalid capacity 0"):
        ImageGCManager(store, disk_usage=_disk(0, 0)).garbage_collect()


def test_real_filesystem_usage_is_read(tmp_path: Path) -> None:
    store = _store_with_images(tmp_path, {"a": (0, 0)})
    report = ImageGCManager(
        store, ImageGCPolicy(high_threshold_percent=100, low_threshold_percent=100)
    ).garbage_collect(dry_run=True)
    # The filesystem's own figures, read independently (other processes may write meanwhile).
    fs = os.statvfs(store.root)
    expected = 100 - int(fs.f_bavail * 100 / fs.f_blocks)
    assert report.usage_percent is not None and abs(report.usage_percent - expected) <= 1
