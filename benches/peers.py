"""ocistore against its peers on this machine, side by side in one run (issue 10).

Builds a realistic multi-layer image from this machine's files (gzip and zstd variants), starts
a ``docker-registry`` on 127.0.0.1, pushes the image with ocistore, then times in alternating
rounds: pull into an empty store (ocistore, skopeo, python-dxf, oras-py), unpack of the same
layers (ocistore, umoci, GNU tar, Python tarfile), pull+unpack (ocistore vs skopeo + umoci), a
re-pull with policy Always, and the machine's limits (curl, gzip -dc / zstd -dc, cp -a,
openssl's SHA-256). Prints a table of medians and ratios and writes JSON and Markdown to --out.

A missing or failing peer is reported as n/a; only a failure of ocistore itself (or of the
stage) makes the exit status non-zero. Ratios never fail the run. Build with
``maturin develop --release`` first.

    .venv/bin/python benches/peers.py --short --out /tmp/peers          # CI: ~80 MB, 3 rounds
    .venv/bin/python benches/peers.py --sizes 6,60,150,300,500 --out DIR  # full, with the plot
"""

from __future__ import annotations

import argparse
import compileall
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import ocistore
from peerbench import check, limits, nodefs, report, runtimes, wan
from peerbench.jobs import all_jobs, manifest_head, repull_jobs, wan_jobs
from peerbench.plot import plot
from peerbench.runner import run_rounds
from peerbench.setup import local_registry, prepare, registry_cpu, request_counter

REPO = Path(__file__).resolve().parents[1]


def measure_size(
    args: argparse.Namespace, fs: nodefs.BenchFs, size_mb: int, with_sha: bool
) -> dict[str, Any]:
    """One complete side-by-side run on an image of ``size_mb`` MB, the tools writing on
    ``fs``."""
    # The registry stands for a remote server, not the node: its storage stays in the work
    # directory (written once by the push, read from the page cache in the timed runs).
    with (
        local_registry(args.workdir / "registry") as (host, registry),
        runtimes.started(fs.root) as node_runtimes,
    ):
        setup, info = prepare(args.workdir, fs.root, size_mb, host, node_runtimes)
        print(
            f"image: {info.layers} layers, {info.uncompressed / 1e6:.0f} MB uncompressed, "
            f"{info.compressed['gzip'] / 1e6:.0f} MB gzip, "
            f"{info.compressed['zstd'] / 1e6:.0f} MB zstd; {args.rounds} rounds",
            file=sys.stderr,
            flush=True,
        )
        jobs = all_jobs(setup)
        if args.only:
            repull_groups = {job.group for job in repull_jobs(setup)}
            jobs = [job for job in jobs if args.only in job.group or job.group in repull_groups]
        outcomes = run_rounds(
            jobs,
            args.rounds,
            lambda: request_counter(registry),
            lambda: registry_cpu(registry),
        )
        same_tree = check.compare_with_umoci(setup)
        print(f"rootfs check: {same_tree}", file=sys.stderr)
        sha256: dict[str, float | None] = {}
        if with_sha:
            sha256 = limits.sha256_rates()
        warm = limits.warm_repull_ms(
            setup.warm_store, setup.refs["gzip"], manifest_head(setup.refs["gzip"])
        )
    shutil.rmtree(setup.scratch.parent, ignore_errors=True)  # warm copies: GBs in full mode
    results = report.summarize(outcomes, info, sha256)
    results["rounds"] = args.rounds
    results["rootfs_check"] = same_tree
    results["warm_in_process_ms"] = warm
    results["filesystem"] = fs.description
    return results


