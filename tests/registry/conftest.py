"""Session-scoped real registries (plain, basic auth, TLS, token) and a fault proxy."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

from ocistore.registry import RegistryClient, RetryPolicy, StaticCredential
from ocistore.registry.mirrors import upstream_host

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


@dataclass
class Setup:
    """One registry setup as a client sees it: where, which CA, which credentials."""

    name: str
    registry: Registry
    ca_file: str | None
    credentials: list[StaticCredential]

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` (the registry part of references)."""
        return self.registry.host

    def client(self, **kwargs: Any) -> RegistryClient:
        """A client for this setup with the right CA and credentials."""
        kwargs.setdefault("credentials", self.credentials)
        kwargs.setdefault("ca_file", self.ca_file)
        kwargs.setdefault("retry", FAST_RETRY)
        return RegistryClient(upstream_host(self.host), **kwargs)


FAST_RETRY = RetryPolicy(attempts=4, backoff_initial=0.01, backoff_max=0.05, retry_after_max=2.0)
SETUP_NAMES = ["plain", "basic", "tls", "token"]


def make_setup(registries: Registries, name: str) -> Setup:
    """The client-side view of one of the registries."""
    registry = getattr(registries, name)
    credentials = [StaticCredential(TEST_USER, TEST_PASSWORD)] if name in ("basic", "token") else []
    ca_file = str(registries.tls_files.ca_cert) if name == "tls" else None
    return Setup(name, registry, ca_file, credentials)


@pytest.fixture(params=SETUP_NAMES)
def setup(request: pytest.FixtureRequest, registries: Registries) -> Setup:
    """Each test using this runs against every registry setup."""
    return make_setup(registries, request.param)


@pytest.fixture
def plain_client(registries: Registries) -> Iterator[RegistryClient]:
    """A client of the plain registry."""
    with make_setup(registries, "plain").client() as client:
        yield client


def unique_repository(prefix: str = "test") -> str:
    """A repository name no other test uses (the registries share storage)."""
    return f"{prefix}/{uuid.uuid4().hex[:12]}"
