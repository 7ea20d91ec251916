"""Session-scoped real registries (plain, basic auth, TLS, token) and a fault proxy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from regfixtures.proxy import FaultProxy
from regfixtures.registry import (
    TEST_PASSWORD,
    TEST_USER,
    TokenIssuer,
    make_htpasswd,
    make_tls,
    missing_registry_tools,
    registries_sharing,
)
from regfixtures.setups import SETUP_NAMES, Registries, Setup, make_setup

from ocistore.registry import RegistryClient

pytestmark = pytest.mark.registry


@pytest.fixture(scope="session")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registries]:
    """Start the four registries once for the whole session."""
    if (missing := missing_registry_tools()) is not None:
        pytest.fail(missing)
    base = tmp_path_factory.mktemp("registries")
    tls = make_tls(base / "tls")
    htpasswd = make_htpasswd(base / "htpasswd", TEST_USER, TEST_PASSWORD)
    issuer = TokenIssuer(base / "token-issuer", anonymous_pull=False)
    setups = {"plain": {}, "basic": {"htpasswd": htpasswd}, "tls": {"tls": tls}}
    setups["token"] = {"token": issuer}
    try:
        with registries_sharing(base, base / "storage", setups, ca_cert=tls.ca_cert) as started:
            yield Registries(
                plain=started["plain"],
                basic=started["basic"],
                tls=started["tls"],
                token=started["token"],
                tls_files=tls,
                issuer=issuer,
                storage=base / "storage",
            )
    finally:
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