def measure_wan(args: argparse.Namespace, fs: nodefs.BenchFs, size_mb: int) -> dict[str, Any]:
    """Pulls across an emulated WAN (registry in a network namespace behind a shaped link)."""
    links = [wan.Link(), wan.Link(loss_percent=1.0)]
    all_outcomes = []
    with (
        wan.namespace() as network,
        local_registry(args.workdir / "registry-wan", network) as (inner_host, registry),
        wan.delayed((network.inner_address, 5000), links[0].rtt_ms) as relay,
        runtimes.started(fs.root) as node_runtimes,
    ):
        host = f"127.0.0.1:{relay.port}"
        setup, info = prepare(args.workdir, fs.root, size_mb, host, node_runtimes)
        for link in links:
            network.shape(link)
            print(f"WAN: {link.describe()} (registry {inner_host})", file=sys.stderr, flush=True)
            jobs = wan_jobs(setup, link.describe(), info.compressed["gzip"], link.rate_mbit)
            all_outcomes += run_rounds(jobs, args.rounds, lambda: request_counter(registry))
    shutil.rmtree(setup.scratch.parent, ignore_errors=True)
    results = report.summarize(all_outcomes, info, {})
    results["rounds"] = args.rounds
    results["filesystem"] = fs.description
    return results


def publish(runs: list[dict[str, Any]], out: Path) -> None:
    """Writes peers.json, peers.md (and throughput.png for several sizes); prints the table."""
    runs = sorted(runs, key=lambda run: run["image"]["uncompressed"])
    main_run = runs[-1]
    (out / "peers.json").write_text(json.dumps(main_run, indent=1))
    if len(runs) > 1:
        plot(runs, out / "throughput.png")
    (out / "peers.md").write_text(report.markdown(main_run, runs))
    print()
    print(report.table(main_run))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="CI mode: ~80 MB image, 3 rounds")
    parser.add_argument("--size-mb", type=int, help="image size, MB uncompressed (default 500)")
    parser.add_argument("--sizes", help="several sizes (MB, comma-separated): adds the plot")
    parser.add_argument("--rounds", type=int, help="rounds per job (default 5; --short 3)")
    parser.add_argument("--out", type=Path, default=REPO / "target" / "peers")
    parser.add_argument(
        "--workdir", type=Path, default=REPO / "target" / "peers-work", help="images, scratch"
    )
    nodefs.add_fs_argument(parser)
    parser.add_argument(
        "--wan",
        action="store_true",
        help="only the WAN rows: registry behind a shaped link (30 ms RTT, 100 Mbit/s; 1%% loss)",
    )
    parser.add_argument("--only", help="only groups whose name contains this (debugging)")
    parser.add_argument(
        "--render", action="store_true", help="only re-render --out from its peers-*.json"
    )
    args = parser.parse_args()
    if args.render:
        runs = [json.loads(p.read_text()) for p in sorted(args.out.glob("peers-*mb.json"))]
        publish(runs, args.out)
        return 1 if any(report.ocistore_failures(run) for run in runs) else 0
    args.rounds = args.rounds or (3 if args.short else 5)
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    else:
        sizes = [args.size_mb or (80 if args.short else 500)]
    args.workdir.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    # A wheel install byte-compiles the package; an editable one (a checkout) may not have.
    compileall.compile_dir(Path(ocistore.__file__).parent, quiet=1)
    with nodefs.bench_fs(
        args.workdir, nodefs.image_bytes(max(sizes)), node=args.fs == "node"
    ) as fs:
        print(f"filesystem: {fs.description}", file=sys.stderr, flush=True)
        return measure_all(args, fs, sizes)


def measure_all(args: argparse.Namespace, fs: nodefs.BenchFs, sizes: list[int]) -> int:
    """The WAN rows, or every size; writes and prints the results; the exit status."""
    machine = report.machine(fs.description)
    if args.wan:
        results = measure_wan(args, fs, sizes[-1])
        results["machine"] = machine
        (args.out / "peers-wan.json").write_text(json.dumps(results, indent=1))
        (args.out / "peers-wan.md").write_text(report.table(results) + "\n")
        print(report.table(results))
        return 1 if report.ocistore_failures(results) else 0
    start = time.monotonic()
    runs = []
    for size in sorted(sizes):
        results = measure_size(args, fs, size, with_sha=size == max(sizes))
        results["machine"] = machine
        (args.out / f"peers-{size}mb.json").write_text(json.dumps(results, indent=1))
        runs.append(results)
    publish(runs, args.out)
    print(f"\npeers: {time.monotonic() - start:.0f} s; results in {args.out}")
    broken = [line for run in runs for line in report.ocistore_failures(run)]
    for line in broken:
        print(f"ocistore FAILED: {line}", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
