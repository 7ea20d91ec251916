"""What one process keeps between registry calls: connections, TLS contexts, tokens, schemes.

Every ``resolve``/``pull`` builds a short-lived session; these tests show through the real
registries' own logs that the sessions of a process share one keep-alive connection per host,
one bearer token per scope, one ``SSLContext`` per CA configuration and the plain-HTTP decision.
"""

from __future__ import annotations

import os
import threading

import pytest
from regfixtures.blobs import push_raw, raw_image
from regfixtures.registry import registry_client_addresses
from regfixtures.setups import Registries, make_setup, unique_repository

import ocistore
from ocistore.registry import Connections, RegistryClient, RegistryOptions, shared_connections
from ocistore.registry.mirrors import upstream_host

pytestmark = pytest.mark.registry


def _pushed(registries: Registries, name: str) -> tuple[str, str]:
    """Pushes a small image to the setup ``name``; returns its reference and digest."""
    setup = make_setup(registries, name)
    repository = unique_repository()
    image = raw_image([10])
    with setup.client() as client:
        push_raw(client, repository, "v1", image)
    return f"{setup.host}/{repository}:v1", image.digest


def test_resolves_in_one_process_share_one_tls_connection(registries: Registries) -> None:
    ref, digest = _pushed(registries, "tls")
    options = RegistryOptions(ca_file=str(registries.tls_files.ca_cert))
    shared_connections().close()
    before = len(registry_client_addresses(registries.tls))
    for _ in range(5):
        assert ocistore.resolve(ref, options=options) == digest
    addresses = registry_client_addresses(registries.tls)[before:]
    assert len(addresses) == 5
    assert len(set(addresses)) == 1, addresses  # one connection: one TLS handshake


def test_resolves_in_one_process_fetch_one_token(registries: Registries) -> None:
    ref, digest = _pushed(registries, "token")
    auth = make_setup(registries, "token").credentials[0]
    with Connections() as connections:  # a process that has no token yet
        options = RegistryOptions(auth=auth, connections=connections)
        issued = len(registries.issuer.requests)
        for _ in range(5):
            assert ocistore.resolve(ref, options=options) == digest
        assert len(registries.issuer.requests) == issued + 1


def test_ssl_contexts_are_built_once_per_ca_configuration(registries: Registries) -> None:
    tls = make_setup(registries, "tls")
    host = upstream_host(tls.host)
    with Connections() as connections:
        first = connections.ssl_context(host, tls.ca_file)
        assert connections.ssl_context(host, tls.ca_file) is first
        assert connections.ssl_context(host) is not first  # system CAs only: another context
        client = RegistryClient(host, ca_file=tls.ca_file, connections=connections)
        assert (
            client.transport
            is RegistryClient(host, ca_file=tls.ca_file, connections=connections).transport
        )


def test_a_loopback_host_without_tls_is_probed_once(registries: Registries) -> None:
    plain = make_setup(registries, "plain")
    host = upstream_host(plain.host)
    assert host.url.startswith("https://") and host.http_fallback
    with Connections() as connections:
        first = RegistryClient(host, connections=connections)
        with pytest.raises(ocistore.RegistryError):
            first.head_manifest("absent/repository", "v1")  # the probe: HTTPS, then HTTP
        assert first.host.url.startswith("http://")
        later = RegistryClient(host, connections=connections)
        assert later.host.url.startswith("http://")  # remembered: no second TLS probe
    fresh = RegistryClient(host, connections=Connections())
    assert fresh.host.url.startswith("https://")  # a process that has not probed yet


def test_threads_share_the_connections_safely(registries: Registries) -> None:
    ref, digest = _pushed(registries, "plain")
    shared_connections().close()
    results: list[str] = []
    errors: list[BaseException] = []

    def resolve_many() -> None:
        try:
            for _ in range(5):
                results.append(ocistore.resolve(ref))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=resolve_many) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert results == [digest] * 30


def test_closing_drops_connections_and_later_calls_reconnect(registries: Registries) -> None:
    ref, digest = _pushed(registries, "plain")
    connections = shared_connections()
    assert ocistore.resolve(ref) == digest
    before = registry_client_addresses(registries.plain)
    connections.close()
    assert ocistore.resolve(ref) == digest
    after = registry_client_addresses(registries.plain)[len(before) :]
    assert after and after[0] != before[-1]  # a new connection after close()


def test_a_forked_child_does_not_share_its_parents_connections(registries: Registries) -> None:
    ref, digest = _pushed(registries, "plain")
    parent = shared_connections()
    assert ocistore.resolve(ref) == digest
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its own pool, and resolving still works
        try:
            fresh = shared_connections() is not parent and ocistore.resolve(ref) == digest
            os.write(write, b"ok" if fresh else b"shared")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 16)
    os.waitpid(pid, 0)
    assert answer == b"ok"
    assert shared_connections() is parent
