"""Session-scoped real registries (plain, basic auth, TLS, token) and a fault proxy."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from regfixtures.proxy import FaultProxy
from regfixtures.registry import (
    REGISTRY_BINARY,
    TEST_PASSWORD,
    TEST_USER,
    Registry,
    TokenIssuer,
    free_port,
    make_htpasswd,
    make_tls,
    registry_config,
    start_registry,
)
from regfixtures.setups import SETUP_NAMES, Registries, Setup, make_setup

from ocistore.registry import RegistryClient

pytestmark = pytest.mark.registry


@pytest.fixture(scope="session")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registries]:
    """Start the four registries once for the whole session."""
    if not Path(REGISTRY_BINARY).exists() or shutil.which("htpasswd") is None:
        pytest.fail("docker-registry and htpasswd are required (run scripts/setup)")
    base = tmp_path_factory.mktemp("registries")
    storage = base / "storage"
    tls = make_tls(base / "tls")
    htpasswd = make_htpasswd(base / "htpasswd", TEST_USER, TEST_PASSWORD)
    issuer = TokenIssuer(base / "token-issuer", anonymous_pull=False)
    started: list[Registry] = []
    try:

        def start(name: str, **kwargs: object) -> Registry:
            config = registry_config(port=free_port(), storage=storage, **kwargs)  # type: ignore[arg-type]
            registry = start_registry(name, base / name, config, ca_cert=tls.ca_cert)
            started.append(registry)
            return registry

        yield Registries(
            plain=start("plain"),
            basic=start("basic", htpasswd=htpasswd),
            tls=start("tls", tls=tls),
            token=start("token", token=issuer),
            tls_files=tls,
            issuer=issuer,
            storage=storage,
        )
    finally:
        for registry in started:
            registry.stop()
        issuer.close()


@pytest.fixture
def proxy(registries: Registries) -> Iterator[FaultProxy]:
    """A fault proxy in front of the plain registry (fresh rules and log per test)."""
    fault_proxy = FaultProxy(registries.plain.url)
    try:
        yield fault_proxy
    finally:
        fault_proxy.close()


@pytest.fixture(params=SETUP_NAMES)
def setup(request: pytest.FixtureRequest, registries: Registries) -> Setup:
    """Each test using this runs against every registry setup."""
    return make_setup(registries, request.param)


@pytest.fixture
def plain_client(registries: Registries) -> Iterator[RegistryClient]:
    """A client of the plain registry."""
    with make_setup(registries, "plain").client() as client:
        yield client
