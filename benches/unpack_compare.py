"""Side-by-side layer unpack timings: ocistore vs GNU tar, Python tarfile and umoci.

Builds a realistic multi-layer image from this machine's files (Python stdlib, /usr/share/doc,
shared libraries, binaries) unless ``--layers DIR`` gives ready tar layers, compresses every
layer with gzip (pigz) and zstd, then unpacks all layers in order with each tool, alternating
tools run by run, and prints median times, ratios and peak RSS. Run it on a release build
(``maturin develop --release``).

    python benches/unpack_compare.py --work /var/tmp/ocistore-bench --runs 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

SOURCES = [
    ("python-stdlib", [f"/usr/lib/python3.{sys.version_info.minor}", "/usr/local/lib"]),
    ("docs", ["/usr/share/doc", "/usr/share/man"]),
    ("libs", ["/usr/lib/x86_64-linux-gnu"]),
    ("bin", ["/usr/bin", "/usr/sbin", "/etc"]),
    ("share", ["/usr/share/perl", "/usr/share/zoneinfo", "/usr/share/i18n", "/usr/share/locale"]),
]


def build_layers(work: Path, max_mb: int) -> list[Path]:
    """Tar layers of real files, each capped at ``max_mb`` MB of file content."""
    layers = []
    for name, roots in SOURCES:
        out = work / f"{name}.tar"
        layers.append(out)
        if out.exists():
            continue
        budget = max_mb << 20
        with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
            for root in roots:
                for dirpath, dirnames, filenames in os.walk(root):
                    dirnames.sort()
                    if budget <= 0:
                        break
                    tar.add(dirpath, recursive=False)
                    for f in sorted(filenames):
                        if budget <= 0:
                            break
                        path = os.path.join(dirpath, f)
                        try:
                            size = os.lstat(path).st_size
                            tar.add(path, recursive=False)
                        except OSError:
                            continue
                        budget -= size
        print(f"built {out.name}: {out.stat().st_size >> 20} MB", flush=True)
    return layers


def compress(layers: list[Path]) -> dict[str, list[Path]]:
    result: dict[str, list[Path]] = {"gzip": [], "zstd": []}
    for layer in layers:
        gz, zst = layer.with_suffix(".tar.gz"), layer.with_suffix(".tar.zst")
        if not gz.exists():
            subprocess.run(f"pigz -6 -c {layer} > {gz}", shell=True, check=True)
        if not zst.exists():
            subprocess.run(["zstd", "-q", "-3", "-T0", str(layer), "-o", str(zst)], check=True)
        result["gzip"].append(gz)
        result["zstd"].append(zst)
    return result


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def oci_layout(work: Path, layers: list[Path], tars: list[Path]) -> Path:
    """An OCI image layout holding the gzip layers, for umoci."""
    layout = work / "layout"
    if (layout / "index.json").exists():
        return layout
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    descriptors = []
    for blob in layers:
        digest = sha256_file(blob)
        shutil.copyfile(blob, blobs / digest)
        descriptors.append(
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": f"sha256:{digest}",
                "size": blob.stat().st_size,
            }
        )

    def put(doc: dict[str, object]) -> dict[str, object]:
        raw = json.dumps(doc).encode()
        digest = hashlib.sha256(raw).hexdigest()
        (blobs / digest).write_bytes(raw)
        return {"digest": f"sha256:{digest}", "size": len(raw)}

    config = put(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{sha256_file(t)}" for t in tars]},
            "config": {},
        }
    )
    manifest = put(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
            "layers": descriptors,
        }
    )
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **manifest,
                "annotations": {"org.opencontainers.image.ref.name": "bench"},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    return layout


# Also prints the time spent in the engine: `import ocistore` alone takes ~0.4 s here (httpx,
# the registry client...), a fixed cost GNU tar does not pay.
OCISTORE_SCRIPT = """
import sys, time, ocistore
dest, media_type, *layers = sys.argv[1:]
start = time.perf_counter()
for layer in layers:
    ocistore.unpack_layer(layer, dest, media_type)
