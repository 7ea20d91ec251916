"""Large blob bodies received from the connection's socket directly (``registry/bodies.py``),
against the real registry in every setup (plain, basic auth, TLS, token) and through the fault
proxy (a body cut short, a stall, a trickle)."""

from __future__ import annotations

import hashlib
import io
import os
import ssl
import threading
from dataclasses import replace

import httpx
import pytest
from regfixtures.proxy import Fault, FaultProxy
from regfixtures.setups import (
    FAST_RETRY,
    ListSink,
    Registries,
    Setup,
    make_setup,
    unique_repository,
)

from ocistore.registry import RegistryClient, bodies
from ocistore.registry.bodies import BUFFER_SIZE, read_body
from ocistore.registry.mirrors import upstream_host

# Over both thresholds and not a multiple of the buffer: the last piece is a short one.
SIZE = max(bodies.DIRECT_MIN, bodies.DIRECT_MIN_TLS) + 123_457


@pytest.fixture(scope="module")
def big_blob() -> tuple[bytes, str]:
    data = os.urandom(SIZE)
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


def _seed(setup: Setup, blob: tuple[bytes, str]) -> str:
    data, digest = blob
    repository = unique_repository(f"bodies-{setup.name}")
    with setup.client() as client:
        client.upload_blob(repository, digest, io.BytesIO(data), len(data))
    return repository


def test_large_blob_downloads_through_the_socket_in_every_setup(
    setup: Setup, big_blob: tuple[bytes, str]
) -> None:
    data, digest = big_blob
    repository = _seed(setup, big_blob)
    with setup.client() as client:
        sink = ListSink()
        assert client.download_blob(repository, digest, len(data), sink) == len(data)
        assert bytes(sink.data) == data
        # the connection was not reused, and the pool still serves the next request
        assert client.blob_exists(repository, digest) == len(data)


@pytest.mark.parametrize("name", ["plain", "tls"])
def test_read_body_bypasses_httpx_only_for_large_bodies(
    registries: Registries, name: str, big_blob: tuple[bytes, str]
) -> None:
    data, digest = big_blob
    setup = make_setup(registries, name)
    repository = _seed(setup, big_blob)
    verify = ssl.create_default_context(cafile=setup.ca_file) if setup.ca_file else False
    scheme = "https" if setup.ca_file else "http"
    url = f"{scheme}://{setup.host}/v2/{repository}/blobs/{digest}"
    with httpx.Client(verify=verify, headers={"Accept-Encoding": "identity"}) as http:
        for direct_min, direct in ((None, True), (SIZE + 1, False)):
            with http.stream("GET", url) as response:
                assert response.status_code == 200
                buffer = bytearray(BUFFER_SIZE)
                pieces = [bytes(v) for v in read_body(response, buffer, direct_min=direct_min)]
                assert b"".join(pieces) == data
                assert max(map(len, pieces)) <= BUFFER_SIZE  # memory stays bounded
                # direct: only the bytes that came with the head went through httpx
                assert (response.num_bytes_downloaded < BUFFER_SIZE) is direct
                assert response.is_closed
        # the closed connection left the pool working
        assert http.get(url).content == data


@pytest.mark.parametrize(
    ("faults", "resumed_at"),
    [
        ([Fault(truncate_after=3 * BUFFER_SIZE + 5)], 3 * BUFFER_SIZE + 5),
        ([Fault(truncate_after=BUFFER_SIZE // 2, times=3)], BUFFER_SIZE // 2),
        ([Fault(truncate_after=100_000, stall=5.0)], 100_000),
        ([Fault(truncate_after=2 * BUFFER_SIZE), Fault(ignore_range=True)], 2 * BUFFER_SIZE),
        ([Fault(trickle=(1_000_000, 0.001))], None),
    ],
    ids=["cut short", "cut short three times", "stalled", "cut short, Range ignored", "trickle"],
)
def test_broken_body_resumes_from_what_arrived(
    registries: Registries,
    proxy: FaultProxy,
    big_blob: tuple[bytes, str],
    faults: list[Fault],
    resumed_at: int | None,
) -> None:
    data, digest = big_blob
    repository = _seed(make_setup(registries, "plain"), big_blob)
    for fault in faults:
        proxy.add(replace(fault, path=f"/blobs/{digest}"))
    host = upstream_host(proxy.host, plain_http=True)
    with RegistryClient(host, retry=FAST_RETRY, timeout=httpx.Timeout(1.0)) as client:
        sink = ListSink()
        client.download_blob(repository, digest, len(data), sink)
    assert bytes(sink.data) == data
    gets = proxy.requests("GET", f"/blobs/{digest}")
    if resumed_at is None:
        assert len(gets) == 1
    else:
        # the resume asks for the bytes after those that arrived, not from the start again
        assert gets[1].headers.get("range") == f"bytes={resumed_at}-"


class _Enough(Exception):
    """The sink holds what the test waited for."""


def test_bytes_before_a_stall_reach_the_sink_while_the_link_is_stalled(
    registries: Registries, proxy: FaultProxy, big_blob: tuple[bytes, str]
) -> None:
    data, digest = big_blob
    repository = _seed(make_setup(registries, "plain"), big_blob)
    arrived = 3 * BUFFER_SIZE // 2
    proxy.add(Fault(path=f"/blobs/{digest}", truncate_after=arrived, stall=60.0))

    class StopWhenArrived(ListSink):
        def write(self, piece: bytes | memoryview) -> None:
            super().write(piece)
            if self.offset >= arrived:
                raise _Enough  # a pull killed now keeps these bytes for its resume

    sink = StopWhenArrived()
    outcome: list[BaseException] = []

    def download() -> None:
        host = upstream_host(proxy.host, plain_http=True)
        with RegistryClient(host, retry=FAST_RETRY, timeout=httpx.Timeout(120.0)) as client:
            try:
                client.download_blob(repository, digest, len(data), sink)
            except BaseException as error:
                outcome.append(error)

    thread = threading.Thread(target=download, daemon=True)
    thread.start()
    thread.join(timeout=30.0)  # the stall lasts 60 s: only bytes handed on mid-stall end it
    assert not thread.is_alive(), "the bytes before the stall stayed in memory"
    assert len(outcome) == 1 and isinstance(outcome[0], _Enough)
    assert bytes(sink.data) == data[:arrived]


@pytest.mark.parametrize(("name", "direct"), [("plain", True), ("tls", False)])
def test_a_new_tls_handshake_is_paid_only_for_larger_bodies(
    registries: Registries, name: str, direct: bool
) -> None:
    data = os.urandom(bodies.DIRECT_MIN + 1000)
    assert len(data) < bodies.DIRECT_MIN_TLS
    blob = (data, "sha256:" + hashlib.sha256(data).hexdigest())
    setup = make_setup(registries, name)
    repository = _seed(setup, blob)
    verify = ssl.create_default_context(cafile=setup.ca_file) if setup.ca_file else False
    url = f"{'https' if setup.ca_file else 'http'}://{setup.host}/v2/{repository}/blobs/{blob[1]}"
    with httpx.Client(verify=verify) as http, http.stream("GET", url) as response:
        got = b"".join(bytes(v) for v in read_body(response, bytearray(BUFFER_SIZE)))
        assert got == data
        assert (response.num_bytes_downloaded < len(data)) is direct
