"""Ingest throughput: a 256 MiB blob through ``Store.ingest`` against plain write + hashlib.

Both sides write 1 MiB chunks to a file on the same filesystem, hash while writing, fsync and
rename into place; the store additionally verifies size and digest, drops write bits, fsyncs
the directories and updates its SQLite index. Run after a release build:

    python -m pytest benches/bench_store.py --benchmark-only
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from ocistore.digest import digest_bytes
from ocistore.store import Store

SIZE = 256 * 1024 * 1024
CHUNK = 1024 * 1024


@pytest.fixture(scope="module")
def payload() -> tuple[bytes, str]:
    data = os.urandom(SIZE)
    return data, digest_bytes(data)


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(
        tempfile.mkdtemp(prefix="ocistore-bench-", dir=os.environ.get("TMPDIR", "/var/tmp"))
    )
    yield path
    shutil.rmtree(path, ignore_errors=True)


def fresh(workdir: Path) -> Path:
    """An empty directory for one round (a committed blob would make the next ingest a no-op)."""
    target = workdir / "round"
    if target.exists():
        for path in target.rglob("*"):
            if path.is_file():
                path.chmod(0o644)
        shutil.rmtree(target)
    target.mkdir()
    return target


def store_ingest(root: Path, data: bytes, digest: str) -> None:
    store = Store(root)
    view = memoryview(data)
    with store.ingest(digest, len(data)) as ingest:
        for start in range(0, len(data), CHUNK):
            ingest.write(view[start : start + CHUNK])
        ingest.commit()
    store.close()


def plain_write_hashlib(root: Path, data: bytes, digest: str) -> None:
    view = memoryview(data)
    hasher = hashlib.sha256()
    partial = root / "partial"
    with partial.open("wb", buffering=0) as out:
        for start in range(0, len(data), CHUNK):
            chunk = view[start : start + CHUNK]
            out.write(chunk)
            hasher.update(chunk)
        os.fsync(out.fileno())
    if "sha256:" + hasher.hexdigest() != digest:
        raise AssertionError("digest mismatch")
    os.rename(partial, root / digest.split(":")[1])


@pytest.mark.benchmark(group="ingest 256 MiB")
@pytest.mark.parametrize(
    "implementation", [store_ingest, plain_write_hashlib], ids=["store.ingest", "write+hashlib"]
)
def test_ingest_throughput(
    benchmark: BenchmarkFixture,
    payload: tuple[bytes, str],
    workdir: Path,
    implementation: object,
) -> None:
    data, digest = payload

    def setup() -> tuple[tuple[Path, bytes, str], dict[str, object]]:
        return (fresh(workdir), data, digest), {}

    benchmark.pedantic(implementation, setup=setup, rounds=5, iterations=1)  # type: ignore[arg-type]
    benchmark.extra_info["MiB/s"] = round(SIZE / (1 << 20) / benchmark.stats.stats.mean, 1)
