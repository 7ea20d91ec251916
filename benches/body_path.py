"""A/B of the blob body path alone (issue 15, goal 3): bodies through httpx's iterator against
bodies received from the socket directly (``ocistore.registry.bodies``).

Uploads one blob of random bytes to a ``docker-registry`` on 127.0.0.1, then alternates, in this
process, downloads of it into a sink that only counts, one that hashes (SHA-256, as the ingest)
and an ``Ingest`` on ``--store`` (hash, write, fsync, rename): wall and CPU seconds (all
threads, kernel included) per variant, and curl to ``/dev/null`` as the loopback ceiling.
``--callgrind`` instead counts user-space instructions per MB of the counting sink under
valgrind (two sizes, so the fixed cost cancels; valgrind's CPU has no SHA extensions, so the
hash is left out there).

    .venv/bin/python benches/body_path.py [--size-mb 200] [--rounds 5] [--callgrind]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ocistore.digest import Digester
from ocistore.registry import RegistryClient, bodies
from ocistore.registry.mirrors import upstream_host
from ocistore.store.blobs import BlobStore, Ingest
from peerbench.setup import local_registry

MB = 1_000_000
REPOSITORY = "bench/body"
VARIANTS = {"through httpx": 1 << 62, "from the socket": None}


class Counting:
    """A sink that only counts (the network path alone)."""

    def __init__(self) -> None:
        self.offset = 0

    def write(self, data: bytes | memoryview) -> None:
        self.offset += len(data)

    def truncate(self) -> None:
        self.offset = 0


class Hashing(Counting):
    """A sink that hashes, as the ingest does."""

    def __init__(self) -> None:
        super().__init__()
        self.digester = Digester()

    def write(self, data: bytes | memoryview) -> None:
        self.digester.update(data)
        super().write(data)


DEFAULTS = (bodies.DIRECT_MIN, bodies.DIRECT_MIN_TLS)


def set_variant(direct_min: int | None) -> None:
    """``None``: the defaults; otherwise the smallest body received from the socket."""
    bodies.DIRECT_MIN, bodies.DIRECT_MIN_TLS = DEFAULTS if direct_min is None else (direct_min,) * 2


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def seed(client: RegistryClient, size: int) -> str:
    data = os.urandom(size)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    client.upload_blob(REPOSITORY, digest, io.BytesIO(data), size)
    return digest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--store", type=Path, default=Path("/dev/shm/ocistore-body-path"))
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)  # host digest size direct
    args = parser.parse_args()
    if args.child:
        host, digest, size, direct = args.child
        set_variant(None if direct == "1" else VARIANTS["through httpx"])
        with RegistryClient(upstream_host(host, plain_http=True)) as client:
            client.download_blob(REPOSITORY, digest, int(size), Counting())
        return 0
    with tempfile.TemporaryDirectory() as work, local_registry(Path(work) / "registry") as reg:
        host = reg[0]
        with RegistryClient(upstream_host(host, plain_http=True)) as client:
            if args.callgrind:
                return callgrind(client, host, args.size_mb, Path(work))
            size = args.size_mb * MB
            digest = seed(client, size)

            def download(sink: Callable[[], Counting]) -> Callable[[], None]:
                return lambda: client.download_blob(REPOSITORY, digest, size, sink())

            def ingest() -> None:
                shutil.rmtree(args.store, ignore_errors=True)
                with Ingest(BlobStore(args.store), digest, size) as target:
                    client.download_blob(REPOSITORY, digest, size, target)
                    target.commit()

            url = f"http://{host}/v2/{REPOSITORY}/blobs/{digest}"
            jobs: dict[str, tuple[int | None, Callable[[], None]]] = {
                "curl > /dev/null": (None, lambda: curl(url)),
            }
            for variant, direct_min in VARIANTS.items():
                jobs[f"{variant}, counting sink"] = (direct_min, download(Counting))
                jobs[f"{variant}, hashing sink"] = (direct_min, download(Hashing))
                jobs[f"{variant}, Ingest"] = (direct_min, ingest)
            times: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in jobs}
            for _ in range(args.rounds):
                for name, (direct_min, job) in jobs.items():
                    set_variant(direct_min)
                    wall, cpu = time.perf_counter(), cpu_seconds()
                    job()
                    times[name][0].append(time.perf_counter() - wall)
                    times[name][1].append(cpu_seconds() - cpu)
            shutil.rmtree(args.store, ignore_errors=True)
    print(f"\n{args.size_mb} MB blob, {args.rounds} rounds (medians; CPU of this process)\n")
    print("| job | wall s | MB/s | CPU s | CPU ms per MB |")
    print("|---|---:|---:|---:|---:|")
    for name, (walls, cpus) in times.items():
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        cpu_cells = f"{cpu:.3f} | {cpu / args.size_mb * 1e3:.2f}"
        if name.startswith("curl"):
            cpu_cells = "(another process) | "
        print(f"| {name} | {wall:.3f} | {args.size_mb / wall:.0f} | {cpu_cells} |")
    return 0


def curl(url: str) -> None:
    subprocess.run(["curl", "-sf", "-o", "/dev/null", url], check=True)


def callgrind(client: RegistryClient, host: str, size_mb: int, work: Path) -> int:
    sizes = (size_mb // 4, size_mb // 4 * 3)
    counts: dict[tuple[int, str], int] = {}
    for mb in sizes:
        digest = seed(client, mb * MB)
        for direct in ("0", "1"):
            out = work / f"callgrind-{mb}-{direct}.out"
            argv = [sys.executable, __file__, "--child", host, digest, str(mb * MB), direct]
            done = subprocess.run(
                ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
                capture_output=True,
                text=True,
                check=True,
            )
            found = re.search(r"Collected : (\d+)", done.stderr)
            assert found is not None, done.stderr[-500:]
            counts[mb, direct] = int(found.group(1))
    for direct, name in (("0", "through httpx"), ("1", "from the socket")):
        per_mb = (counts[sizes[1], direct] - counts[sizes[0], direct]) / (sizes[1] - sizes[0])
        print(f"{name}: {per_mb / 1e3:,.0f} K user-space instructions per MB received")
    return 0


if __name__ == "__main__":
    sys.exit(main())
