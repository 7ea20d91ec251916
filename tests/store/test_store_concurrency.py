"""Several processes storing the same and different images into one store at once."""

from __future__ import annotations

import collections
import subprocess
import sys
import time
from pathlib import Path

from store_worker import image_for

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


def test_fsck_while_processes_write_reports_no_false_problems(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = Store(root)
    marker = tmp_path / "writes.log"
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), "pull", str(root), str(marker), str(k), str(k + 4)]
        )
        for k in range(4)
    ]
    (root / "go").touch()
    reports = []
    while any(p.poll() is None for p in procs):
        reports.append(store.fsck())
    assert [p.wait(timeout=120) for p in procs] == [0] * 4
    reports.append(store.fsck())
    # In-flight ingests hold their locks, so fsck must not call their partials leftovers, nor
    # a blob between its rename and its index update an orphan.
    assert all(r.problems == [] for r in reports), [r.problems for r in reports if r.problems]
    assert len(store.images()) == 8
    print(f"fsck passes during the writes: {len(reports) - 1}")


def test_processes_creating_a_fresh_store_at_once(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    script = (
        "import sys\n"
        "from ocistore.store import Store\n"
        "s = Store(sys.argv[1])\n"
        "s.put_blob(b'shared')\n"
        "s.put_blob(sys.argv[2].encode())\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(root), f"own-{k}"]) for k in range(6)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * 6
    store = Store(root)
    assert store.fsck().problems == []
    assert len(list((root / "blobs" / "sha256").iterdir())) == 7


def test_gc_running_during_pulls_never_breaks_them(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = Store(root)
    # Content left over from an earlier image that is no longer named: GC wants to delete it,
    # while the pullers below reuse part of it (the shared base layer).
    marker = tmp_path / "writes.log"
    run_pullers(root, marker, [[100]])
    store.remove("example.com/app:s100")
    (root / "go").unlink()
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), "pull", str(root), str(marker), str(k), str(k + 4)]
        )
        for k in range(4)
    ]
    (root / "go").touch()
    removed: set[str] = set()
    while any(p.poll() is None for p in procs):
        removed.update(store.gc().removed_blobs)
        time.sleep(0.01)  # pacing only: leave the index to the pullers now and then
    assert [p.wait(timeout=120) for p in procs] == [0] * 4
    removed.update(store.gc().removed_blobs)
    old = image_for(100, big=1 << 20)
    assert old.layers[1].digest in removed  # GC did run and deleted the old image's own layer
    assert len(store.images()) == 8
    for record in store.images():
        manifest = store.manifest(record.digest)
        assert all(store.has_blob(d.digest) for d in (manifest.config, *manifest.layers))
    check_consistent(store)
