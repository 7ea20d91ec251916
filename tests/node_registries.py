"""Real registries for tests outside tests/registry: plain HTTP, basic auth and token auth,
one storage. The token issuer logs which user asked for each token, in order."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# The registry fixtures live with the registry client's tests; share them.
sys.path.insert(0, str(Path(__file__).resolve().parent / "registry"))

from regfixtures.registry import (
    TEST_PASSWORD,
    TEST_USER,
    Registry,
    TokenIssuer,
    make_htpasswd,
    missing_registry_tools,
    registries_sharing,
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
    if (missing := missing_registry_tools()) is not None:
        pytest.fail(missing)
    base = tmp_path_factory.mktemp("manager-registries")
    htpasswd = make_htpasswd(base / "htpasswd", TEST_USER, TEST_PASSWORD)
    issuer = TokenIssuer(base / "token-issuer")
    setups = {"plain": {}, "basic": {"htpasswd": htpasswd}, "token": {"token": issuer}}
    try:
        with registries_sharing(base, base / "storage", setups) as started:
            yield ManagerRegistries(
                started["plain"], started["basic"], TEST_USER, TEST_PASSWORD,
                started["token"], issuer,
            )  # fmt: skip
    finally:
        issuer.close()
