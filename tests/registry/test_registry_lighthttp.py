"""The light manifest HEAD (``ocistore.registry.lighthead``): the first HEAD of a client to a
plain-HTTP host goes over a raw socket, and anything but a complete 200 with a digest is asked
again the full way, so results and errors are exactly those of the full path."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_modules import run_and_list_modules
from regfixtures.blobs import push_raw, raw_image
from regfixtures.proxy import Fault, FaultProxy
from regfixtures.registry import TEST_PASSWORD, TEST_USER, registry_requests
from regfixtures.setups import FAST_RETRY, Registries, unique_repository

from ocistore.errors import AuthenticationError, OciStoreError, RegistryError
from ocistore.registry import Connections, RegistryClient, RetryPolicy, StaticCredential
from ocistore.registry.lighthttp import usable
from ocistore.registry.mirrors import RegistryHost, upstream_host

# What a re-pull from a plain-HTTP registry must not import (the HTTP stack httpx brings).
# (``ocistore.registry`` parks None at ``httpx._main``, so that httpx never loads its CLI.)
HTTP_STACK = ("httpx", "httpcore", "h11", "ssl", "_ssl", "email", "http.client", "urllib.request")
# Nor what only other paths need: logging (ocistore/_log.py), thread pools, shutil, tempfile,
# uuid, random, the idna codec (the light HEAD connects with a bytes host).
NOT_AT_START_UP = (
    "logging", "concurrent", "shutil", "tempfile", "uuid", "random", "encodings.idna"
)  # fmt: skip


_POOLS: list[Connections] = []


@pytest.fixture(autouse=True)
def _close_pools() -> Iterator[None]:
    yield
    while _POOLS:
        _POOLS.pop().close()


def _pool() -> Connections:
    """A pool of its own (closed after the test): nothing pooled yet, so a HEAD may go light."""
    _POOLS.append(Connections())
    return _POOLS[-1]


def _client(host: str, **kwargs: object) -> RegistryClient:
    """A client of a plain-HTTP host with its own (empty) pool: its first HEAD may go light."""
    kwargs.setdefault("retry", FAST_RETRY)
    kwargs.setdefault("connections", _pool())
    return RegistryClient(upstream_host(host, plain_http=True), **kwargs)  # type: ignore[arg-type]


def _full_client(host: str, **kwargs: object) -> RegistryClient:
    """A client that has built its httpx client already: every request goes the full way."""
    client = _client(host, **kwargs)
    assert client.transport is not None
    return client


def _went_light(client: RegistryClient) -> bool:
    """Whether the client's requests so far left its pool without an httpx transport."""
    return not client._connections.pooled(client.host, **client._pool_settings())


@pytest.fixture(scope="module")
def pushed(registries: Registries) -> tuple[str, str]:
    """(repository, manifest digest) of an image tagged ``v1`` on the shared storage."""
    repository = unique_repository("light")
    image = raw_image([1000, 5000])
    with Connections() as pool:
        push_raw(_full_client(registries.plain.host, connections=pool), repository, "v1", image)
    return repository, image.digest


def test_the_light_head_answers_as_the_full_path_does(
    registries: Registries, pushed: tuple[str, str]
) -> None:
    repository, digest = pushed
    plain = registries.plain
    before = registry_requests(plain)
    light = _client(plain.host)
    head = light.head_manifest(repository, "v1")
    assert head.digest == digest
    assert _went_light(light)  # no httpx transport was built for it
    assert light.credential is None
    made = registry_requests(plain)[len(before) :]
    assert made == [("HEAD", f"/v2/{repository}/manifests/v1")]  # one request, as before
    assert _full_client(plain.host).head_manifest(repository, "v1") == head
    by_digest = _client(plain.host).head_manifest(repository, digest)
    assert by_digest == _full_client(plain.host).head_manifest(repository, digest) == head
    # The manifest GET goes light too; once the client has a pooled transport, the full way.
    light.get_manifest(repository, digest)
    assert _went_light(light)
    assert light.transport is not None
    assert light.head_manifest(repository, "v1") == head and not _went_light(light)
    # Credentials for a registry that answers anonymously: reported as the full path does.
    given = [StaticCredential(TEST_USER, TEST_PASSWORD)]
    with_credentials = _client(plain.host, credentials=given)
    assert with_credentials.head_manifest(repository, "v1") == head
    assert _went_light(with_credentials)
    full = _full_client(plain.host, credentials=given)
    assert full.head_manifest(repository, "v1") == head
    assert with_credentials.credential is full.credential is given[0]


