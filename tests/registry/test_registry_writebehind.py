"""Write-behind (``registry/writebehind.py``): a large body is received while the last piece is
written, in bounded memory, and a write that fails leaves no blob, against the real registry.

The resume rules with write-behind on (a cut body resumes at exactly the bytes written; a sink
that fails while the link is stalled ends the download at once) are in test_registry_bodies.py,
whose blob is large enough to go through it."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from collections.abc import Callable

import pytest
from regfixtures.setups import ListSink, Registries, make_setup, unique_repository

from ocistore import OciStoreError, RegistryOptions, Store, pull, push
from ocistore.registry import writebehind
from ocistore.registry.bodies import BUFFER_SIZE
from ocistore.testing.imagebuild import build_image

SIZE = 12 * BUFFER_SIZE + 4321


@pytest.fixture(scope="module")
def seeded(registries: Registries) -> tuple[str, bytes, str]:
    data = os.urandom(SIZE)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    repository = unique_repository("writebehind")
    with make_setup(registries, "plain").client() as client:
        client.upload_blob(repository, digest, io.BytesIO(data), len(data))
    return repository, data, digest


def _wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not check():
        time.sleep(0.01)


def test_receiving_goes_on_while_a_write_waits_and_holds_at_most_depth_pieces(
    registries: Registries, seeded: tuple[str, bytes, str]
) -> None:
    repository, data, digest = seeded
    release = threading.Event()

    class SlowFirstWrite(ListSink):
        def write(self, piece: bytes | memoryview) -> None:
            if not self.data:
                release.wait(timeout=60.0)
            super().write(piece)

    sink = SlowFirstWrite()
    handed_on: list[int] = []
    outcome: list[BaseException] = []

    def download() -> None:
        with make_setup(registries, "plain").client() as client:
            try:
                client.download_blob(repository, digest, SIZE, sink, progress=handed_on.append)
            except BaseException as error:
                outcome.append(error)

    thread = threading.Thread(target=download, daemon=True)
    thread.start()
    try:
        # The first write waits: pieces are still received meanwhile, up to one per buffer.
        _wait_until(lambda: len(handed_on) >= writebehind.DEPTH)
        time.sleep(0.5)
        assert len(handed_on) == writebehind.DEPTH, "receiving did not go on, or went on unbounded"
        assert not sink.data
    finally:
        release.set()
        thread.join(timeout=60.0)
    assert not outcome
    assert bytes(sink.data) == data
    assert sum(handed_on) == SIZE


def test_a_write_that_fails_behind_the_receive_leaves_no_blob_and_the_store_intact(
    registries: Registries, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from reliability.smallfs import small_fs

    big = os.urandom(6 * BUFFER_SIZE)
    image = build_image([{"small.txt": b"small"}, {"big.bin": big}], compression="none")
    reference = f"{registries.plain.host}/{unique_repository('writebehind-full')}:v1"
    seed = Store(tmp_path_factory.mktemp("writebehind-seed"))
    image.write_to_store(seed, reference)
    options = RegistryOptions(plain_http=True)
    push(reference, store=seed, options=options)
    big_layer = max(image.layers, key=lambda layer: layer.size)
    with small_fs("3m") as fs:
        store = Store(fs.path / "store")
        with pytest.raises(OciStoreError, match="No space left on device"):
            # One download at a time: the big layer (first) is the one that fills the disk.
            pull(reference, store=store, options=options, max_concurrent_downloads=1)
        assert not store.has_blob(big_layer.digest)
        # the failed blob's partial is deleted; the layer due after it never started
        assert list((fs.path / "store" / "ingest").iterdir()) == []
        report = store.fsck()
        assert report.ok and report.problems == [], report.problems
        assert report.resumable_ingests == []
        fs.resize("64m")
        pulled = pull(reference, store=store, options=options)
        assert store.has_blob(big_layer.digest)
        assert pulled.layers_downloaded >= 1


def test_pieces_skipped_before_a_resume_offset_give_their_buffers_back() -> None:
    """A server that ignores ``Range`` sends the bytes before the resume offset again: those
    pieces are skipped, not written, and must not keep their buffers (else the receiver waits
    forever for a free one once ``depth`` of them were skipped)."""
    sink = ListSink()
    finished = threading.Event()

    def skip_many_then_write() -> None:
        with writebehind.WriteBehind(sink, depth=2) as writes:
            for _ in range(10):
                writes.release(writes.buffer())
            piece = writes.buffer()
            piece[:3] = b"abc"
            writes.write(piece[:3])
        finished.set()

    thread = threading.Thread(target=skip_many_then_write, daemon=True)
    thread.start()
    thread.join(timeout=30.0)
    assert finished.is_set(), "skipped pieces kept their buffers: the receiver waits forever"
    assert bytes(sink.data) == b"abc"
