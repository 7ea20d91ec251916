"""Session-scoped real registries (plain, basic auth, TLS, token) and a fault proxy."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from regfixtures.proxy import FaultProxy
from regfixtures.registry import (
    REGISTRY_BINARY,
    TEST_PASSWORD,
    TEST_USER,
    Registry,
    TlsFiles,
    TokenIssuer,
    free_port,
    make_htpasswd,
    make_tls,
    registry_config,
    start_registry,
)

pytestmark = pytest.mark.registry


@dataclass
class Registries:
    """The four setups; they share one storage directory, so what one holds all serve."""

    plain: Registry
    basic: Registry
    tls: Registry
    token: Registry
    tls_files: TlsFiles
    issuer: TokenIssuer
    storage: Path


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