def test_resolve_through_a_mirror_sends_its_namespace(
    registries: Registries, pushed: tuple[str, str]
) -> None:
    repository, digest = pushed
    plain = registries.plain
    mirror = RegistryHost(f"http://{plain.host}/v2", "docker.io", is_upstream=False)
    before = registry_requests(plain)
    client = RegistryClient(mirror, connections=_pool(), retry=FAST_RETRY)
    assert client.resolve(repository, "v1").digest == digest
    made = registry_requests(plain)[len(before) :]
    assert made == [("HEAD", f"/v2/{repository}/manifests/v1?ns=docker.io")]
    assert _went_light(client)


def test_a_basic_auth_registry_still_authenticates(
    registries: Registries, pushed: tuple[str, str]
) -> None:
    repository, digest = pushed
    host = registries.basic.host
    right = [StaticCredential(TEST_USER, TEST_PASSWORD)]
    client = _client(host, credentials=right)
    assert client.head_manifest(repository, "v1").digest == digest
    assert client.credential is right[0] and not _went_light(client)  # the 401 fell back
    wrong = [StaticCredential(TEST_USER, "wrong")]
    with pytest.raises(AuthenticationError) as light_error:
        _client(host, credentials=wrong).head_manifest(repository, "v1")
    with pytest.raises(AuthenticationError) as full_error:
        _full_client(host, credentials=wrong).head_manifest(repository, "v1")
    assert str(light_error.value) == str(full_error.value)
    assert light_error.value.status == full_error.value.status == 401


def test_a_pool_holding_a_token_goes_the_full_way(
    registries: Registries, pushed: tuple[str, str]
) -> None:
    repository, digest = pushed
    token = registries.token
    right = [StaticCredential(TEST_USER, TEST_PASSWORD)]
    pool = _pool()
    first = _client(token.host, credentials=right, connections=pool)
    assert first.resolve(repository, "v1").digest == digest  # light 401, then the token dance
    before = registry_requests(token)
    second = _client(token.host, credentials=right, connections=pool)
    assert second.resolve(repository, "v1").digest == digest
    # The cached token is sent at once: no anonymous light HEAD (and its 401) first.
    assert registry_requests(token)[len(before) :] == [("HEAD", f"/v2/{repository}/manifests/v1")]
    assert second.credential is right[0]


def test_a_missing_tag_is_the_same_error(registries: Registries, pushed: tuple[str, str]) -> None:
    repository, _ = pushed
    host = registries.plain.host
    with pytest.raises(RegistryError) as light_error:
        _client(host).head_manifest(repository, "absent")
    with pytest.raises(RegistryError) as full_error:
        _full_client(host).head_manifest(repository, "absent")
    assert type(light_error.value) is type(full_error.value)
    assert str(light_error.value) == str(full_error.value)
    assert (light_error.value.status, light_error.value.code) == (404, "MANIFEST_UNKNOWN")


def test_a_redirect_is_followed_the_full_way(
    registries: Registries, pushed: tuple[str, str], proxy: FaultProxy
) -> None:
    repository, digest = pushed
    target = registries.plain.url
    proxy.add(Fault(path="/manifests/", redirect_to=lambda seen: target + seen.path, times=None))
    head = _client(proxy.host).head_manifest(repository, "v1")
    assert head == _full_client(registries.plain.host).head_manifest(repository, "v1")
    assert head.digest == digest
    assert [seen.status for seen in proxy.requests("HEAD")] == [307, 307]  # light, then full


