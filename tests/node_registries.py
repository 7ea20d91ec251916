"""Real registries for tests outside tests/registry: plain HTTP and basic auth, one storage."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# The registry fixtures live with the registry client's tests; share them.
sys.path.insert(0, str(Path(__file__).resolve().parent / "registry"))

from regfixtures.registry import (
    REGISTRY_BINARY,
    TEST_PASSWORD,
    TEST_USER,
    Registry,
    free_port,
    make_htpasswd,
    registry_config,
    start_registry,
)


@dataclass
class ManagerRegistries:
    plain: Registry
    basic: Registry
    user: str
    password: str


@pytest.fixture(scope="session")
def manager_registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagerRegistries]:
    """A plain and a basic-auth registry sharing one storage directory."""
    if not Path(REGISTRY_BINARY).exists() or shutil.which("htpasswd") is None:
        pytest.fail("docker-registry and htpasswd are required (run scripts/setup)")
    base = tmp_path_factory.mktemp("manager-registries")
    storage = base / "storage"
    htpasswd = make_htpasswd(base / "htpasswd", TEST_USER, TEST_PASSWORD)
    plain = start_registry(
        "plain", base / "plain", registry_config(port=free_port(), storage=storage)
    )
    try:
        basic = start_registry(
            "basic",
            base / "basic",
            registry_config(port=free_port(), storage=storage, htpasswd=htpasswd),
        )
    except BaseException:
        plain.stop()
        raise
    try:
        yield ManagerRegistries(plain, basic, TEST_USER, TEST_PASSWORD)
    finally:
        plain.stop()
        basic.stop()
