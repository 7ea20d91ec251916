"""The test registries themselves behave like the real thing (so later tests mean something)."""

from __future__ import annotations

import httpx
from regfixtures.proxy import Fault, FaultProxy
from regfixtures.registry import TEST_PASSWORD, TEST_USER
from regfixtures.setups import Registries


def test_plain_registry_answers_v2(registries: Registries) -> None:
    response = httpx.get(f"{registries.plain.url}/v2/")
    assert response.status_code == 200


def test_basic_registry_challenges_and_accepts_the_test_user(registries: Registries) -> None:
    anonymous = httpx.get(f"{registries.basic.url}/v2/")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic ")
    authed = httpx.get(f"{registries.basic.url}/v2/", auth=(TEST_USER, TEST_PASSWORD))
    assert authed.status_code == 200


def test_tls_registry_is_trusted_only_with_the_test_ca(registries: Registries) -> None:
    context = registries.tls_files.client_context()
    with httpx.Client(verify=context) as client:
        assert client.get(f"{registries.tls.url}/v2/").status_code == 200
    try:
        httpx.get(f"{registries.tls.url}/v2/")
    except httpx.ConnectError:
        pass
    else:
        raise AssertionError("the test CA should not be trusted by default")


def test_token_registry_accepts_a_token_from_the_issuer(registries: Registries) -> None:
    challenge = httpx.get(f"{registries.token.url}/v2/")
    assert challenge.status_code == 401
    assert 'realm="' + registries.issuer.url in challenge.headers["www-authenticate"]
    token = httpx.get(
        registries.issuer.url,
        params={"service": registries.issuer.service},
        auth=(TEST_USER, TEST_PASSWORD),
    ).json()["token"]
    ok = httpx.get(f"{registries.token.url}/v2/", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200


def test_fault_proxy_forwards_and_injects(proxy: FaultProxy) -> None:
    assert httpx.get(f"{proxy.url}/v2/").status_code == 200
    proxy.add(Fault(path="^/v2/$", status=503, headers={"Retry-After": "1"}))
    assert httpx.get(f"{proxy.url}/v2/").status_code == 503
    assert httpx.get(f"{proxy.url}/v2/").status_code == 200
    assert [s.status for s in proxy.requests("GET", "^/v2/$")] == [200, 503, 200]
