"""Image records, resolve/touch/remove/pin, blob references and KEP-2535 pull records."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ocistore.errors import (
    BlobNotFoundError,
    ImageNotFoundError,
    InvalidReferenceError,
    StoreError,
)
from ocistore.store import PullCredential, PullCredentialKind, Store, catalog
from ocistore.store.catalog import SCHEMA_VERSION
from ocistore.testing.imagebuild import BuiltImage, build_image, build_index


def test_record_image_normalises_and_sizes(store: Store, small_image: BuiltImage) -> None:
    record = small_image.write_to_store(store, "nginx:1.25")
    assert record.reference == "docker.io/library/nginx:1.25"
    assert record.repository == "docker.io/library/nginx"
    assert record.tag == "1.25"
    assert record.digest == small_image.digest
    assert record.config_digest == small_image.config_digest
    assert record.platform == "linux/amd64"
    assert record.media_type == "application/vnd.oci.image.manifest.v1+json"
    expected = len(small_image.manifest) + len(small_image.config)
    expected += sum(layer.size for layer in small_image.layers)
    assert record.size == expected
    assert record.source == "build"
    assert not record.pinned
    assert store.images() == [record]
    assert store.image("docker.io/library/nginx:1.25") == record


def test_untagged_reference_gets_latest(store: Store, small_image: BuiltImage) -> None:
    record = small_image.write_to_store(store, "example.com/team/app")
    assert record.reference == "example.com/team/app:latest"


def test_resolve_by_tag_digest_and_bare_digest(store: Store, small_image: BuiltImage) -> None:
    small_image.write_to_store(store, "example.com/app:v1")
    assert store.resolve("example.com/app:v1") == small_image.digest
    assert store.resolve(f"example.com/app@{small_image.digest}") == small_image.digest
    assert store.resolve(small_image.digest) == small_image.digest
    with pytest.raises(ImageNotFoundError):
        store.resolve("example.com/app:v2")
    with pytest.raises(ImageNotFoundError):
        store.resolve(f"example.com/other@{small_image.digest}")
    with pytest.raises(InvalidReferenceError):
        store.resolve("Not A Reference")
    assert store.find_image("example.com/app:v2") is None


def test_tag_and_wrong_digest_is_not_found(store: Store, small_image: BuiltImage) -> None:
    small_image.write_to_store(store, "example.com/app:v1")
    wrong = "sha256:" + "0" * 64
    assert store.find_image(f"example.com/app:v1@{wrong}") is None


def test_manifest_and_config_read_back(store: Store, small_image: BuiltImage) -> None:
    small_image.write_to_store(store, "example.com/app:v1")
    manifest = store.manifest("example.com/app:v1")
    assert [layer.digest for layer in manifest.layers] == [
        layer.digest for layer in small_image.layers
    ]
    assert store.manifest(small_image.digest) == manifest
    config = store.config("example.com/app:v1")
    assert list(config.diff_ids) == small_image.diff_ids


def test_touch_updates_last_used(store: Store, small_image: BuiltImage) -> None:
    record = small_image.write_to_store(store, "example.com/app:v1")
    later = record.last_used + timedelta(hours=3)
    store.touch("example.com/app:v1", when=later)
    assert store.image("example.com/app:v1").last_used == later
    store.touch("example.com/app:v1")
    assert store.image("example.com/app:v1").last_used > record.last_used


def test_remove_and_pin(store: Store, small_image: BuiltImage) -> None:
    small_image.write_to_store(store, "example.com/app:v1")
    small_image.write_to_store(store, "example.com/app:v2")
    store.pin("example.com/app:v1")
    assert store.image("example.com/app:v1").pinned
    # Re-recording keeps the pin.
    small_image.write_to_store(store, "example.com/app:v1")
    assert store.image("example.com/app:v1").pinned
    store.remove("example.com/app:v2")
    assert [r.reference for r in store.images()] == ["example.com/app:v1"]
    with pytest.raises(ImageNotFoundError):
        store.remove("example.com/app:v2")
    store.pin("example.com/app:v1", False)
    assert not store.image("example.com/app:v1").pinned


def test_record_image_requires_every_blob(store: Store, small_image: BuiltImage) -> None:
    store.put_blob(small_image.manifest)
    store.put_blob(small_image.config)
    with pytest.raises(BlobNotFoundError):
        store.record_image("example.com/app:v1", manifest_digest=small_image.digest)
    assert store.images() == []


def test_blob_references_are_recorded(store: Store, small_image: BuiltImage) -> None:
    small_image.write_to_store(store, "example.com/app:v1")
    info = store.blob_info(small_image.layers[0].digest)
    assert info.referenced_by == (small_image.digest,)
    assert info.media_type == small_image.layers[0].media_type


def test_index_records_platform_and_index_digest(store: Store) -> None:
    amd = build_image([{"a": b"amd64"}], platform="linux/amd64")
    arm = build_image([{"a": b"arm64"}], platform="linux/arm64/v8")
    index = build_index([amd, arm])
    record = index.write_to_store(store, "example.com/multi:1", platform="linux/arm64/v8")
    assert record.digest == arm.digest
    assert record.index_digest == index.digest
    assert record.platform == "linux/arm64/v8"
    assert store.resolve(f"example.com/multi@{index.digest}") == arm.digest


def test_nameless_image_is_known_by_digest(store: Store, small_image: BuiltImage) -> None:
    for media_type, data in small_image.blobs().values():
        store.put_blob(data, media_type=media_type)
    record = store.record_image(small_image.digest, manifest_digest=small_image.digest)
    assert record.reference == small_image.digest and record.repository == ""
    assert store.image(small_image.digest) == record


def test_pull_records_merge_and_never_hold_secrets(store: Store, small_image: BuiltImage) -> None:
    record = small_image.write_to_store(store, "example.com/app:v1")
    secret = PullCredential.secret(
        namespace="default", name="regcred", uid="uid-1", credential_hash="ab" * 32
    )
    store.record_pull(record.digest, "example.com/app", secret)
    sa = PullCredential.service_account(namespace="default", name="builder", uid="uid-2")
    store.record_pull(record.digest, "example.com/app", [sa, secret])
    pulled = store.pull_record(record.digest)
    assert pulled is not None
    assert set(pulled.credentials["example.com/app"]) == {secret, sa}
    assert not pulled.node_pods_accessible("example.com/app")
    store.record_pull(record.digest, "app", PullCredential.node())
    pulled = store.pull_record(record.digest)
    assert pulled is not None and pulled.node_pods_accessible("app")
    with pytest.raises(ValueError, match="hash"):
        store.record_pull(
            record.digest,
            "app",
            PullCredential.secret(
                namespace="n", name="s", uid="u", credential_hash="hunter2-password"
            ),
        )
    raw = (store.root / "index.db").read_bytes()
    assert b"hunter2" not in raw


def test_preloaded_marker_is_exclusive(store: Store) -> None:
    store.record_pull("sha256:" + "1" * 64, "app", PullCredential.preloaded())
    kinds = [c.kind for c in store.pull_records()[0].credentials["app"]]
    assert kinds == [PullCredentialKind.PRELOADED]
    store.record_pull("sha256:" + "1" * 64, "app", PullCredential.node())
    kinds = [c.kind for c in store.pull_records()[0].credentials["app"]]
    assert kinds == [PullCredentialKind.NODE]
    store.record_pull("sha256:" + "1" * 64, "app", PullCredential.preloaded())
    kinds = [c.kind for c in store.pull_records()[0].credentials["app"]]
    assert kinds == [PullCredentialKind.NODE]


def test_prune_pull_records_of_unknown_images(store: Store, small_image: BuiltImage) -> None:
    record = small_image.write_to_store(store, "example.com/app:v1", source="pull")
    gone = "sha256:" + "2" * 64
    store.record_pull(record.digest, "example.com/app", PullCredential.node())
    store.record_pull(gone, "example.com/old", PullCredential.node())
    assert store.prune_pull_records(datetime.now(UTC) - timedelta(hours=1)) == []
    assert store.prune_pull_records(datetime.now(UTC) + timedelta(seconds=1)) == [gone]
    assert [r.image_ref for r in store.pull_records()] == [record.digest]


def test_record_image_with_credential_hash(store: Store, small_image: BuiltImage) -> None:
    for media_type, data in small_image.blobs().values():
        store.put_blob(data, media_type=media_type)
    store.record_image(
        "example.com/app:v1", manifest_digest=small_image.digest, credential_hash="cd" * 32
    )
    pulled = store.pull_record(small_image.digest)
    assert pulled is not None
    (cred,) = pulled.credentials["example.com/app"]
    assert cred.credential_hash == "cd" * 32


def test_index_is_wal_and_versioned(store: Store) -> None:
    conn = sqlite3.connect(store.root / "index.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_newer_schema_is_refused(store: Store) -> None:
    conn = sqlite3.connect(store.root / "index.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        Store(store.root)


def test_a_second_store_object_sees_the_same_records(store: Store, small_image: BuiltImage) -> None:
    small_image.write_to_store(store, "example.com/app:v1")
    assert [r.reference for r in Store(store.root).images()] == ["example.com/app:v1"]


def test_opening_a_store_takes_no_write_lock(store: Store, small_image: BuiltImage) -> None:
    """A re-pull opens the store while another process writes (a long GC): it must not wait."""
    small_image.write_to_store(store, "example.com/app:v1")
    writer = sqlite3.connect(store.root / "index.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # holds the write lock, as a writing process does
    opened: list[Store] = []
    try:
        thread = threading.Thread(target=lambda: opened.append(Store(store.root)), daemon=True)
        thread.start()
        thread.join(60)  # a write transaction would wait for the busy timeout (120 s)
        assert opened, "Store() waited for another process's write lock"
        assert [r.reference for r in opened[0].images()] == ["example.com/app:v1"]
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_threads_of_one_process_take_turns_to_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers in one process queue on the catalogue's own lock, not on SQLite's busy handler
    (which sleeps 1, 2, 5 ms ... between polls): with no busy wait at all, none is refused."""
    monkeypatch.setattr(catalog, "_BUSY_TIMEOUT_MS", 0)  # SQLite would refuse at once
    store = Store(tmp_path / "store")
    digests = [f"sha256:{n:064x}" for n in range(8 * 25)]
    failures: list[BaseException] = []
    start = threading.Barrier(8)

    def writer(mine: list[str]) -> None:
        start.wait()
        try:
            for digest in mine:
                with store.catalog.write() as conn:
                    conn.execute(
                        "INSERT INTO blobs (digest, size, created) VALUES (?, 1, 0)", (digest,)
                    )
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=writer, args=(digests[n::8],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with store.catalog.read() as conn:
        assert conn.execute("SELECT count(*) FROM blobs").fetchone()[0] == len(digests)


@pytest.mark.parametrize("held", ["registry", "writer"])
def test_a_child_forked_while_a_writer_lock_is_held_can_write(tmp_path: Path, held: str) -> None:
    """A fork while another thread holds the process's writer lock (or the lock that hands them
    out) must not leave the child waiting on a lock no thread of its own will ever release."""
    store = Store(tmp_path / "store")
    lock = catalog._WRITERS_LOCK if held == "registry" else catalog._writer_lock(store.catalog.path)
    with lock:
        pid = os.fork()
        if pid == 0:  # the child: write within 10 s or die by the alarm
            code = 1
            try:
                signal.alarm(10)
                with Store(tmp_path / "store").catalog.write() as conn:
                    conn.execute("INSERT INTO blobs (digest, size, created) VALUES ('c', 1, 0)")
                code = 0
            finally:
                os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with store.catalog.read() as conn:
        assert conn.execute("SELECT count(*) FROM blobs").fetchone()[0] == 1
