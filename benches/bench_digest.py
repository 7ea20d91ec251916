"""SHA-256 throughput: the Rust Digester against hashlib, alone and from two threads at once.

Run with ``pytest benches --benchmark-only`` after a release build
(``maturin develop --release``); the debug build is many times slower.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from ocistore import Digester

SIZE = 64 * 1024 * 1024


@pytest.fixture(scope="module")
def buffers() -> tuple[bytes, bytes]:
    return os.urandom(SIZE), os.urandom(SIZE)


def rust_sha256(data: bytes) -> str:
    digester = Digester()
    digester.update(data)
    return digester.hexdigest()


def hashlib_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def in_two_threads(hash_one: Callable[[bytes], str], first: bytes, second: bytes) -> list[str]:
    results: list[str] = ["", ""]

    def work(index: int, data: bytes) -> None:
        results[index] = hash_one(data)

    threads = [
        threading.Thread(target=work, args=(0, first)),
        threading.Thread(target=work, args=(1, second)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.benchmark(group="sha256 64 MiB, one thread")
@pytest.mark.parametrize(
    "implementation", [rust_sha256, hashlib_sha256], ids=["ocistore", "hashlib"]
)
def test_one_thread(
    benchmark: BenchmarkFixture,
    implementation: Callable[[bytes], str],
    buffers: tuple[bytes, bytes],
) -> None:
    result = benchmark(implementation, buffers[0])
    assert result == hashlib.sha256(buffers[0]).hexdigest()


@pytest.mark.benchmark(group="sha256 2 x 64 MiB, two threads")
@pytest.mark.parametrize(
    "implementation", [rust_sha256, hashlib_sha256], ids=["ocistore", "hashlib"]
)
def test_two_threads(
    benchmark: BenchmarkFixture,
    implementation: Callable[[bytes], str],
    buffers: tuple[bytes, bytes],
) -> None:
    result = benchmark(in_two_threads, implementation, *buffers)
    assert result == [hashlib.sha256(b).hexdigest() for b in buffers]
