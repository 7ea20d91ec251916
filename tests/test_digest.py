"""SHA-256/SHA-512 digests from the Rust core, checked against hashlib."""

from __future__ import annotations

import array
import hashlib
import os
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from waiting import join_all, write_fifo

import ocistore
from ocistore import Digester, DigestMismatchError, InvalidDigestError

EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@given(st.binary(max_size=20_000), st.sampled_from(["sha256", "sha512"]))
def test_digest_of_random_data_matches_hashlib(data: bytes, algorithm: str) -> None:
    digester = Digester(algorithm)
    digester.update(data)
    assert digester.digest() == f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


@given(st.lists(st.binary(max_size=9000), max_size=8))
def test_incremental_updates_equal_one_shot(chunks: list[bytes]) -> None:
    digester = Digester()
    for chunk in chunks:
        digester.update(chunk)
    assert digester.hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest()


def test_accepts_every_bytes_like_object_without_converting() -> None:
    payload = b"0123456789" * 1000
    digester = Digester()
    digester.update(payload)
    digester.update(bytearray(payload))
    digester.update(memoryview(payload)[10:20])
    digester.update(array.array("i", [1, 2, 3]))
    expected = hashlib.sha256(
        payload + payload + payload[10:20] + array.array("i", [1, 2, 3]).tobytes()
    )
    assert digester.hexdigest() == expected.hexdigest()


def test_rejects_non_buffers() -> None:
    with pytest.raises(TypeError):
        Digester().update("text is not bytes")  # type: ignore[arg-type]


def test_copy_forks_the_state() -> None:
    first = Digester()
    first.update(b"abc")
    second = first.copy()
    second.update(b"def")
    assert first.hexdigest() == hashlib.sha256(b"abc").hexdigest()
    assert second.hexdigest() == hashlib.sha256(b"abcdef").hexdigest()
    assert first.algorithm == "sha256"
    assert "sha256" in repr(first)


def test_empty_digest() -> None:
    assert Digester().digest() == EMPTY_SHA256
    assert ocistore.digest_bytes(b"") == EMPTY_SHA256


@pytest.mark.parametrize("algorithm", ["md5", "SHA256", "sha-256", ""])
def test_unknown_algorithm_is_a_typed_value_error(algorithm: str) -> None:
    with pytest.raises(InvalidDigestError) as info:
        Digester(algorithm)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ocistore.OciStoreError)


def test_digest_file_and_verify_file(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    data = bytes(range(256)) * 5000  # 1.28 MB: more than one 1 MiB read
    path.write_bytes(data)
    expected = "sha256:" + hashlib.sha256(data).hexdigest()
    assert ocistore.digest_file(path) == expected
    assert ocistore.digest_file(str(path), "sha512") == (
        "sha512:" + hashlib.sha512(data).hexdigest()
    )
    ocistore.verify_file(path, expected)


def test_verify_file_mismatch_names_both_digests(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"hello")
    actual = "sha256:" + hashlib.sha256(b"hello").hexdigest()
    with pytest.raises(DigestMismatchError) as info:
        ocistore.verify_file(path, EMPTY_SHA256)
    assert EMPTY_SHA256 in str(info.value) and actual in str(info.value)
    assert info.value.expected == EMPTY_SHA256
    assert info.value.actual == actual


@pytest.mark.parametrize(
    "bad",
    [
        "sha256",
        "sha256:abc",
        "sha256:" + "A" * 64,
        "sha256:" + "g" * 64,
        "sha512:" + "a" * 64,
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        ":" + "a" * 64,
    ],
)
def test_malformed_expected_digest(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"x")
    with pytest.raises(InvalidDigestError):
        ocistore.verify_file(path, bad)
    with pytest.raises(InvalidDigestError):
        ocistore.validate_digest(bad)


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ocistore.digest_file(tmp_path / "absent")


def test_threads_share_one_digester_safely() -> None:
    digester = Digester()
    block = b"z" * 65536

    def feed() -> None:
        for _ in range(50):
            digester.update(block)

    threads = [threading.Thread(target=feed) for _ in range(4)]
    for thread in threads:
        thread.start()
    join_all(threads)
    assert digester.hexdigest() == hashlib.sha256(block * 200).hexdigest()


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert ocistore.digest_file(path) == EMPTY_SHA256


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
def test_file_larger_than_the_read_buffers(tmp_path: Path, algorithm: str) -> None:
    # 9 MiB and a few bytes: many reads, the last one partial.
    data = bytes(range(251)) * (9 * 1024 * 1024 // 251 + 7)
    path = tmp_path / "large"
    path.write_bytes(data)
    expected = f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
    assert ocistore.digest_file(path, algorithm) == expected
    ocistore.verify_file(path, expected)


def test_file_truncated_while_being_read_gives_a_digest(tmp_path: Path) -> None:
    path = tmp_path / "shrinking"
    size = 48 * 1024 * 1024
    path.write_bytes(b"\x5a" * size)
    done = threading.Event()

    def shrink_and_grow() -> None:
        # Keeps cutting the file short and growing it back while it is being hashed.
        with path.open("r+b") as file:
            while not done.is_set():
                file.truncate(size // 3)
                file.truncate(size)

    shrinker = threading.Thread(target=shrink_and_grow)
    shrinker.start()
    try:
        results = [ocistore.digest_file(path) for _ in range(3)]
    finally:
        done.set()
        join_all([shrinker])
    for result in results:
        ocistore.validate_digest(result)


def _digest_fifo_in_thread(fifo: Path, results: dict[Path, str]) -> threading.Thread:
    def work() -> None:
        results[fifo] = ocistore.digest_file(fifo)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_digest_file_releases_the_gil_and_runs_concurrently(tmp_path: Path) -> None:
    # Each digest_file blocks reading a FIFO until this thread writes to it. Were the GIL held, or
    # the calls serialised, this thread could not feed the second FIFO while the first call is
    # still waiting for its data, and the test would stall instead of passing.
    first, second = tmp_path / "first", tmp_path / "second"
    os.mkfifo(first)
    os.mkfifo(second)
    results: dict[Path, str] = {}
    first_thread = _digest_fifo_in_thread(first, results)
    second_thread = _digest_fifo_in_thread(second, results)
    payload = os.urandom(3 * 1024 * 1024)
    for fifo, thread in ((second, second_thread), (first, first_thread)):
        write_fifo(fifo, payload)
        join_all([thread])
    expected = "sha256:" + hashlib.sha256(payload).hexdigest()
    assert results == {first: expected, second: expected}
