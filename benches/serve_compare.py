"""containerd pulling through ``ocistore serve`` vs straight from the upstream registry.

Builds the realistic image of ``peers.py`` (this machine's files, gzip), pushes it to a local
``docker-registry``, pulls it anonymously into an ocistore store served by ``ocistore serve``,
and starts a private containerd (the tests' oracle). Then, in alternating rounds, containerd
fetches the image (``ctr content fetch``: transfer and verify only) and pulls it
(``ctr images pull``: fetch + unpack) from the upstream and through the mirror (``hosts.toml``),
its content wiped between runs. Prints medians and the mirror/upstream ratio, and checks that
the upstream saw no request during the mirror's runs. Needs root (containerd).

    .venv/bin/python benches/serve_compare.py [--size-mb 200] [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / d) for d in ("", "registry", "serve")]
sys.path.insert(0, str(REPO / "benches"))

from containerd_daemon import Containerd  # noqa: E402
from servefixtures import running_server, write_hosts_toml  # noqa: E402

import ocistore  # noqa: E402
from peerbench import image  # noqa: E402
from peerbench.setup import local_registry, request_counter  # noqa: E402


def _timed(containerd: Containerd, argv: list[str]) -> float:
    containerd.reset()
    subprocess.run(["sync"], check=True)
    start = time.perf_counter()
    containerd.ctr(*argv)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200, help="image size, MB uncompressed")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=REPO / "target" / "peers-work")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="serve-bench-") as scratch,
        local_registry(args.workdir / "serve-registry") as (host, registry),
    ):
        base = Path(scratch)
        seed = ocistore.Store(args.workdir / "seed-store")
        info = image.build(seed, args.size_mb, args.workdir)
        ref = image.push(seed, info, host)["gzip"]
        node = ocistore.Store(base / "node-store")
        ocistore.pull(ref, store=node, options=ocistore.RegistryOptions(plain_http=True))
        containerd = Containerd(base / "containerd")
        containerd.start()
        try:
            with running_server(node.root) as server:
                hosts = base / "certs.d"
                write_hosts_toml(hosts, host, [server.url])
                ways = {
                    "upstream": ["--plain-http"],
                    "mirror": ["--plain-http", "--hosts-dir", str(hosts)],
                }
                jobs = {
                    "fetch": ["content", "fetch"],
                    "pull": ["images", "pull", "--snapshotter", containerd.snapshotter],
                }
                times: dict[str, list[float]] = {f"{j} {w}": [] for j in jobs for w in ways}
                upstream_requests_via_mirror = 0
                for _ in range(args.rounds):
                    for job, command in jobs.items():
                        for way, extra in ways.items():
                            before = request_counter(registry)
                            times[f"{job} {way}"].append(
                                _timed(containerd, [*command, *extra, ref])
                            )
                            if way == "mirror":
                                upstream_requests_via_mirror += request_counter(registry) - before
                containerd.reset()
        finally:
            containerd.stop()
    medians = {name: statistics.median(samples) for name, samples in times.items()}
    size = info.compressed["gzip"]
    print(f"\nimage: {info.layers} layers, {size / 1e6:.0f} MB gzip; {args.rounds} rounds")
    print(f"{'containerd job':<16} {'upstream s':>11} {'mirror s':>9} {'mirror/upstream':>16}")
    for job in jobs:
        up, mirror = medians[f"{job} upstream"], medians[f"{job} mirror"]
        print(f"{'ctr ' + job:<16} {up:>11.2f} {mirror:>9.2f} {mirror / up:>15.2f}x")
    print(f"upstream requests during mirror runs: {upstream_requests_via_mirror}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "size_gzip": size,
                    "rounds": args.rounds,
                    "samples": times,
                    "medians": medians,
                    "upstream_requests_via_mirror": upstream_requests_via_mirror,
                },
                indent=1,
            )
        )
    return 0 if upstream_requests_via_mirror == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
