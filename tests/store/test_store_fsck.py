"""fsck finds corrupt blobs, orphans, dangling references, leftovers; repair makes it clean."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from ocistore.digest import digest_bytes
from ocistore.store import ProblemKind, Store
from ocistore.testing.imagebuild import BuiltImage


def kinds(report: object) -> set[ProblemKind]:
    return {p.kind for p in report.problems}  # type: ignore[attr-defined]


def repaired_to_clean(store: Store) -> None:
    repaired = store.fsck(repair=True)
    assert repaired.ok, repaired.unrepaired
    after = store.fsck()
    assert after.ok and after.problems == [], after.problems


def test_a_fresh_store_is_clean(store: Store, small_image: BuiltImage) -> None:
    small_image.write_to_store(store, "example.com/app:v1")
    report = store.fsck()
    assert report.ok and report.problems == []
    assert report.blobs_checked == len(small_image.blobs())
    assert report.bytes_checked == sum(len(d) for _, d in small_image.blobs().values())


def test_corrupt_layer_is_found_and_its_image_pruned(store: Store, small_image: BuiltImage) -> None:
    small_image.write_to_store(store, "example.com/app:v1")
    layer = small_image.layers[1].digest
    path = store.blob_path(layer)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[20] ^= 1
    path.write_bytes(bytes(data))
    os.chmod(path, 0o444)
    report = store.fsck()
    assert not report.ok
    corrupt = [p for p in report.problems if p.kind is ProblemKind.CORRUPT_BLOB]
    assert [p.subject for p in corrupt] == [layer]
    assert store.images(), "a read-only fsck changes nothing"
    repaired_to_clean(store)
    assert not store.has_blob(layer)
    assert store.images() == []  # the image needs a re-pull now


def test_unindexed_blob_is_adopted(store: Store) -> None:
    data = b"renamed into place, then the process died"
    digest = digest_bytes(data)
    path = store.blob_path(digest)
    path.write_bytes(data)
    os.chmod(path, 0o444)
    report = store.fsck()
    assert kinds(report) == {ProblemKind.UNINDEXED_BLOB}
    repaired_to_clean(store)
    assert store.blob_info(digest).size == len(data)


def test_the_next_image_recorded_indexes_its_unindexed_blobs(
    store: Store, small_image: BuiltImage
) -> None:
    """A crash or a full disk between a blob's rename and its index row leaves a verified blob
    the index lacks: the next pull that uses it writes the row, no fsck --repair needed."""
    small_image.write_to_store(store, "example.com/app:v1")
    lost = [small_image.layers[0].digest, small_image.config_digest, small_image.digest]
    with store.catalog.write() as conn:
        conn.executemany("DELETE FROM blobs WHERE digest = ?", [(d,) for d in lost])
    assert kinds(store.fsck()) == {ProblemKind.UNINDEXED_BLOB}
    store.record_image("example.com/app:v2", manifest_digest=small_image.digest)  # as a re-pull
    report = store.fsck()
    assert report.ok and report.problems == [], report.problems
    for digest in lost:
        assert store.blob_info(digest).size == store.blob_path(digest).stat().st_size


def test_missing_blob_and_dangling_image(store: Store, small_image: BuiltImage) -> None:
    small_image.write_to_store(store, "example.com/app:v1")
    store.blob_path(small_image.config_digest).unlink()
    report = store.fsck()
    assert kinds(report) == {ProblemKind.MISSING_BLOB, ProblemKind.DANGLING_REFERENCE}
    dangling = [p for p in report.problems if p.kind is ProblemKind.DANGLING_REFERENCE]
    assert any(p.subject == "example.com/app:v1" for p in dangling)
    repaired_to_clean(store)
    assert store.images() == []


def test_stray_and_writable_files(store: Store) -> None:
    digest = store.put_blob(b"fine")
    os.chmod(store.blob_path(digest), 0o644)
    (store.root / "blobs" / "sha256" / "not-a-digest").write_text("junk")
    (store.root / "blobs" / "md5").mkdir()
    report = store.fsck()
    assert kinds(report) == {ProblemKind.WRITABLE_BLOB, ProblemKind.STRAY_FILE}
    assert len([p for p in report.problems if p.kind is ProblemKind.STRAY_FILE]) == 2
    repaired_to_clean(store)
    assert store.read_blob(digest) == b"fine"


def test_partial_downloads_are_resumable_until_too_old(store: Store) -> None:
    data = os.urandom(5000)
    digest = digest_bytes(data)
    with store.ingest(digest, len(data)) as ingest:
        ingest.write(data[:10])
        assert store.fsck().problems == []  # locked: a writer is busy with it
    fresh = store.fsck()
    assert fresh.ok and fresh.problems == []  # an interrupted pull continues it later
    assert fresh.resumable_ingests == [ingest.path.name]
    old = time.time() - 2 * 24 * 3600
    os.utime(ingest.path, (old, old))
    report = store.fsck()
    assert kinds(report) == {ProblemKind.LEFTOVER_INGEST} and report.resumable_ingests == []
    repaired_to_clean(store)
    assert not ingest.path.exists()


def test_unknown_file_in_ingest_is_a_leftover(store: Store) -> None:
    (store.root / "ingest" / "not-a-digest.partial").write_bytes(b"x")
    assert kinds(store.fsck()) == {ProblemKind.LEFTOVER_INGEST}
    repaired_to_clean(store)


def test_leftover_unpack_and_stale_lease(store: Store) -> None:
    (store.unpacked_dir / (".tmp-sha256-" + "a" * 64 + ".abc")).mkdir()
    script = (
        "import os, signal, sys\n"
        "from ocistore.store import Store\n"
        "s = Store(sys.argv[1]); s.lease(); os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert subprocess.run([sys.executable, "-c", script, str(store.root)]).returncode == -9
    report = store.fsck()
    assert kinds(report) == {ProblemKind.LEFTOVER_UNPACK, ProblemKind.STALE_LEASE}
    repaired_to_clean(store)
    assert list(store.unpacked_dir.iterdir()) == []


def test_unreferenced_blobs_are_counted_not_problems(store: Store) -> None:
    store.put_blob(b"loose")
    report = store.fsck()
    assert report.ok and report.unreferenced_blobs == 1


def test_interrupted_root_index_rewrite_is_cleaned(store: Store) -> None:
    (store.root / ".index.json.abc123").write_text("half")
    report = store.fsck()
    assert [(p.kind, p.subject) for p in report.problems] == [
        (ProblemKind.STRAY_FILE, ".index.json.abc123")
    ]
    repaired_to_clean(store)
    assert not (store.root / ".index.json.abc123").exists()
