"""Ingest: hash while writing, verify, publish atomically, resume; locks between writers."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from pathlib import Path

import pytest

from ocistore.errors import (
    BlobNotFoundError,
    DigestMismatchError,
    InvalidDigestError,
    SizeMismatchError,
    StoreError,
)
from ocistore.store import LockTimeoutError, Store


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


PAYLOAD = os.urandom(300_000)
DIGEST = sha(PAYLOAD)


def visible_blobs(store: Store) -> list[Path]:
    return sorted(p for p in (store.root / "blobs").rglob("*") if p.is_file())


def test_ingest_happy_path_publishes_a_read_only_verified_blob(store: Store) -> None:
    with store.ingest(DIGEST, len(PAYLOAD), media_type="application/octet-stream") as ingest:
        assert not ingest.done
        assert ingest.offset == 0
        for start in range(0, len(PAYLOAD), 65536):
            ingest.write(PAYLOAD[start : start + 65536])
        path = ingest.commit()
        assert ingest.done
    assert Path(path) == store.blob_path(DIGEST)
    assert store.has_blob(DIGEST)
    assert store.read_blob(DIGEST) == PAYLOAD
    with store.open_blob(DIGEST) as handle:
        assert handle.read(10) == PAYLOAD[:10]
    mode = store.blob_path(DIGEST).stat().st_mode
    assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert store.blob_info(DIGEST).media_type == "application/octet-stream"
    assert store.blob_info(DIGEST).size == len(PAYLOAD)
    assert list((store.root / "ingest").iterdir()) == []


def test_second_ingest_of_a_committed_blob_is_done_at_once(store: Store) -> None:
    assert store.put_blob(PAYLOAD) == DIGEST
    with store.ingest(DIGEST, len(PAYLOAD)) as ingest:
        assert ingest.done
        with pytest.raises(StoreError):
            ingest.write(b"x")
        assert ingest.commit() == str(store.blob_path(DIGEST))


def test_digest_mismatch_drops_the_partial_and_publishes_nothing(store: Store) -> None:
    wrong = bytearray(PAYLOAD)
    wrong[1000] ^= 0xFF
    with store.ingest(DIGEST, len(PAYLOAD)) as ingest:
        ingest.write(bytes(wrong))
        with pytest.raises(DigestMismatchError) as info:
            ingest.commit()
    assert info.value.expected == DIGEST
    assert info.value.actual == sha(bytes(wrong))
    assert not store.has_blob(DIGEST)
    assert visible_blobs(store) == []
    assert not ingest.path.exists()
    with pytest.raises(BlobNotFoundError):
        store.open_blob(DIGEST)


def test_short_content_is_a_size_mismatch(store: Store) -> None:
    with store.ingest(DIGEST, len(PAYLOAD)) as ingest:
        ingest.write(PAYLOAD[:-1])
        with pytest.raises(SizeMismatchError):
            ingest.commit()
    assert visible_blobs(store) == [] and not ingest.path.exists()


def test_bytes_past_the_declared_size_are_refused_at_once(store: Store) -> None:
    with store.ingest(DIGEST, 10) as ingest:
        ingest.write(PAYLOAD[:8])
        with pytest.raises(SizeMismatchError):
            ingest.write(PAYLOAD[8:16])
    assert visible_blobs(store) == [] and not ingest.path.exists()


def test_unknown_size_is_checked_by_digest_alone(store: Store) -> None:
    with store.ingest(DIGEST, None) as ingest:
        ingest.write(PAYLOAD)
        ingest.commit()
    assert store.read_blob(DIGEST) == PAYLOAD


def test_resume_continues_from_the_partial_offset(store: Store) -> None:
    with store.ingest(DIGEST, len(PAYLOAD)) as ingest:
        ingest.write(PAYLOAD[:123_456])
    # Leaving without commit keeps the partial for a later HTTP Range request.
    assert ingest.path.stat().st_size == 123_456
    assert not store.has_blob(DIGEST)
    with store.ingest(DIGEST, len(PAYLOAD)) as resumed:
        assert resumed.offset == 123_456
        resumed.write(PAYLOAD[resumed.offset :])
        resumed.commit()
    assert store.read_blob(DIGEST) == PAYLOAD


def test_resume_over_a_corrupt_partial_fails_verification(store: Store) -> None:
    with store.ingest(DIGEST, len(PAYLOAD)) as ingest:
        ingest.write(b"\x00" * 1000)  # bytes that are not the blob's prefix
    with store.ingest(DIGEST, len(PAYLOAD)) as resumed:
        resumed.write(PAYLOAD[resumed.offset :])
        with pytest.raises(DigestMismatchError):
            resumed.commit()
    # A retry starts from scratch and succeeds.
    with store.ingest(DIGEST, len(PAYLOAD)) as retry:
        assert retry.offset == 0
        retry.write(PAYLOAD)
        retry.commit()
    assert store.read_blob(DIGEST) == PAYLOAD


def test_truncate_restarts_when_the_server_ignores_range(store: Store) -> None:
    with store.ingest(DIGEST, len(PAYLOAD)) as ingest:
        ingest.write(PAYLOAD[:5000])
    with store.ingest(DIGEST, len(PAYLOAD)) as again:
        assert again.offset == 5000
        again.truncate()
        assert again.offset == 0
        again.write(PAYLOAD)
        again.commit()
    assert store.read_blob(DIGEST) == PAYLOAD


def test_a_partial_longer_than_the_blob_is_discarded(store: Store) -> None:
    with store.ingest(DIGEST, None) as ingest:
        ingest.write(PAYLOAD + b"extra")
    with store.ingest(DIGEST, len(PAYLOAD)) as again:
        assert again.offset == 0


@pytest.mark.parametrize(
    "bad",
    [
        "sha256:../../../../etc/passwd",
        "sha256:" + "A" * 64,
        "md5:" + "0" * 32,
        "sha256:" + "0" * 63,
        "../sha256:" + "0" * 64,
        "",
    ],
)
def test_malformed_digests_never_become_paths(store: Store, bad: str) -> None:
    with pytest.raises(InvalidDigestError):
        store.ingest(bad, 1)
    with pytest.raises(InvalidDigestError):
        store.blob_path(bad)
    with pytest.raises(InvalidDigestError):
        store.has_blob(bad)


def test_read_blob_detects_corruption_on_disk(store: Store) -> None:
    store.put_blob(PAYLOAD)
    path = store.blob_path(DIGEST)
    os.chmod(path, 0o644)
    path.write_bytes(b"tampered")
    with pytest.raises(DigestMismatchError):
        store.read_blob(DIGEST)


def test_read_blob_enforces_a_size_limit(store: Store) -> None:
    store.put_blob(PAYLOAD)
    with pytest.raises(StoreError):
        store.read_blob(DIGEST, max_size=1000)


def test_writing_outside_the_context_is_an_error(store: Store) -> None:
    ingest = store.ingest(DIGEST, len(PAYLOAD))
    with pytest.raises(StoreError):
        ingest.write(PAYLOAD)


def test_a_second_writer_waits_for_the_first_then_sees_done(store: Store) -> None:
    first_has_lock = threading.Event()
    release_first = threading.Event()
    seen: dict[str, object] = {}

    def first() -> None:
        with store.ingest(DIGEST, len(PAYLOAD)) as ingest:
            first_has_lock.set()
            ingest.write(PAYLOAD)
            release_first.wait(10)
            ingest.commit()

    def second() -> None:
        other = Store(store.root)
        with other.ingest(DIGEST, len(PAYLOAD)) as ingest:
            seen["done"] = ingest.done
            seen["committed_when_entered"] = other.has_blob(DIGEST)

    t1 = threading.Thread(target=first)
    t1.start()
    assert first_has_lock.wait(10)
    t2 = threading.Thread(target=second)
    t2.start()
    t2.join(0.3)
    # The second writer cannot get in while the first holds the digest lock.
    assert t2.is_alive() and "done" not in seen
    release_first.set()
    t1.join(10)
    t2.join(10)
    assert seen == {"done": True, "committed_when_entered": True}


def test_lock_timeout_raises_a_typed_error(store: Store) -> None:
    holder = store.ingest(DIGEST, len(PAYLOAD))
    with holder, pytest.raises(LockTimeoutError):
        store.ingest(DIGEST, len(PAYLOAD), lock_timeout=0.2).__enter__()
    # The lock is free again.
    with store.ingest(DIGEST, len(PAYLOAD), lock_timeout=1) as ingest:
        assert not ingest.done


def test_different_digests_do_not_block_each_other(store: Store) -> None:
    other = b"another blob"
    with store.ingest(DIGEST, len(PAYLOAD)) as a, store.ingest(sha(other), len(other)) as b:
        b.write(other)
        b.commit()
        a.write(PAYLOAD)
        a.commit()
    assert store.has_blob(DIGEST) and store.has_blob(sha(other))


def test_memoryview_and_bytearray_are_accepted(store: Store) -> None:
    with store.ingest(DIGEST, len(PAYLOAD)) as ingest:
        ingest.write(memoryview(PAYLOAD)[:1000])
        ingest.write(bytearray(PAYLOAD[1000:]))
        ingest.commit()
    assert store.read_blob(DIGEST) == PAYLOAD


def test_store_root_defaults_to_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCISTORE_ROOT", str(tmp_path / "envroot"))
    assert Store().root == tmp_path / "envroot"
    assert (tmp_path / "envroot" / "index.db").is_file()
