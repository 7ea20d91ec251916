"""GC: unreferenced blobs go; image content, pinned blobs, leases and live ingests stay."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from ocistore.digest import digest_bytes
from ocistore.store import Store
from ocistore.testing.imagebuild import BuiltImage, build_image


def all_blobs(store: Store) -> set[str]:
    return {f"sha256:{p.name}" for p in (store.root / "blobs" / "sha256").iterdir()}


def test_dry_run_reports_without_deleting(store: Store, small_image: BuiltImage) -> None:
    small_image.write_to_store(store, "example.com/app:v1")
    loose = store.put_blob(b"nobody references me")
    before = all_blobs(store)
    report = store.gc(dry_run=True)
    assert report.dry_run
    assert report.removed_blobs == [loose]
    assert report.bytes_freed == len(b"nobody references me")
    assert all_blobs(store) == before


def test_gc_removes_only_unreferenced_blobs(store: Store, small_image: BuiltImage) -> None:
    small_image.write_to_store(store, "example.com/app:v1")
    loose = store.put_blob(b"loose")
    report = store.gc()
    assert report.removed_blobs == [loose]
    assert all_blobs(store) == set(small_image.blobs())
    assert store.fsck().ok


def test_removing_the_last_name_frees_the_content(store: Store, small_image: BuiltImage) -> None:
    other = build_image([small_image_layer_spec(), {"extra": b"x"}])
    small_image.write_to_store(store, "example.com/app:v1")
    other.write_to_store(store, "example.com/other:v1")
    store.remove("example.com/app:v1")
    report = store.gc()
    shared = set(small_image.blobs()) & set(other.blobs())
    assert shared, "the images should share their base layer"
    assert set(report.removed_blobs) == set(small_image.blobs()) - shared
    assert all_blobs(store) == set(other.blobs())
    store.remove("example.com/other:v1")
    store.gc()
    assert all_blobs(store) == set()
    assert store.fsck().ok


def small_image_layer_spec() -> dict[str, bytes]:
    return {"etc/os-release": b"ID=test\n", "bin/sh": b"#!fake\n"}


def test_pinned_blob_is_kept(store: Store) -> None:
    digest = store.put_blob(b"pinned content")
    store.pin_blob(digest)
    assert store.gc().removed_blobs == []
    store.pin_blob(digest, False)
    assert store.gc().removed_blobs == [digest]


def test_pinned_image_content_is_kept(store: Store, small_image: BuiltImage) -> None:
    small_image.write_to_store(store, "example.com/app:v1")
    store.pin("example.com/app:v1")
    assert store.gc().removed_blobs == []
    assert all_blobs(store) == set(small_image.blobs())


def test_live_lease_protects_blobs_until_it_ends(store: Store) -> None:
    with store.lease():
        digest = store.put_blob(b"downloaded, not yet recorded")
        other_process_view = Store(store.root)
        assert other_process_view.gc().removed_blobs == []
    assert Store(store.root).gc().removed_blobs == [digest]


def test_lease_of_a_killed_process_expires(store: Store, tmp_path: Path) -> None:
    script = (
        "import os, signal, sys\n"
        "from ocistore.store import Store\n"
        "s = Store(sys.argv[1])\n"
        "lease = s.lease()\n"
        "s.put_blob(b'orphaned by a crash')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(store.root)], check=False)
    assert proc.returncode == -9
    report = store.gc()
    assert report.removed_blobs == [digest_bytes(b"orphaned by a crash")]
    assert list(store.leases_dir.iterdir()) == []
    fsck = store.fsck()
    assert fsck.ok and fsck.problems == []


def test_has_blob_inside_a_lease_protects_the_blob(store: Store) -> None:
    digest = store.put_blob(b"already here from an earlier pull")
    with store.lease():
        assert store.has_blob(digest)  # a puller decides to reuse it...
        assert Store(store.root).gc().removed_blobs == []  # ...so GC elsewhere must keep it
    assert Store(store.root).gc().removed_blobs == [digest]


def test_in_progress_ingest_is_never_touched(store: Store) -> None:
    data = os.urandom(50_000)
    digest = digest_bytes(data)
    # A blob committed but not yet indexed/leased, while its ingest still holds the lock.
    loose = store.put_blob(b"loose and locked")
    with store.ingest(digest, len(data)) as ingest, store.ingest(loose, None):
        ingest.write(data[:1000])
        report = store.gc(ingest_max_age=0)
        assert report.removed_ingests == []
        assert report.kept_locked == [loose]
        assert ingest.path.exists() and store.has_blob(loose)
        ingest.write(data[1000:])
        ingest.commit()
    assert store.read_blob(digest) == data


def test_stale_partials_are_removed_by_age(store: Store) -> None:
    data = os.urandom(10_000)
    digest = digest_bytes(data)
    with store.ingest(digest, len(data)) as ingest:
        ingest.write(data[:100])
    assert store.gc().removed_ingests == []  # younger than a day: kept for resuming
    old = time.time() - 2 * 24 * 3600
    os.utime(ingest.path, (old, old))
    report = store.gc()
    assert report.removed_ingests == [ingest.path.name]
    assert not ingest.path.exists()


def test_unpacked_trees_of_gone_images_are_removed(store: Store, small_image: BuiltImage) -> None:
    record = small_image.write_to_store(store, "example.com/app:v1")
    assert record.chain_id is not None
    live = store.unpacked_dir / record.chain_id.replace(":", "-")
    dead = store.unpacked_dir / ("sha256-" + "f" * 64)
    for tree in (live, dead):
        (tree / "sub").mkdir(parents=True)
        (tree / "sub" / "file").write_text("x")
        os.chmod(tree / "sub", 0o555)  # read-only directories must not stop GC
    report = store.gc()
    assert report.removed_unpacked == [dead.name]
    assert live.is_dir() and not dead.exists()
