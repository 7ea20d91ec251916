"""Fixtures for the content-store tests: a fresh store root per test, small built images."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ocistore.store import Store
from ocistore.testing.imagebuild import BuiltImage, BuiltIndex, build_image, build_index


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """An empty store under the test's temporary directory."""
    s = Store(tmp_path / "store")
    yield s
    s.close()


@pytest.fixture
def small_image() -> BuiltImage:
    """A two-layer gzip image (base + app)."""
    return build_image(
        [
            {"etc/os-release": b"ID=test\n", "bin/sh": b"#!fake\n"},
            {"app/main.py": b"print('hi')\n", "app/data.bin": bytes(range(256)) * 16},
        ],
        config={"Cmd": ["/bin/sh"]},
    )


@pytest.fixture
def multi_arch() -> BuiltIndex:
    """An index over two one-layer images, linux/amd64 then linux/arm64."""
    amd = build_image([{"arch": b"amd64"}], platform="linux/amd64")
    arm = build_image([{"arch": b"arm64"}], platform="linux/arm64")
    return build_index([amd, arm])