print("engine-seconds", time.perf_counter() - start)
"""

TARFILE_SCRIPT = """
import sys, tarfile, zstandard
dest, kind, *layers = sys.argv[1:]
for layer in layers:
    if kind == "zstd":
        with open(layer, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as r, \\
                tarfile.open(fileobj=r, mode="r|") as tar:
            tar.extractall(dest, filter="tar")
    else:
        with tarfile.open(layer, "r|gz") as tar:
            tar.extractall(dest, filter="tar")
"""


def run_measured(argv: list[str], rss_file: Path) -> tuple[float, float, int, float | None]:
    """Wall time, CPU time (user + system), peak RSS (KiB) and reported engine time of one
    child process (and the children it waits for). CPU time is the steadier measure on a
    loaded machine, where wall time mostly says how often the tool got a core.

    /usr/bin/time reports the RSS: a child forked from this Python process would inherit
    its peak RSS figure.
    """
    start = time.perf_counter()
    out = subprocess.run(
        ["/usr/bin/time", "-f", "%M %U %S", "-o", str(rss_file), *argv],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    elapsed = time.perf_counter() - start
    engine = None
    for line in out.stdout.splitlines():
        if line.startswith("engine-seconds "):
            engine = float(line.split()[1])
    peak, user, system = rss_file.read_text().split()[-3:]
    return elapsed, float(user) + float(system), int(peak), engine


def tools(
    kind: str, layers: list[Path], layout: Path | None, baseline: Path | None = None
) -> dict[str, Callable[[Path], list[list[str]]]]:
    media = {
        "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
        "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    }[kind]
    names = [str(p) for p in layers]
    tar_flag = "-xzf" if kind == "gzip" else "--zstd"
    result: dict[str, Callable[[Path], list[list[str]]]] = {
        "ocistore": lambda d: [[sys.executable, "-c", OCISTORE_SCRIPT, str(d), media, *names]],
        "gnu-tar": lambda d: [
            ["tar", "-C", str(d), tar_flag, n]
            if kind == "gzip"
            else ["tar", "-C", str(d), "--zstd", "-xf", n]
            for n in names
        ],
        "tarfile": lambda d: [[sys.executable, "-c", TARFILE_SCRIPT, str(d), kind, *names]],
    }
    if baseline is not None:
        # Another build of the package (a copy of python/ocistore with its _core), for
        # before/after comparisons that alternate with the other tools run by run.
        script = [sys.executable, "-c", OCISTORE_SCRIPT]
        env = ["env", f"PYTHONPATH={baseline}"]
        result["baseline"] = lambda d: [[*env, *script, str(d), media, *names]]
    if layout is not None and kind == "gzip" and shutil.which("umoci"):
        result["umoci"] = lambda d: [["umoci", "unpack", "--image", f"{layout}:bench", str(d)]]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/ocistore-unpack-bench"))
    parser.add_argument("--layers", type=Path, help="a directory of .tar layers to use instead")
    parser.add_argument("--max-mb", type=int, default=110, help="content cap per built layer")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kinds", default="gzip,zstd")
    parser.add_argument(
        "--dest-dir",
        type=Path,
        help="where trees are unpacked (default: --work; /dev/shm takes the disk out)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a directory holding another build of the ocistore package, timed as 'baseline'",
    )
    parser.add_argument("--no-umoci", action="store_true", help="leave umoci out")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.layers:
        tars = sorted(args.layers.glob("*.tar"))
    else:
        tars = build_layers(args.work, args.max_mb)
    blobs = compress(tars)
    total = sum(t.stat().st_size for t in tars)
    entries = 0
    for t in tars:
        with tarfile.open(t) as tf:
            entries += sum(1 for _ in tf)
    print(
        f"{len(tars)} layers, {total / 1e6:.0f} MB uncompressed, "
        f"{sum(p.stat().st_size for p in blobs['gzip']) / 1e6:.0f} MB gzip, "
        f"{sum(p.stat().st_size for p in blobs['zstd']) / 1e6:.0f} MB zstd, {entries} entries"
    )
    use_umoci = shutil.which("umoci") and not args.no_umoci
    layout = oci_layout(args.work, blobs["gzip"], tars) if use_umoci else None
    for kind in args.kinds.split(","):
        candidates = tools(kind, blobs[kind], layout, args.baseline)
        times: dict[str, list[float]] = {name: [] for name in candidates}
        cpu: dict[str, list[float]] = {name: [] for name in candidates}
        rss: dict[str, int] = dict.fromkeys(candidates, 0)
        engine_times: dict[str, list[float]] = {}
        for run in range(args.runs):
            order = list(candidates) if run % 2 == 0 else list(reversed(candidates))
            for name in order:
                dest = (args.dest_dir or args.work) / f"dest-{name}"
                shutil.rmtree(dest, ignore_errors=True)
                if name != "umoci":
                    dest.mkdir()
                subprocess.run(["sync"], check=True)
                elapsed = cpu_seconds = 0.0
                for argv in candidates[name](dest):
                    t, c, peak, engine = run_measured(argv, args.work / "rss")
                    elapsed += t
                    cpu_seconds += c
                    rss[name] = max(rss[name], peak)
                    if engine is not None:
                        engine_times.setdefault(name, []).append(engine)
                times[name].append(elapsed)
                cpu[name].append(cpu_seconds)
                shutil.rmtree(dest, ignore_errors=True)
        ours = statistics.median(times["ocistore"])
        our_cpu = statistics.median(cpu["ocistore"])
        print(f"\n{kind}: median of {args.runs} runs (all layers, in order)")
        for name, samples in times.items():
            median = statistics.median(samples)
            cpu_median = statistics.median(cpu[name])
            print(
                f"  {name:9s} {median:6.2f} s   ocistore is {median / ours:4.2f}x faster"
                f"   CPU {cpu_median:6.2f} s ({cpu_median / our_cpu:4.2f}x)"
                f"   peak RSS {rss[name] / 1024:6.1f} MiB"
            )
        for name, samples in engine_times.items():
            median = statistics.median(samples)
            print(f"  {name} in the engine (no interpreter start, no imports): {median:.2f} s")


if __name__ == "__main__":
    main()
