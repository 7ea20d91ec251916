"""The stage: a local docker-registry with the image pushed, and warm copies for the jobs."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import ocistore
from peerbench import image, wan
from peerbench.jobs import Setup, skopeo_copy
from peerbench.measure import process_cpu_seconds
from peerbench.runtimes import Runtimes

TESTS_REGISTRY = Path(__file__).resolve().parents[2] / "tests" / "registry"


@contextlib.contextmanager
def local_registry(
    directory: Path, network: wan.Namespace | None = None
) -> Iterator[tuple[str, object]]:
    """A ``docker-registry`` (the tests' starter) on 127.0.0.1, or inside ``network``'s
    namespace; yields its host and handle."""
    sys.path.insert(0, str(TESTS_REGISTRY))
    from regfixtures.registry import free_port, registry_config, start_registry

    shutil.rmtree(directory, ignore_errors=True)
    config = registry_config(port=free_port(), storage=directory / "storage")
    if network is not None:
        config["http"]["addr"] = f"{network.inner_address}:5000"  # type: ignore[index]
    netns = network.name if network is not None else None
    registry = start_registry("bench", directory, config, netns=netns)
    try:
        yield registry.host, registry
    finally:
        registry.stop()


def registry_cpu(registry: object) -> float:
    """The registry process's CPU seconds so far."""
    return process_cpu_seconds(registry.process.pid)  # type: ignore[attr-defined]


def request_counter(registry: object) -> int:
    """How many requests the registry has logged so far."""
    from regfixtures.registry import registry_requests

    return len(registry_requests(registry))  # type: ignore[arg-type]


def prepare(
    workdir: Path, run_root: Path, size_mb: int, host: str, runtimes: Runtimes
) -> tuple[Setup, image.ImageInfo]:
    """Builds (or reuses) the image in ``workdir``, pushes it with ocistore, makes the warm
    copies and the scratch directory under ``run_root`` (the filesystem measured on)."""
    seed = ocistore.Store(workdir / "seed-store")
    info = image.build(seed, size_mb, workdir)
    refs = image.push(seed, info, host)
    tags = {c: info.tag(c) for c in refs}
    run_dir = run_root / f"run-{size_mb}mb"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    policy = run_dir / "policy.json"
    policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    warm_store = ocistore.Store(run_dir / "warm-store")
    layouts = {}
    for compression, ref in refs.items():
        ocistore.pull(ref, store=warm_store, options=ocistore.RegistryOptions(plain_http=True))
        layouts[compression] = run_dir / f"warm-{compression}"
        if shutil.which("skopeo"):
            subprocess.run(
                skopeo_copy(policy, ref, layouts[compression], tags[compression]), check=True
            )
    tree = warm_store.unpack(refs["gzip"], run_dir / "warm-tree")
    blobs = {
        compression: [
            warm_store.blob_path(layer.digest) for layer in warm_store.manifest(ref).layers
        ]
        for compression, ref in refs.items()
    }
    setup = Setup(
        host=host,
        refs=refs,
        tags=tags,
        blobs=blobs,
        warm_store=warm_store.root,
        warm_layouts=layouts,
        warm_tree=tree,
        scratch=run_dir / "scratch",
        policy=policy,
        runtimes=runtimes,
    )
    return setup, info
