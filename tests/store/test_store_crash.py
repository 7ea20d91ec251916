"""SIGKILL a writer at seeded random points of ingest and index updates.

After every kill: no visible blob has bytes that differ from its name, ``fsck`` is clean or
repairs to clean, and running the same work again completes (resuming partial downloads).
``OCISTORE_LONG=1`` raises the number of kill points from 50 to 400.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

from ocistore.digest import digest_file
from ocistore.store import ProblemKind, Store

WORKER = Path(__file__).with_name("store_worker.py")
KILLS = 400 if os.environ.get("OCISTORE_LONG") == "1" else 50


def run_worker(root: Path, seed: int, kill_at: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(WORKER), "crash", str(root), str(seed), str(kill_at)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_no_bad_blob_visible(root: Path) -> None:
    for algo in (root / "blobs").iterdir():
        for path in algo.iterdir():
            assert digest_file(path) == f"{algo.name}:{path.name}", f"bad blob visible: {path}"


def assert_images_complete(root: Path) -> None:
    """Every recorded image can be used: its manifest, config and layers are all present."""
    store = Store(root)
    for record in store.images():
        manifest = store.manifest(record.digest)
        for descriptor in (manifest.config, *manifest.layers):
            assert store.has_blob(descriptor.digest), f"{record.reference} lost {descriptor.digest}"
    store.close()


def test_sigkill_at_seeded_points_leaves_a_repairable_store(tmp_path: Path) -> None:
    root = tmp_path / "store"
    Store(root).close()
    probe = run_worker(tmp_path / "probe", 1, -1)
    assert probe.returncode == 0, probe.stderr
    operations = int(probe.stdout.split()[-1])
    assert operations > 50
    rng = random.Random(2535)
    kills = 0
    seed = 10
    repaired_kinds: set[ProblemKind] = set()
    while kills < KILLS:
        seed += 1
        kill_at = rng.randint(1, operations)
        killed = run_worker(root, seed, kill_at)
        if killed.returncode == 0:
            continue  # this run needed fewer operations than kill_at
        assert killed.returncode == -9, killed.stderr
        kills += 1
        assert_no_bad_blob_visible(root)
        assert_images_complete(root)
        scratch = tmp_path / f"copy-{kills}"
        shutil.copytree(root, scratch)
        copy = Store(scratch)
        report = copy.fsck()
        if not report.ok:
            repaired_kinds |= {p.kind for p in report.problems}
            assert copy.fsck(repair=True).ok
            after = copy.fsck()
            assert after.ok and after.problems == [], after.problems
        copy.close()
        shutil.rmtree(scratch)
        # The interrupted work completes when run again (partials are resumed).
        again = run_worker(root, seed, -1)
        assert again.returncode == 0, again.stderr
        assert_no_bad_blob_visible(root)
    store = Store(root)
    assert store.fsck(repair=True).ok
    final = store.fsck()
    assert final.ok and final.problems == [], final.problems
    assert len(store.images()) >= 2
    # Kill points must have hit the interesting windows, not only the quiet ones.
    assert repaired_kinds & {ProblemKind.LEFTOVER_INGEST, ProblemKind.STALE_LEASE}
    print(f"kill points tried: {kills}; problems repaired: {sorted(repaired_kinds)}")
