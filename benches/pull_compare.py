"""Pull (and pull + unpack) of a realistic image from a local registry: ocistore vs skopeo/umoci.

Builds a multi-layer gzip image from real files of this machine (Python's stdlib, /usr/share/doc,
GCC's libraries, /usr/bin, plus a layer of whiteouts and an opaque directory), pushes it to a
``docker-registry`` started on 127.0.0.1, then alternates runs of:

- ``ocistore pull`` into an empty store, and ``ocistore pull --unpack`` into an empty directory;
- ``skopeo copy docker://… oci:…`` and the same followed by ``umoci unpack``;
- GNU tar extracting the same layer files from local disk (a floor for unpacking).

Each run is a separate process; wall time and its peak RSS (GNU time) are recorded; medians and
ratios are printed as a markdown table (and JSON with ``--json``). The built layers are cached
in the work directory. Build the extension with ``maturin develop --release`` first. On a slow
or shared disk, ``--dest-dir /dev/shm`` compares the tools' own work instead of the disk's.

    .venv/bin/python benches/pull_compare.py [--runs 5] [--workdir /tmp/ocistore-bench]
        [--dest-dir /dev/shm] [--json results.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

LAYER_SOURCES: list[list[str]] = [
    ["usr/lib/python3.11", "usr/lib/python3"],
    ["usr/share/doc"],
    ["usr/lib/gcc"],
    ["usr/bin"],
]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
READ = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(READ):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def gzip_layer(tar_command: list[str], out: Path) -> tuple[str, int]:
    """Run ``tar_command`` (writing a tar to stdout), gzip it with pigz; returns diff_id, size."""
    diff = hashlib.sha256()
    size = 0
    with out.open("wb") as sink:
        tar = subprocess.Popen(tar_command, stdout=subprocess.PIPE)
        pigz = subprocess.Popen(["pigz", "-6", "-c"], stdin=subprocess.PIPE, stdout=sink)
        assert tar.stdout is not None and pigz.stdin is not None
        while chunk := tar.stdout.read(READ):
            diff.update(chunk)
            size += len(chunk)
            pigz.stdin.write(chunk)
        pigz.stdin.close()
        if tar.wait() not in (0, 1) or pigz.wait() != 0:  # tar 1: "file changed as we read it"
            raise RuntimeError(f"building {out} failed")
    return "sha256:" + diff.hexdigest(), size


def build_image(workdir: Path) -> dict[str, object]:
    """Layers, config and manifest under ``workdir/image`` (cached)."""
    image_dir = workdir / "image"
    meta_path = image_dir / "image.json"
    if meta_path.exists():
        return dict(json.loads(meta_path.read_text()))
    image_dir.mkdir(parents=True, exist_ok=True)
    layers = []
    for i, paths in enumerate(LAYER_SOURCES):
        present = [p for p in paths if Path("/", p).exists()]
        out = image_dir / f"layer{i}.tar.gz"
        diff_id, raw = gzip_layer(
            ["tar", "--numeric-owner", "--sort=name", "-C", "/", "-cf", "-", *present], out
        )
        layers.append({"path": str(out), "diff_id": diff_id, "uncompressed": raw})
        print(f"layer {i}: {raw / 1e6:.0f} MB -> {out.stat().st_size / 1e6:.0f} MB", flush=True)
    # A last layer like real images have: whiteouts, an opaque directory, new files.
    staging = Path(tempfile.mkdtemp(prefix="bench-layer-"))
    try:
        doc = Path("/usr/share/doc")
        for victim in sorted(p.name for p in doc.iterdir())[:40]:
            (staging / "usr/share/doc").mkdir(parents=True, exist_ok=True)
            (staging / "usr/share/doc" / f".wh.{victim}").touch()
        test_dir = staging / "usr/lib/python3.11"
        test_dir.mkdir(parents=True, exist_ok=True)
        (test_dir / ".wh.test").touch()
        opaque = staging / "usr/lib/gcc"
        opaque.mkdir(parents=True, exist_ok=True)
        (opaque / ".wh..wh..opq").touch()
        (opaque / "README").write_text("replaced\n")
        out = image_dir / f"layer{len(layers)}.tar.gz"
        diff_id, raw = gzip_layer(
            ["tar", "--numeric-owner", "--sort=name", "-C", str(staging), "-cf", "-", "usr"], out
        )
        layers.append({"path": str(out), "diff_id": diff_id, "uncompressed": raw})
    finally:
        shutil.rmtree(staging)
    for layer in layers:
        path = Path(str(layer["path"]))
        layer["digest"] = sha256_file(path)
        layer["size"] = path.stat().st_size
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [layer["diff_id"] for layer in layers]},
        }
    ).encode()
    (image_dir / "config.json").write_bytes(config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                "size": len(config),
            },
            "layers": [
                {"mediaType": GZIP_LAYER, "digest": layer["digest"], "size": layer["size"]}
                for layer in layers
            ],
        }
    ).encode()
    (image_dir / "manifest.json").write_bytes(manifest)
    meta = {"layers": layers, "manifest_digest": "sha256:" + hashlib.sha256(manifest).hexdigest()}
    meta_path.write_text(json.dumps(meta, indent=1))
    return meta


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_registry(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = workdir / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'registry'}\n"
        "  redirect:\n    disable: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    process = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "registry.log").open("ab"),
        start_new_session=True,
    )
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1).close()
            return process, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    process.terminate()
    raise RuntimeError("registry did not start")


def push_image(host: str, meta: dict[str, object], workdir: Path) -> str:
    from ocistore.registry import RegistryClient
    from ocistore.registry.mirrors import upstream_host

    image_dir = workdir / "image"
    config = (image_dir / "config.json").read_bytes()
    with RegistryClient(upstream_host(host, plain_http=True)) as client:
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        if client.blob_exists("bench/realistic", config_digest) is None:
            import io

            client.upload_blob("bench/realistic", config_digest, io.BytesIO(config), len(config))
        for layer in meta["layers"]:  # type: ignore[attr-defined]
            if client.blob_exists("bench/realistic", layer["digest"]) is None:
                with open(layer["path"], "rb") as handle:
                    client.upload_blob("bench/realistic", layer["digest"], handle, layer["size"])
        client.put_manifest(
            "bench/realistic", "v1", (image_dir / "manifest.json").read_bytes(), OCI_MANIFEST
        )
    return f"{host}/bench/realistic:v1"


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one command, measured by GNU time.

    (``wait4`` here would report this process's own size: a forked child starts with it.)
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        start = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", report.name, *command],
            stdout=subprocess.DEVNULL,
            check=False,
        )
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"failed ({done.returncode}): {' '.join(command)}")
        peak_kib = int(report.read().strip().splitlines()[-1])
    return elapsed, peak_kib / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ocistore-bench"))
    parser.add_argument("--concurrency", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--dest-dir",
        type=Path,
        help="where stores, layouts and root filesystems are written (e.g. /dev/shm, to "
        "compare CPU work instead of this machine's disk); default: the work directory",
    )
    args = parser.parse_args()
    workdir: Path = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    meta = build_image(workdir)
    layers = meta["layers"]
    assert isinstance(layers, list)
    compressed = sum(int(layer["size"]) for layer in layers)
    uncompressed = sum(int(layer["uncompressed"]) for layer in layers)
    print(
        f"image: {len(layers)} layers, {compressed / 1e6:.0f} MB gzip, "
        f"{uncompressed / 1e6:.0f} MB tar"
    )
    registry, host = start_registry(workdir)
    scratch = (args.dest_dir or workdir) / "ocistore-bench-scratch"
    try:
        ref = push_image(host, meta, workdir)
        py = sys.executable
        pull_code = (
            "import sys, ocistore\n"
            "s = ocistore.Store(sys.argv[1])\n"
            "u = sys.argv[3] if len(sys.argv) > 3 else None\n"
            "o = ocistore.RegistryOptions(plain_http=True)\n"
            f"ocistore.pull(sys.argv[2], store=s, unpack=u, options=o,"
            f" max_concurrent_downloads={args.concurrency})\n"
        )
        oci = f"oci:{scratch}/layout:v1"
        tar_cmd = " && ".join(f"tar -xzf {layer['path']} -C {scratch}/tar" for layer in layers)
        jobs: dict[str, tuple[list[str], list[str]]] = {
            # name: (commands run in sequence, directories to create first)
            "ocistore pull": ([py, "-c", pull_code, f"{scratch}/store", ref], []),
            "ocistore pull+unpack": (
                [py, "-c", pull_code, f"{scratch}/store", ref, f"{scratch}/rootfs"],
                [],
            ),
            "skopeo copy": (
                ["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}", oci],
                [],
            ),
            "skopeo copy + umoci unpack": (
                [
                    "sh",
                    "-c",
                    f"skopeo copy -q --src-tls-verify=false docker://{ref} {oci} && "
                    f"umoci unpack --image {scratch}/layout:v1 {scratch}/bundle",
                ],
                [],
            ),
            "GNU tar -xzf (local layers)": (["sh", "-c", tar_cmd], [f"{scratch}/tar"]),
        }
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in jobs}
        for run in range(args.runs):
            for name, (command, dirs) in jobs.items():
                shutil.rmtree(scratch, ignore_errors=True)
                scratch.mkdir(parents=True)
                for directory in dirs:
                    Path(directory).mkdir(parents=True)
                subprocess.run(["sync"], check=True)
                results[name].append(timed(command))
            print(f"run {run + 1}/{args.runs} done", flush=True)
        shutil.rmtree(scratch, ignore_errors=True)
    finally:
        registry.terminate()
        registry.wait()
    medians = {name: statistics.median(t for t, _ in values) for name, values in results.items()}
    print()
    print("| job | median s | min s | peak RSS MiB | MB/s (gzip) |")
    print("|---|---|---|---|---|")
    for name, values in results.items():
        times = [t for t, _ in values]
        rss = max(r for _, r in values)
        print(
            f"| {name} | {medians[name]:.2f} | {min(times):.2f} | {rss:.0f} | "
            f"{compressed / 1e6 / medians[name]:.0f} |"
        )
    ratios = {
        "skopeo copy / ocistore pull": medians["skopeo copy"] / medians["ocistore pull"],
        "skopeo+umoci / ocistore pull+unpack": medians["skopeo copy + umoci unpack"]
        / medians["ocistore pull+unpack"],
        "GNU tar local / ocistore pull+unpack": medians["GNU tar -xzf (local layers)"]
        / medians["ocistore pull+unpack"],
    }
    print()
    for name, ratio in ratios.items():
        print(f"{name}: {ratio:.2f}x")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "results": results,
                    "medians": medians,
                    "ratios": ratios,
                    "compressed": compressed,
                    "uncompressed": uncompressed,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
