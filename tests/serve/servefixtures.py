"""Helpers for the mirror's tests: a running ``ocistore serve``, images published by skopeo.

The image builders are re-exported from here, so that the tests import them from one place.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from publishing import copy_with_skopeo as publish
from regfixtures.registry import Registry

from ocistore.serve import peers
from ocistore.store import Store
from ocistore.testing.imagebuild import BuiltImage, BuiltIndex, build_image, build_index

__all__ = [
    "BuiltImage",
    "BuiltIndex",
    "Served",
    "Server",
    "build_image",
    "build_index",
    "image_variants",
    "publish",
    "running_server",
    "start_server",
    "unique_files",
    "wait_for",
    "write_hosts_toml",
]


@dataclass
class Server:
    """A running ``ocistore serve`` process (stopped by its pid)."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")

    def access_log(self) -> list[str]:
        return [
            line
            for line in self.log_path.read_text(errors="replace").splitlines()
            if "ocistore.serve.access" in line
        ]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@dataclass
class Served:
    """A store holding every image variant, pulled from ``registry``, and a server over it."""

    server: Server
    store: Store
    registry: Registry
    upstream: str
    images: dict[str, tuple[str, BuiltImage | BuiltIndex]]  # variant -> (repository path, image)


def start_server(
    store: Path,
    *args: str,
    listen: str = "127.0.0.1:0",
    prefix: Sequence[str] = (),
    log_path: Path | None = None,
) -> Server:
    """``ocistore --store STORE serve --listen LISTEN ARGS`` (``prefix``: ``ip netns exec``)."""
    log_path = log_path or store.parent / f"serve-{uuid.uuid4().hex[:8]}.log"
    log = log_path.open("ab")
    argv = [*prefix, sys.executable, "-m", "ocistore", "--store", str(store), "serve"]
    process = subprocess.Popen(
        [*argv, "--listen", listen, *args],
        stdout=subprocess.PIPE,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 60)
    line = process.stdout.readline().decode().strip() if ready else ""
    if not line.startswith("http://"):
        process.kill()
        process.wait()
        process.stdout.close()
        raise RuntimeError(f"ocistore serve did not start: {log_path.read_text()[-2000:]}")
    return Server(line, process, log_path)


@contextmanager
def running_server(store: Path, *args: str, **kwargs: object) -> Iterator[Server]:
    """Context manager form of :func:`start_server`."""
    server = start_server(store, *args, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


def write_hosts_toml(
    hosts_dir: Path,
    registry: str,
    mirrors: Sequence[str],
    capabilities: Sequence[str] = ("pull", "resolve"),
) -> Path:
    """containerd's ``certs.d/<registry>/hosts.toml``: the mirrors in order, then upstream."""
    text = peers.hosts_toml(f"http://{registry}", mirrors, capabilities)
    return peers.write_hosts_toml(hosts_dir, registry, text)


def unique_files(label: str, size: int = 4096) -> dict[str, bytes]:
    """Files whose layer no other test image shares (random content)."""
    return {f"data/{label}": os.urandom(size), "etc/label": label.encode()}


def image_variants() -> dict[str, BuiltImage | BuiltIndex]:
    """Single-arch and multi-arch images, Docker and OCI media types."""
    variants: dict[str, BuiltImage | BuiltIndex] = {}
    for media in ("oci", "docker"):
        variants[f"single-{media}"] = build_image(
            [unique_files(f"base-{media}"), unique_files(f"top-{media}")], media_types=media
        )
        variants[f"multi-{media}"] = build_index(
            [
                build_image([unique_files(f"{media}-{p}")], platform=p, media_types=media)
                for p in ("linux/amd64", "linux/arm64")
            ],
            media_types=media,
        )
    return variants


def wait_for(predicate: object, timeout: float = 60.0) -> None:
    """Polls ``predicate()`` until it is true (never a timing assertion: a bound on waiting)."""
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.05)
