"""Several processes storing the same and different images into one store at once."""

from __future__ import annotations

import collections
import subprocess
import sys
from pathlib import Path

from ocistore.digest import digest_file
from ocistore.store import Store

WORKER = Path(__file__).with_name("store_worker.py")


def run_pullers(root: Path, marker: Path, seeds_per_process: list[list[int]]) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), "pull", str(root), str(marker), *map(str, seeds)]
        )
        for seeds in seeds_per_process
    ]
    (root / "go").touch()
    codes = [p.wait(timeout=120) for p in procs]
    assert codes == [0] * len(procs)


def check_consistent(store: Store) -> None:
    for path in (store.root / "blobs" / "sha256").iterdir():
        assert digest_file(path) == f"sha256:{path.name}"
    report = store.fsck()
    assert report.ok and report.problems == [], report.problems


def test_eight_processes_same_image_write_each_blob_once(tmp_path: Path) -> None:
    root = tmp_path / "store"
    Store(root).close()
    marker = tmp_path / "writes.log"
    run_pullers(root, marker, [[1]] * 8)
    writes = collections.Counter(marker.read_text().split())
    store = Store(root)
    assert len(writes) == 4  # manifest, config, two layers
    assert set(writes.values()) == {1}, writes
    assert set(writes) == {f"sha256:{p.name}" for p in (root / "blobs" / "sha256").iterdir()}
    assert [r.reference for r in store.images()] == ["example.com/app:s1"]
    check_consistent(store)


def test_eight_processes_different_images_sharing_a_layer(tmp_path: Path) -> None:
    root = tmp_path / "store"
    Store(root).close()
    marker = tmp_path / "writes.log"
    # Every process stores two images; the base layer is shared by all of them.
    run_pullers(root, marker, [[k, (k + 1) % 8] for k in range(8)])
    writes = collections.Counter(marker.read_text().split())
    assert set(writes.values()) == {1}, writes
    store = Store(root)
    assert len(writes) == 1 + 8 * 3  # shared base + (manifest, config, app layer) per image
    assert sorted(r.reference for r in store.images()) == sorted(
        f"example.com/app:s{k}" for k in range(8)
    )
    assert store.gc().removed_blobs == []
    check_consistent(store)
