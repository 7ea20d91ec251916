"""The timeline of one ``pull --unpack`` in this process: per layer when its download started,
ended (verified and committed) and when it was applied, with the process's CPU use beside it.

Uses the peers benchmark's image (built and cached by ``benches/peers.py``) and a private
``docker-registry`` on 127.0.0.1. CPU use is read from ``/proc/self/task/*/schedstat``
(nanoseconds on a CPU per thread) every ``--tick`` ms: 200% means both cores were busy.

    .venv/bin/python benches/pull_timeline.py --size-mb 60 --compression gzip
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ocistore
from ocistore.transfer.pull import PullEvent
from peerbench import image, nodefs
from peerbench.setup import local_registry

REPO = Path(__file__).resolve().parents[1]


def _cpu_ns() -> int:
    """Nanoseconds this process's threads have spent on a CPU so far."""
    total = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # the thread ended meanwhile
    return total


class CpuSampler:
    """Samples the process's CPU use every ``tick`` seconds on a thread of its own."""

    def __init__(self, tick: float) -> None:
        self.tick = tick
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), _cpu_ns()))
            self._stop.wait(self.tick)

    def busy(self, start: float) -> list[tuple[float, float]]:
        """(ms since ``start``, CPU % over the tick before) per sample."""
        out = []
        for (t0, c0), (t1, c1) in zip(self.samples, self.samples[1:], strict=False):
            if t1 > t0 and t0 >= start:
                # A thread that ended takes its time with it: clamp at zero.
                out.append(((t1 - start) * 1000, max(0.0, (c1 - c0) / 1e9 / (t1 - t0) * 100)))
        return out


def one_pull(ref: str, work: Path, tick: float) -> str:
    """Pulls ``ref`` into a fresh store and root filesystem; returns the drawn timeline."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    events: list[tuple[float, PullEvent]] = []

    def record(event: PullEvent) -> None:
        if event.kind != "layer-progress":
            events.append((time.monotonic(), event))

    store = ocistore.Store(work / "store")
    with CpuSampler(tick) as sampler:
        start = time.monotonic()
        ocistore.pull(
            ref,
            store=store,
            unpack=work / "rootfs",
            options=ocistore.RegistryOptions(plain_http=True),
            progress=record,
        )
        end = time.monotonic()
    return draw(events, sampler.busy(start), start, end)


def draw(
    events: list[tuple[float, PullEvent]],
    busy: list[tuple[float, float]],
    start: float,
    end: float,
) -> str:
    """A text timeline: one row per layer, then the CPU strip (one character per tick)."""
    ms = lambda t: (t - start) * 1000  # noqa: E731
    lines = [f"total {ms(end):.0f} ms"]
    layers: dict[int, dict[str, float]] = {}
    sizes: dict[int, int] = {}
    for t, event in events:
        if event.index is None:
            lines.append(f"  {ms(t):7.1f} ms  {event.kind}")
            continue
        layers.setdefault(event.index, {})[event.kind] = ms(t)
        sizes[event.index] = event.size or 0
    lines.append("  layer      MB   started  downloaded   applied   (ms since the call)")
    for i in sorted(layers):
        row = layers[i]
        cells = [
            f"{row[k]:9.1f}" if k in row else "        -"
            for k in ("layer-started", "layer-downloaded", "layer-applied")
        ]
        lines.append(f"  {i:5d} {sizes[i] / 1e6:7.1f} " + " ".join(cells))
    width = max(1, len(busy))
    strip = "".join(" .:-=+*#%@"[min(9, int(pct / 200 * 9 + 0.5))] for _, pct in busy)
    lines.append(f"  CPU (0-200%, {width} ticks): |{strip}|")
    mean = sum(p for _, p in busy) / width if busy else 0.0
    lines.append(f"  mean CPU {mean:.0f}% of one core")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=60)
    parser.add_argument("--compression", choices=image.COMPRESSIONS, default="gzip")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tick", type=float, default=10.0, help="CPU sampling period, ms")
    parser.add_argument("--workdir", type=Path, default=REPO / "target" / "peers-work")
    nodefs.add_fs_argument(parser)
    args = parser.parse_args()
    seed = ocistore.Store(args.workdir / "seed-store")
    info = image.build(seed, args.size_mb, args.workdir)
    with (
        nodefs.bench_fs(
            args.workdir, nodefs.image_bytes(args.size_mb), node=args.fs == "node"
        ) as fs,
        local_registry(args.workdir / "timeline-registry") as (host, _registry),
    ):
        print(f"filesystem: {fs.description}")
        refs = image.push(seed, info, host)
        for run in range(args.runs):
            print(f"run {run + 1}: {refs[args.compression]}")
            print(one_pull(refs[args.compression], fs.root / "timeline", args.tick / 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
