"""The Python sides of the jobs, each run in its own process: ``python clients.py JOB ARGS``.

ocistore through its library API (as node tooling uses it), and the Python peers python-dxf
and oras-py downloading the same blobs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

CHUNK = 1 << 20
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json,"
    "application/vnd.docker.distribution.manifest.v2+json"
)


def ocistore_pull(store: str, ref: str, unpack: str = "", ranges: str = "") -> None:
    """Pull into ``store`` (and unpack into ``unpack`` while downloading, if given).

    ``ranges``: "" the default (one stream per layer), "slow" parallel ranges when a layer's
    first chunk comes slowly, "on" parallel ranges from the start.
    """
    import ocistore
    from ocistore.registry.ranges import ParallelFetch

    parallel = {
        "": ParallelFetch(),
        "slow": ParallelFetch(max_per_layer=4),
        "on": ParallelFetch(max_per_layer=4, slow_below=None),
    }[ranges]
    ocistore.pull(
        ref,
        store=ocistore.Store(store),
        unpack=unpack or None,
        options=ocistore.RegistryOptions(plain_http=True, parallel=parallel),
    )


def ocistore_unpack(store: str, ref: str, dest: str) -> None:
    """Apply every layer of a stored image into ``dest`` (diff_ids verified)."""
    import ocistore

    ocistore.Store(store).unpack(ref, dest)


def ocistore_repull(store: str, ref: str) -> None:
    """kubelet's re-pull with imagePullPolicy Always of an image already in the store."""
    import ocistore
    from ocistore.manager import ImageManager

    manager = ImageManager(
        ocistore.Store(store), registry=ocistore.RegistryOptions(plain_http=True)
    )
    manager.ensure_image(ref, pull_policy="Always")


def ocistore_warm_repulls(store: str, ref: str, count: str) -> None:
    """``count`` re-pulls (policy Always) of a present image in one process, after one to warm
    up; prints each call's seconds as JSON (what a long-lived node agent pays per check)."""
    import ocistore
    from ocistore.manager import ImageManager

    # kubelet's registryPullQPS (5/s) would throttle back-to-back checks: 0 lifts it.
    manager = ImageManager(
        ocistore.Store(store),
        registry=ocistore.RegistryOptions(plain_http=True),
        registry_pull_qps=0,
    )
    manager.ensure_image(ref, pull_policy="Always")
    seconds = []
    for _ in range(int(count)):
        start = time.perf_counter()
        manager.ensure_image(ref, pull_policy="Always")
        seconds.append(time.perf_counter() - start)
    print(json.dumps(seconds))


def ocistore_sha256(block: str, cpu_seconds: str) -> None:
    """Feeds one in-memory block to ``ocistore.Digester`` until ``cpu_seconds`` of CPU time are
    spent; prints bytes and CPU seconds as JSON (the way ``openssl speed`` measures)."""
    import ocistore

    data = os.urandom(int(block))
    digester = ocistore.Digester("sha256")
    total = 0
    start = time.thread_time()
    while time.thread_time() - start < float(cpu_seconds):
        digester.update(data)
        total += len(data)
    spent = time.thread_time() - start
    digester.digest()
    print(json.dumps({"bytes": total, "cpu_seconds": spent}))


def _manifest(host: str, repository: str, tag: str) -> dict[str, object]:
    import httpx

    answer = httpx.get(
        f"http://{host}/v2/{repository}/manifests/{tag}", headers={"Accept": MANIFEST_TYPES}
    )
    answer.raise_for_status()
    document: dict[str, object] = answer.json()
    return document


def _blob_path(dest: str, digest: str) -> Path:
    path = Path(dest, "blobs", *digest.split(":"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _split(ref: str) -> tuple[str, str, str]:
    host, rest = ref.split("/", 1)
    repository, tag = rest.rsplit(":", 1)
    return host, repository, tag


def dxf_pull(ref: str, dest: str) -> None:
    """python-dxf: download config and layers (digest-verified by pull_blob) into ``dest``."""
    from dxf import DXF

    host, repository, tag = _split(ref)
    client = DXF(host, repository, insecure=True)
    manifest = _manifest(host, repository, tag)  # dxf's get_manifest wants mediaType set
    for desc in [manifest["config"], *manifest["layers"]]:  # type: ignore[list-item]
        with _blob_path(dest, desc["digest"]).open("wb") as sink:
            for chunk in client.pull_blob(desc["digest"], chunk_size=CHUNK):
                sink.write(chunk)


def oras_pull(ref: str, dest: str) -> None:
    """oras-py: download config and layers with download_blob (it does not verify digests)."""
    import oras.client

    host = _split(ref)[0]
    client = oras.client.OrasClient(hostname=host, insecure=True)
    manifest = client.get_manifest(ref)
    for desc in [manifest["config"], *manifest["layers"]]:
        client.download_blob(ref, desc["digest"], str(_blob_path(dest, desc["digest"])))


JOBS = {
    "ocistore-pull": ocistore_pull,
    "ocistore-unpack": ocistore_unpack,
    "ocistore-repull": ocistore_repull,
    "ocistore-sha256": ocistore_sha256,
    "ocistore-warm-repulls": ocistore_warm_repulls,
    "dxf-pull": dxf_pull,
    "oras-pull": oras_pull,
}

if __name__ == "__main__":
    JOBS[sys.argv[1]](*sys.argv[2:])
