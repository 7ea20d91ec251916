"""Large blobs in parallel Range requests against the real registry (behind the fault proxy)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from regfixtures.proxy import Fault, FaultProxy
from regfixtures.registry import registry_requests
from regfixtures.setups import FAST_RETRY, Registries, make_setup, unique_repository

from ocistore.digest import digest_file
from ocistore.errors import DigestMismatchError, RegistryError, RegistryUnavailableError
from ocistore.registry.options import RegistryOptions
from ocistore.registry.ranges import ParallelFetch
from ocistore.store import Store
from ocistore.testing.imagebuild import build_image
from ocistore.transfer.pull import pull
from ocistore.transfer.push import push

CHUNK = 256 * 1024
BIG = 5 * CHUNK - 30_000  # a tar of five ranges, the last one short
PARALLEL = ParallelFetch(chunk_size=CHUNK, max_per_layer=3, slow_below=None)  # from the start


def options(parallel: ParallelFetch = PARALLEL) -> RegistryOptions:
    return RegistryOptions(plain_http=True, retry=FAST_RETRY, parallel=parallel)


def seed(registries: Registries, tmp_path: Path, big: bytes) -> tuple[str, str, int]:
    """Push an image whose first layer is ``big`` stored as is; returns repository, digest, size."""
    setup = make_setup(registries, "plain")
    image = build_image([{"big.bin": big}, {"small": b"s"}], compression="none")
    repository = unique_repository("ranges")
    source = Store(tmp_path / "seed")
    image.write_to_store(source, f"{setup.host}/{repository}:v1")
    push(f"{setup.host}/{repository}:v1", store=source, options=options())
    layer = image.layers[0]
    return repository, layer.digest, layer.size


def blob_gets(proxy: FaultProxy, digest: str) -> list[tuple[str | None, int | None]]:
    return [(s.headers.get("range"), s.status) for s in proxy.requests("GET", f"/blobs/{digest}")]


def test_a_large_blob_is_assembled_from_bounded_ranges_and_verified(
    registries: Registries, proxy: FaultProxy, tmp_path: Path
) -> None:
    repository, digest, size = seed(registries, tmp_path, os.urandom(BIG))
    logged_before = len(registry_requests(registries.plain))
    store = Store(tmp_path / "store")
    pulled = pull(f"{proxy.host}/{repository}:v1", store=store, options=options())
    seen = blob_gets(proxy, digest)
    expected = {f"bytes={a}-{min(a + CHUNK, size) - 1}" for a in range(0, size, CHUNK)}
    assert len(expected) == 5
    assert sorted(r for r, _ in seen if r) == sorted(expected)
    assert len(seen) == 5 and all(status == 206 for _, status in seen)
    logged = [p for m, p in registry_requests(registries.plain)[logged_before:] if m == "GET"]
    assert sum(1 for p in logged if p.endswith(f"/blobs/{digest}")) == 5
    assert digest_file(store.blob_path(digest)) == digest
    assert pulled.bytes_downloaded >= size


def test_a_small_blob_or_one_stream_setting_sends_no_range(
    registries: Registries, proxy: FaultProxy, tmp_path: Path
) -> None:
    repository, digest, _ = seed(registries, tmp_path, os.urandom(BIG))
    store = Store(tmp_path / "store")
    pull(
        f"{proxy.host}/{repository}:v1",
        store=store,
        options=options(ParallelFetch(chunk_size=CHUNK, max_per_layer=1)),
    )
    assert blob_gets(proxy, digest) == [(None, 200)]
    proxy.reset()
    store = Store(tmp_path / "store2")
    pull(
        f"{proxy.host}/{repository}:v1",
        store=store,
        options=options(ParallelFetch(chunk_size=BIG, max_per_layer=4, slow_below=None)),
    )
    assert blob_gets(proxy, digest) == [(None, 200)]  # under two chunks


def test_a_fast_stream_stays_one_stream_and_a_slow_one_goes_on_in_ranges(
    registries: Registries, proxy: FaultProxy, tmp_path: Path
) -> None:
    repository, digest, size = seed(registries, tmp_path, os.urandom(BIG))
    adaptive = ParallelFetch(chunk_size=CHUNK, max_per_layer=3, slow_below=4_000_000)
    pull(f"{proxy.host}/{repository}:v1", store=Store(tmp_path / "fast"), options=options(adaptive))
    # The first chunk alone decides; fast, so the rest comes as one more stream.
    assert blob_gets(proxy, digest) == [(f"bytes=0-{CHUNK - 1}", 206), (f"bytes={CHUNK}-", 206)]
    proxy.reset()
    # About 0.8 MB/s: the first chunk is slow, so the rest comes in parallel ranges.
    proxy.add(Fault(path=f"/blobs/{digest}", trickle=(16 * 1024, 0.02), times=None))
    store = Store(tmp_path / "slow")
    pull(f"{proxy.host}/{repository}:v1", store=store, options=options(adaptive))
    seen = blob_gets(proxy, digest)
    assert seen[0] == (f"bytes=0-{CHUNK - 1}", 206)
    expected = {f"bytes={a}-{min(a + CHUNK, size) - 1}" for a in range(CHUNK, size, CHUNK)}
    assert sorted(r for r, _ in seen[1:] if r) == sorted(expected)
    assert len(seen) == 5  # no byte asked for twice
    assert digest_file(store.blob_path(digest)) == digest


def test_parallel_ranges_stream_into_the_unpack_and_check_the_diff_id(
    registries: Registries, proxy: FaultProxy, tmp_path: Path
) -> None:
    big = os.urandom(BIG)
    repository, digest, _ = seed(registries, tmp_path, big)
    store = Store(tmp_path / "store")
    rootfs = tmp_path / "rootfs"
    pull(f"{proxy.host}/{repository}:v1", store=store, options=options(), unpack=rootfs)
    assert (rootfs / "big.bin").read_bytes() == big
    assert (rootfs / "small").read_bytes() == b"s"
    assert len(blob_gets(proxy, digest)) == 5


@pytest.mark.parametrize("times", [1, None])
def test_a_registry_that_ignores_range_is_read_as_one_stream(
    registries: Registries, proxy: FaultProxy, tmp_path: Path, times: int | None
) -> None:
    repository, digest, _ = seed(registries, tmp_path, os.urandom(BIG))
    proxy.add(Fault(path=f"/blobs/{digest}", header=("range", "^bytes=0-"), ignore_range=True))
    if times is None:  # every request: no Range ever honoured
        proxy.add(Fault(path=f"/blobs/{digest}", ignore_range=True, times=None))
    store = Store(tmp_path / "store")
    pull(f"{proxy.host}/{repository}:v1", store=store, options=options())
    seen = blob_gets(proxy, digest)
    assert ("bytes=0-262143", 200) in seen
    # At most the ranges already in flight, then one plain stream of the whole blob.
    assert seen[-1] == (None, 200)
    assert len(seen) <= 1 + PARALLEL.max_per_layer
    assert digest_file(store.blob_path(digest)) == digest


def test_a_range_with_wrong_bytes_fails_the_digest_and_stores_nothing(
    registries: Registries, proxy: FaultProxy, tmp_path: Path
) -> None:
    repository, digest, _ = seed(registries, tmp_path, os.urandom(BIG))
    proxy.add(
        Fault(path=f"/blobs/{digest}", header=("range", f"^bytes={2 * CHUNK}-"), corrupt_at=9)
    )
    store = Store(tmp_path / "store")
    with pytest.raises(DigestMismatchError):
        pull(f"{proxy.host}/{repository}:v1", store=store, options=options())
    assert not store.has_blob(digest)
    assert not any(digest.split(":")[1] in p.name for p in store.root.joinpath("ingest").iterdir())
    assert store.images() == []


def test_a_range_answered_for_other_bytes_is_a_registry_error(
    registries: Registries, proxy: FaultProxy, tmp_path: Path
) -> None:
    repository, digest, _ = seed(registries, tmp_path, os.urandom(BIG))
    proxy.add(Fault(path=f"/blobs/{digest}", header=("range", f"^bytes={CHUNK}-"), range_shift=7))
    store = Store(tmp_path / "store")
    with pytest.raises(RegistryError, match="Content-Range"):
        pull(f"{proxy.host}/{repository}:v1", store=store, options=options())
    assert not store.has_blob(digest)
    assert store.images() == []


def test_an_interrupted_parallel_download_resumes_from_its_verified_prefix(
    registries: Registries, proxy: FaultProxy, tmp_path: Path
) -> None:
    repository, digest, size = seed(registries, tmp_path, os.urandom(BIG))
    # Every range after the second one breaks off mid-way: the pull gives up after its retries.
    proxy.add(
        Fault(
            path=f"/blobs/{digest}",
            header=("range", f"^bytes=(?!0-|{CHUNK}-)"),
            truncate_after=1000,
            times=None,
        )
    )
    store = Store(tmp_path / "store")
    name = f"{proxy.host}/{repository}:v1"
    with pytest.raises(RegistryUnavailableError):
        pull(name, store=store, options=options())
    partial = store.root / "ingest" / f"{digest.replace(':', '-')}.partial"
    assert partial.stat().st_size == 2 * CHUNK  # the in-order prefix, nothing beyond
    proxy.reset()
    pull(name, store=store, options=options())
    starts = sorted(int(r.split("=")[1].split("-")[0]) for r, _ in blob_gets(proxy, digest) if r)
    assert starts == list(range(2 * CHUNK, size, CHUNK))
    assert digest_file(store.blob_path(digest)) == digest


PULL = (
    "import sys, ocistore\n"
    "from ocistore.registry.ranges import ParallelFetch\n"
    "options = ocistore.RegistryOptions(plain_http=True,\n"
    f"    parallel=ParallelFetch(chunk_size={CHUNK}, max_per_layer=3, slow_below=None))\n"
    "ocistore.pull(sys.argv[2], store=ocistore.Store(sys.argv[1]), options=options)\n"
)


def test_two_processes_pulling_in_ranges_fetch_the_blob_once(
    registries: Registries, proxy: FaultProxy, tmp_path: Path
) -> None:
    repository, digest, _ = seed(registries, tmp_path, os.urandom(BIG))
    proxy.add(Fault(path=f"/blobs/{digest}", trickle=(32 * 1024, 0.01), times=None))
    store_root = tmp_path / "store"
    Store(store_root)
    name = f"{proxy.host}/{repository}:v1"
    children = [
        subprocess.Popen([sys.executable, "-c", PULL, str(store_root), name]) for _ in range(2)
    ]
    assert [child.wait(timeout=120) for child in children] == [0, 0]
    assert len(blob_gets(proxy, digest)) == 5  # one process downloaded, the other waited
    store = Store(store_root)
    assert digest_file(store.blob_path(digest)) == digest
    assert store.fsck().ok


@pytest.mark.parametrize(("per_layer", "ranged"), [("3", True), ("1", False)])
def test_the_command_line_settings_reach_the_download(
    registries: Registries, proxy: FaultProxy, tmp_path: Path, per_layer: str, ranged: bool
) -> None:
    repository, digest, _ = seed(registries, tmp_path, os.urandom(BIG))
    proxy.add(Fault(path=f"/blobs/{digest}", trickle=(16 * 1024, 0.02), times=None))  # slow
    subprocess.run(
        [
            *(sys.executable, "-m", "ocistore", "--store", str(tmp_path / "store"), "-q"),
            *("pull", "--plain-http", f"{proxy.host}/{repository}:v1"),
            *("--max-concurrent-downloads-per-layer", per_layer),
            *("--concurrent-layer-fetch-buffer", str(CHUNK)),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    ranges = [r for r, _ in blob_gets(proxy, digest) if r]
    assert len(ranges) >= (2 if ranged else 0) and (bool(ranges) is ranged)
    assert digest_file(Store(tmp_path / "store").blob_path(digest)) == digest
