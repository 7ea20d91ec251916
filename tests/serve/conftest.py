"""Fixtures of the mirror's tests (the registries come from tests/node_registries.py)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from node_registries import ManagerRegistries
from servefixtures import BuiltImage, BuiltIndex, Served, image_variants, publish, running_server

import ocistore
from ocistore.store import Store


@pytest.fixture(scope="module")
def served(
    manager_registries: ManagerRegistries, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """Single- and multi-arch, Docker and OCI images pulled anonymously, served on 127.0.0.1."""
    base = tmp_path_factory.mktemp("serve-protocol")
    upstream = manager_registries.plain.host
    store = Store(base / "store")
    prefix = f"serve{uuid.uuid4().hex[:6]}"
    images: dict[str, tuple[str, BuiltImage | BuiltIndex]] = {}
    for variant, image in image_variants().items():
        path = f"{prefix}/{variant}"
        publish(image, f"{upstream}/{path}:v1", base)
        ocistore.pull(f"{upstream}/{path}:v1", store=store, platform="linux/amd64")
        images[variant] = (path, image)
    with running_server(base / "store") as server:
        yield Served(server, store, manager_registries.plain, upstream, images)