class CannedServer:
    """A TCP server on 127.0.0.1 that answers every connection with ``answer`` (after reading
    the request head) and keeps the request heads: for what no registry does on purpose."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with connection:
                received = b""
                while b"\r\n\r\n" not in received:
                    piece = connection.recv(65536)
                    if not piece:
                        break
                    received += piece
                self.requests.append(received)
                with contextlib.suppress(OSError):  # the client may have given up
                    connection.sendall(self.answer)

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def canned() -> Iterator[list[CannedServer]]:
    servers: list[CannedServer] = []
    yield servers
    for server in servers:
        server.close()


def _serve(canned: list[CannedServer], answer: bytes) -> CannedServer:
    server = CannedServer(answer)
    canned.append(server)
    return server


DIGEST = "sha256:" + "ab" * 32
OK_HEAD = (
    "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n"
    f"Docker-Content-Digest: {DIGEST}\r\nContent-Length: 528\r\n"
)


def test_the_light_head_sends_the_headers_of_the_full_path(canned: list[CannedServer]) -> None:
    server = _serve(canned, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    host = RegistryHost(
        f"http://{server.host}/v2", server.host, headers=(("X-Mirror", "node-1"), ("accept", "x"))
    )
    client = RegistryClient(host, connections=_pool(), retry=RetryPolicy(attempts=1))
    with pytest.raises(RegistryError):
        client.head_manifest("app", "v1")
    assert len(server.requests) == 2  # the light HEAD, then the full path's

    def parsed(request: bytes) -> tuple[str, dict[str, str]]:
        line, *fields = request.decode("latin-1").split("\r\n\r\n")[0].split("\r\n")
        pairs = [field.split(":", 1) for field in fields]
        return line, {name.lower(): value.strip() for name, value in pairs}

    (light_line, light), (full_line, full) = map(parsed, server.requests)
    assert light_line == full_line == "HEAD /v2/app/manifests/v1 HTTP/1.1"
    assert light.pop("connection") == "close" and full.pop("connection") == "keep-alive"
    assert light == full
    assert light["x-mirror"] == "node-1" and light["accept"].startswith("application/vnd.oci")


@pytest.mark.parametrize(
    ("answer", "decided"),
    [
        pytest.param(b"", False, id="closed without answering"),
        pytest.param(b"SSH-2.0-OpenSSH_9.2\r\n\r\n", False, id="garbage"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", False, id="no digest"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nDocker-Content-Digest: sha256:0\r\n\r\n", False, id="bad digest"
        ),
        # Over the light HEAD's 64 KiB, under the 100 KiB httpcore allows: the full way takes it.
        pytest.param((OK_HEAD + f"X-Pad: {'p' * 70_000}\r\n\r\n").encode(), False, id="oversized"),
        pytest.param(OK_HEAD.replace("1.1", "1.0", 1).encode() + b"\r\n", False, id="HTTP/1.0"),
        pytest.param(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", False, id="503"),
        pytest.param(OK_HEAD.encode() + b"\r\n", True, id="the happy path"),
    ],
)
def test_odd_answers_are_asked_again_and_give_the_full_paths_result(
    canned: list[CannedServer], answer: bytes, decided: bool
) -> None:
    server = _serve(canned, answer)

    def outcome(client: RegistryClient) -> object:
        try:
            return client.head_manifest("app", "v1")
        except OciStoreError as error:
            return type(error), str(error), getattr(error, "status", None)

    retry = RetryPolicy(attempts=2, backoff_initial=0.001, backoff_max=0.001)
    light = outcome(_client(server.host, retry=retry, timeout=5.0))
    light_requests = len(server.requests)
    server.requests.clear()
    full = outcome(_full_client(server.host, retry=retry, timeout=5.0))
    assert light == full
    # Only the happy path is decided by the light HEAD; every other answer is asked again.
    assert light_requests == len(server.requests) + (0 if decided else 1)


def test_a_refused_connection_is_the_full_paths_error(registries: Registries) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    host = f"127.0.0.1:{listener.getsockname()[1]}"
    listener.close()  # nothing listens there now
    retry = RetryPolicy(attempts=1)
    with pytest.raises(RegistryError) as light_error:
        _client(host, retry=retry).head_manifest("app", "v1")
    with pytest.raises(RegistryError) as full_error:
        _full_client(host, retry=retry).head_manifest("app", "v1")
    assert type(light_error.value) is type(full_error.value)
    assert str(light_error.value) == str(full_error.value)


def test_only_plain_http_without_a_proxy_is_light(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    url = "http://127.0.0.1:5000/v2/app/manifests/v1"
    assert usable(url, {"Accept": "a"}, 30.0)
    assert usable(url + "?ns=docker.io", {}, 5)
    assert not usable("https://127.0.0.1:5000/v2/app/manifests/v1", {}, 30.0)
    assert not usable("http://user:secret@127.0.0.1:5000/v2/x", {}, 30.0)
    assert not usable("http://127.0.0.1:5000/v2/a b/manifests/v1", {}, 30.0)
    assert not usable(url, {"X-Bad": "a\r\nInjected: 1"}, 30.0)
    assert not usable(url, {"X Bad": "a"}, 30.0)
    assert not usable(url, {"host": "elsewhere"}, 30.0)
    assert not usable(url, {}, object())  # an httpx.Timeout: the full path
    monkeypatch.setenv("NO_PROXY", "*")  # no proxy to skip: still light
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")  # not for http:// URLs
    assert usable(url, {}, 30.0)
    for name in ("HTTP_PROXY", "all_proxy", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://proxy.invalid:3128")
        assert not usable(url, {}, 30.0), name
        monkeypatch.delenv(name)


REPULL = """
import json, sys
from ocistore import ImageManager, Store, RegistryOptions
manager = ImageManager(Store(sys.argv[1]), registry=RegistryOptions(plain_http=True))
result = manager.ensure_image(sys.argv[2], pull_policy="Always")
print(json.dumps([result.digest, sorted(m for m, v in sys.modules.items() if v is not None)]))
"""


@pytest.mark.parametrize("how", ["ensure_image", "cli"])
def test_a_repull_imports_no_http_stack_and_sends_one_request(
    registries: Registries, tmp_path: Path, how: str
) -> None:
    import ocistore
    from ocistore.testing.imagebuild import build_image

    plain = registries.plain
    reference = f"{plain.host}/{unique_repository('repull')}:1"
    build = ocistore.Store(tmp_path / "build")
    build_image([{"etc/os-release": "ID=light\n"}]).write_to_store(build, reference)
    options = ocistore.RegistryOptions(plain_http=True, connections=_pool())
    ocistore.push(reference, store=build, options=options)
    store = tmp_path / "store"
    ocistore.pull(reference, store=ocistore.Store(store), options=options)
    before = registry_requests(plain)
    if how == "ensure_image":
        command = [sys.executable, "-c", REPULL, str(store), reference]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
        digest, loaded = json.loads(done.stdout.splitlines()[-1])
    else:
        [digest], loaded = run_and_list_modules(
            "--store", store, "-q", "pull", "--policy", "Always", "--plain-http", reference
        )
    assert digest.startswith("sha256:")
    assert "ocistore.registry.lighthttp" in loaded  # the run really resolved the tag
    assert [m for m in loaded if m.split(".")[0] in HTTP_STACK or m in HTTP_STACK] == []
    assert [m for m in loaded if m.split(".")[0] in NOT_AT_START_UP or m in NOT_AT_START_UP] == []
    path = reference.split("/", 1)[1].replace(":", "/manifests/")
    assert registry_requests(plain)[len(before) :] == [("HEAD", f"/v2/{path}")]
