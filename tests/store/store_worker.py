"""A separate process that uses a store, for the concurrency and crash tests.

``pull ROOT MARKER SEED...``: store the images of the given seeds (as a puller would), writing
one marker line per blob it actually had to write. ``crash ROOT SEED KILL_AT``: run a seeded
workload and SIGKILL itself just before its KILL_AT-th file-system or SQL operation (-1: never);
prints the number of operations it performed and the bytes it resumed when it survives.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from ocistore.store import PullCredential, Store
from ocistore.testing.imagebuild import BuiltImage, build_image

CHUNK = 16 * 1024
resumed_bytes = 0


def seeded_bytes(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def image_for(seed: int, *, big: int = 96 * 1024) -> BuiltImage:
    """Seed-specific images sharing one base layer (so dedup and shared content are exercised)."""
    base = {"base/lib.so": seeded_bytes(0, big)}
    return build_image(
        [base, {f"app/{seed}.bin": seeded_bytes(seed, big // 2 + seed % 7 * 1000)}],
        compression=["none", "gzip"],
        config={"Cmd": [f"/app/{seed}"]},
    )


def store_image(store: Store, image: BuiltImage, ref: str, marker: Path | None) -> None:
    """Ingests every blob in chunks like a download would, then records the image."""
    global resumed_bytes
    with store.lease():
        for digest, (media_type, data) in image.blobs().items():
            with store.ingest(digest, len(data), media_type=media_type) as ingest:
                if ingest.done:
                    continue
                resumed_bytes += ingest.offset
                if marker is not None:
                    with marker.open("a") as out:
                        out.write(f"{digest}\n")
                for start in range(ingest.offset, len(data), CHUNK):
                    ingest.write(data[start : start + CHUNK])
                ingest.commit()
        store.record_image(ref, manifest_digest=image.digest)


def pull(root: str, marker: str, seeds: list[int]) -> None:
    go = Path(root) / "go"
    while not go.exists():  # start together, to maximise contention
        time.sleep(0.005)
    store = Store(root)
    for seed in seeds:
        store_image(store, image_for(seed, big=1 << 20), f"example.com/app:s{seed}", Path(marker))


# --- crash ----------------------------------------------------------------------------

_ops = 0
_kill_at = -1


def _tick(*_: Any) -> None:
    global _ops
    _ops += 1
    if _ops == _kill_at:
        os.kill(os.getpid(), signal.SIGKILL)


def _instrument() -> None:
    """Counts (and may die at) every write-side syscall and SQL statement."""
    for name in ("write", "fsync", "rename", "replace", "unlink", "ftruncate", "fchmod", "chmod"):
        original = getattr(os, name)

        def wrapped(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            _tick()
            return _original(*args, **kwargs)

        setattr(os, name, wrapped)
    connect = sqlite3.connect

    def traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(_tick)
        return conn

    sqlite3.connect = traced_connect  # type: ignore[assignment]


def crash(root: str, seed: int, kill_at: int) -> None:
    global _kill_at
    rng = random.Random(seed)
    images = [image_for(seed), image_for(seed + 1000)]
    store = Store(root)
    _kill_at = kill_at
    _instrument()
    for n, image in enumerate(images):
        store_image(store, image, f"example.com/app:s{seed}-{n}", None)
    record = store.image(f"example.com/app:s{seed}-0")
    store.touch(record.reference)
    store.record_pull(record.digest, "example.com/app", PullCredential.node())
    old = f"example.com/app:s{seed - 3}-1"
    if store.find_image(old) is not None:
        store.remove(old)
    if rng.random() < 0.5:
        store.unpack(record.reference)
    if rng.random() < 0.4:
        store.gc(ingest_max_age=3600)
    print(_ops, resumed_bytes)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "pull":
        pull(sys.argv[2], sys.argv[3], [int(s) for s in sys.argv[4:]])
    elif mode == "crash":
        crash(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        raise SystemExit(f"unknown mode {mode}")
