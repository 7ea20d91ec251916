"""The blob byte path alone: a big image pulled from a loopback registry, no unpack (issue 15).

Pushes an image of incompressible layers (``--size-mb`` in ``--layers`` layers, stored as is) to
a ``docker-registry`` on 127.0.0.1, then alternates rounds of:

- ``ocistore.pull`` into an empty store *inside this process* (connections warm, no Python
  start-up: the per-byte cost): the bodies through httpx's iterator (round 3), received from the
  socket directly but each piece written before the next is received (round 4), today's
  (received while the last piece is written) with one stream per layer, and parallel ranges;
- the same as a whole process (``peerbench/clients.py ocistore-pull``);
- ``skopeo copy docker:// oci:``, python-dxf ``pull_blob``, and ``curl`` of the layers to
  ``/dev/null`` (the loopback HTTP ceiling).

Prints medians, MB/s and each row's ratio to ocistore's in-process pull (peer s / ocistore s).

    .venv/bin/python benches/blob_pull.py [--size-mb 500] [--layers 4] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import ocistore
import ocistore.registry.bodies as bodies
import ocistore.registry.writebehind as writebehind
from ocistore.registry.ranges import ParallelFetch
from ocistore.testing.imagebuild import build_image
from peerbench.jobs import CLIENTS, skopeo_copy
from peerbench.setup import local_registry

REPO = Path(__file__).resolve().parents[1]
MB = 1_000_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=REPO / "target" / "blob-pull")
    args = parser.parse_args()
    work = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    per_layer = args.size_mb * MB // args.layers
    image = build_image(
        [{f"layer{i}.bin": os.urandom(per_layer)} for i in range(args.layers)],
        compression="none",
    )
    total = sum(layer.size for layer in image.layers)
    policy = work / "policy.json"
    policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    with local_registry(work / "registry") as (host, _):
        ref = f"{host}/bench/blobs:v1"
        seed = ocistore.Store(work / "seed")
        image.write_to_store(seed, ref)
        del image
        ocistore.push(ref, store=seed, options=ocistore.RegistryOptions(plain_http=True))
        shutil.rmtree(work / "seed")
        urls = [f"http://{host}/v2/bench/blobs/blobs/{d.digest}" for d in seed_layers(ref)]

        def in_process(
            parallel: ParallelFetch, *, through_httpx: bool = False, inline: bool = False
        ) -> Callable[[], None]:
            options = ocistore.RegistryOptions(plain_http=True, parallel=parallel)

            def run() -> None:
                # every body through httpx's iterator (64 KiB reads through h11), as in round 3
                bodies.DIRECT_MIN = 1 << 62 if through_httpx else direct_min
                # each piece written before the next is received, as in round 4
                writebehind.WRITE_BEHIND_MIN = 1 << 62 if inline else write_behind_min
                ocistore.pull(ref, store=ocistore.Store(work / "store"), options=options)

            return run

        def command(argv: list[str]) -> Callable[[], None]:
            return lambda: subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)

        direct_min = bodies.DIRECT_MIN
        write_behind_min = writebehind.WRITE_BEHIND_MIN
        jobs: dict[str, Callable[[], None]] = {
            "round 3: bodies through httpx, one stream": in_process(
                ParallelFetch(max_per_layer=1), through_httpx=True
            ),
            "round 4: from the socket, written inline": in_process(
                ParallelFetch(max_per_layer=1), inline=True
            ),
            "ocistore.pull in-process, one stream per layer": in_process(
                ParallelFetch(max_per_layer=1)
            ),
            "ocistore.pull in-process, parallel ranges from the start": in_process(
                ParallelFetch(max_per_layer=4, slow_below=None)
            ),
            "ocistore pull, whole process": command(
                [sys.executable, CLIENTS, "ocistore-pull", str(work / "store"), ref]
            ),
            "skopeo copy docker:// oci:": command(skopeo_copy(policy, ref, work / "store", "v1")),
            "python-dxf pull_blob": command(
                [sys.executable, CLIENTS, "dxf-pull", ref, str(work / "store")]
            ),
            "curl GET layers > /dev/null": command(
                ["curl", "-sf", *[a for url in urls for a in ("-o", "/dev/null", url)]]
            ),
        }
        ocistore.pull(ref, store=ocistore.Store(work / "warm"))  # warm the pool and page cache
        times: dict[str, list[float]] = {name: [] for name in jobs}
        for _ in range(args.rounds):
            for name, job in jobs.items():
                shutil.rmtree(work / "store", ignore_errors=True)
                subprocess.run(["sync"], check=True)
                start = time.perf_counter()
                job()
                times[name].append(time.perf_counter() - start)
    base = statistics.median(times["ocistore.pull in-process, one stream per layer"])
    print(f"\n{total / MB:.0f} MB in {args.layers} layers, {args.rounds} rounds\n")
    print("| job | median s | min s | MB/s | ocistore speed-up (peer s / ocistore s) |")
    print("|---|---:|---:|---:|---|")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(
            f"| {name} | {median:.2f} | {min(samples):.2f} | {total / MB / median:.0f} "
            f"| {median / base:.2f}x |"
        )
    return 0


def seed_layers(ref: str) -> list[ocistore.model.Descriptor]:
    """The layers of the pushed image, as the registry lists them."""
    from ocistore.model import parse_manifest_document
    from ocistore.registry.session import session_for

    reference = ocistore.Reference.parse(ref)
    with session_for(reference, ocistore.RegistryOptions(plain_http=True)) as session:
        digest = session.resolve(reference.identifier).digest
        assert digest is not None
        document = parse_manifest_document(session.get_manifest(digest).data)
    return list(document.layers)  # type: ignore[union-attr]


if __name__ == "__main__":
    sys.exit(main())
