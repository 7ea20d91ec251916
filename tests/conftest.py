"""Settings and fixtures shared by every test area."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from ci import cannot_run
from containerd_daemon import Containerd, ContainerdUnavailable
from hypothesis import settings
from node_registries import manager_registries

from ocistore.registry.connections import shared_connections

# Timing deadlines make property tests flaky on a loaded 2-core machine.
settings.register_profile("ocistore", deadline=None)
settings.load_profile("ocistore")

# Loopback traffic must never be routed through a proxy from the environment.
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_name, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "*"


@pytest.fixture(scope="session")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    """A private containerd (own root, state and socket; CRI disabled), stopped by its pid.

    In CI (``CI=true``, root) a containerd that cannot start fails the test; elsewhere the test
    is skipped with the reason, loudly.
    """
    daemon = Containerd(tmp_path_factory.mktemp("containerd"))
    try:
        daemon.start()
    except ContainerdUnavailable as exc:
        cannot_run(f"containerd oracle unavailable: {exc}")
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(autouse=True)
def fresh_registry_connections() -> Iterator[None]:
    """Each test starts with no pooled connections, cached tokens or plain-HTTP decisions."""
    yield
    shared_connections().close()


__all__ = ["containerd", "fresh_registry_connections", "manager_registries"]
