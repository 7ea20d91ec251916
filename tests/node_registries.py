"""Real registries for tests outside tests/registry: plain HTTP, basic auth and token auth,
one storage. The token issuer logs which user asked for each token, in order."""

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
    TokenIssuer,
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
    token: Registry
    issuer: TokenIssuer

    def token_users(self) -> list[str | None]:
        """The user of every token request so far (None: anonymous), in order."""
        return [request["user"] for request in self.issuer.requests]  # type: ignore[misc]


@pytest.fixture(scope="session")
def manager_registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagerRegistries]:
    """A plain, a basic-auth and a token-auth registry sharing one storage directory."""
    if not Path(REGISTRY_BINARY).exists() or shutil.which("htpasswd") is None:
        pytest.fail("docker-registry and htpasswd are required (run scripts/setup)")
    base = tmp_path_factory.mktemp("manager-registries")
    storage = base / "storage"
    htpasswd = make_htpasswd(base / "htpasswd", TEST_USER, TEST_PASSWORD)
    issuer = TokenIssuer(base / "token-issuer")
    plain = start_registry(
        "plain", base / "plain", registry_config(port=free_port(), storage=storage)
    )
    started = [plain]
    try:
        basic = start_registry(
            "basic",
            base / "basic",
            registry_config(port=free_port(), storage=storage, htpasswd=htpasswd),
        )
        started.append(basic)
        token = start_registry(
            "token",
            base / "token",
            registry_config(port=free_port(), storage=storage, token=issuer),
        )
        started.append(token)
        yield ManagerRegistries(plain, basic, TEST_USER, TEST_PASSWORD, token, issuer)
    finally:
        for registry in started:
            registry.stop()
        issuer.close()
