"""Measures ocistore's SHA-256 against hashlib on real 1 GiB files and prints the ratios.

One thread: ``ocistore.digest_file`` against hashlib reading 1 MiB chunks. Two threads: the same,
with two different files hashed at once from two Python threads. Ratios are ocistore's speed
divided by hashlib's (above 1.0 means ocistore is faster). Files live in a temporary directory
and are read once before timing, so both sides read from the page cache. The two sides are timed
alternately and medians are reported, so that load from other processes hits both alike.

    python benches/digest_ratio.py [--size-mib 1024] [--repeat 5]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import ocistore

CHUNK = 1024 * 1024


def hashlib_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as file:
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        while count := file.readinto(buffer):
            digest.update(view[:count])
    return "sha256:" + digest.hexdigest()


def ocistore_file(path: Path) -> str:
    return ocistore.digest_file(path)


def write_random_file(path: Path, size: int) -> None:
    block = os.urandom(CHUNK)
    with path.open("wb") as file:
        for index in range(size // CHUNK):
            # Vary each block cheaply so the file is not one repeated MiB.
            file.write(index.to_bytes(8, "little") + block[8:])


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def alternating_medians(
    ours: Callable[[], object], theirs: Callable[[], object], repeat: int
) -> tuple[float, float, float]:
    """Times both sides in turn; returns their median times and the median of the ratios."""
    ours_times, theirs_times, ratios = [], [], []
    for _ in range(repeat):
        ours_time, theirs_time = timed(ours), timed(theirs)
        ours_times.append(ours_time)
        theirs_times.append(theirs_time)
        ratios.append(theirs_time / ours_time)
    return statistics.median(ours_times), statistics.median(theirs_times), statistics.median(ratios)


def in_two_threads(hash_file: Callable[[Path], str], first: Path, second: Path) -> list[str]:
    results = ["", ""]

    def work(index: int, path: Path) -> None:
        results[index] = hash_file(path)

    threads = [threading.Thread(target=work, args=(i, p)) for i, p in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="size of each file")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs; medians count")
    args = parser.parse_args()
    size = args.size_mib * CHUNK

    with tempfile.TemporaryDirectory(prefix="ocistore-bench-") as tmp:
        first, second = Path(tmp, "a.bin"), Path(tmp, "b.bin")
        write_random_file(first, size)
        write_random_file(second, size)
        # Warm the page cache and check both implementations agree.
        for path in (first, second):
            if ocistore_file(path) != hashlib_file(path):
                raise SystemExit(f"digests differ for {path}")

        mib = size / CHUNK
        one_ours, one_theirs, one_ratio = alternating_medians(
            lambda: ocistore_file(first), lambda: hashlib_file(first), args.repeat
        )
        two_ours, two_theirs, two_ratio = alternating_medians(
            lambda: in_two_threads(ocistore_file, first, second),
            lambda: in_two_threads(hashlib_file, first, second),
            args.repeat,
        )

    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"file size {mib:.0f} MiB, median of {args.repeat}, cores {os.cpu_count()}, load {load}")
    print(
        f"one thread   ocistore {mib / one_ours:8.0f} MiB/s   hashlib {mib / one_theirs:8.0f} MiB/s"
    )
    print(
        f"two threads  ocistore {2 * mib / two_ours:8.0f} MiB/s   "
        f"hashlib {2 * mib / two_theirs:8.0f} MiB/s"
    )
    print(f"ratio one thread  (ocistore/hashlib): {one_ratio:.2f}x")
    print(f"ratio two threads (ocistore/hashlib): {two_ratio:.2f}x")


if __name__ == "__main__":
    main()
