"""The light requests (``ocistore.registry.lighthttp``): while a client has built no httpx
client, its manifest HEAD and its manifest, config and layer GETs to a plain-HTTP host go over
raw sockets, and anything but the happy path (a 200 with a digest for the HEAD; a 200, or the 206
a resume asks for, with a plain ``Content-Length`` body for a GET) is asked again the full way,
so results and errors are exactly those of the full path."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cli_modules import http_stack, run_and_list_modules
from publishing import copy_with_skopeo
from regfixtures.blobs import push_raw, raw_image
from regfixtures.proxy import Fault, FaultProxy
from regfixtures.registry import TEST_PASSWORD, TEST_USER, registry_requests
from regfixtures.setups import FAST_RETRY, ListSink, Registries, unique_repository
from trees import walk

import ocistore
from ocistore.errors import (
    AuthenticationError,
    DigestMismatchError,
    ManifestTooLargeError,
    OciStoreError,
    RegistryError,
)
from ocistore.registry import Connections, RegistryClient, RetryPolicy, StaticCredential
from ocistore.registry.lighthttp import usable
from ocistore.registry.mirrors import RegistryHost, upstream_host
from ocistore.registry.options import RegistryOptions
from ocistore.store import Store
from ocistore.testing.imagebuild import build_image, build_index

# What a re-pull must not import either, as only other paths need it: logging (ocistore/_log.py),
# thread pools, shutil, tempfile, uuid, random, the idna codec (a light request connects with a
# bytes host).
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
    (light_line, light), (full_line, full) = _request_heads(server)
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
    assert http_stack(loaded) == []
    assert [m for m in loaded if m.split(".")[0] in NOT_AT_START_UP or m in NOT_AT_START_UP] == []
    path = reference.split("/", 1)[1].replace(":", "/manifests/")
    assert registry_requests(plain)[len(before) :] == [("HEAD", f"/v2/{path}")]


# --- the GETs of a cold pull ----------------------------------------------------------------

LIBRARY_PULL = """
import json, sys
import ocistore
options = ocistore.RegistryOptions(plain_http=True)
store = ocistore.Store(sys.argv[2])
pulled = ocistore.pull(sys.argv[1], store=store, unpack=sys.argv[3], options=options)
print(json.dumps([pulled.digest, sorted(m for m, v in sys.modules.items() if v is not None)]))
"""
# Over the write-behind threshold (a worker thread writes it) and not a multiple of the buffer.
BIG_FILE = 3 * 1024 * 1024 + 4321


@dataclass(frozen=True)
class FullPull:
    """A multi-platform, multi-layer image skopeo pushed, pulled the full way (httpx only)."""

    reference: str
    repository: str
    digest: str
    layers: tuple[str, ...]  # the amd64 image's layer digests, base first; the big one first
    store: Path
    rootfs: Path
    requests: list[tuple[str, str]]  # what the registry saw, sorted


def _full_options(pool: Connections, **kwargs: object) -> RegistryOptions:
    """Options whose every request goes the full way: an ``httpx.Timeout`` is no light one."""
    return RegistryOptions(
        plain_http=True,
        timeout=httpx.Timeout(30.0),
        connections=pool,
        **kwargs,  # type: ignore[arg-type]
    )


def _blobs(root: Path) -> list[str]:
    """The digests of the blobs in the store at ``root``, after fsck found every one sound."""
    store = Store(root)
    report = store.fsck()
    assert report.ok and report.problems == [], report.problems
    return sorted(digest for digest, _ in store.blobs.files() if digest is not None)


def _record(root: Path, reference: str) -> tuple[object, ...]:
    """What the store at ``root`` records of the image (not when it was pulled or used)."""
    record = Store(root).image(reference)
    return (record.digest, record.index_digest, record.platform, record.media_type, record.size)


@pytest.fixture(scope="module")
def full_pull(registries: Registries, tmp_path_factory: pytest.TempPathFactory) -> FullPull:
    work = tmp_path_factory.mktemp("lightget")
    amd64 = build_image(
        [
            {"etc/os-release": "ID=light\n", "bin/tool": os.urandom(BIG_FILE)},
            {"etc/motd": "the second layer\n"},
            {"srv/data": os.urandom(200_000)},
        ],
        compression=["gzip", "zstd", "gzip"],
    )
    arm64 = build_image([{"etc/os-release": "ID=arm\n"}], platform="linux/arm64")
    repository = unique_repository("lightget")
    reference = f"{registries.plain.host}/{repository}:1"
    copy_with_skopeo(build_index([amd64, arm64]), reference, work)
    before = len(registry_requests(registries.plain))
    with Connections() as pool:
        pulled = ocistore.pull(
            reference,
            store=Store(work / "store"),
            unpack=work / "rootfs",
            options=_full_options(pool),
        )
    assert "httpx" in sys.modules  # (in this process anyway: the test's own import)
    return FullPull(
        reference,
        repository,
        pulled.digest,
        tuple(layer.digest for layer in pulled.layers),
        work / "store",
        work / "rootfs",
        sorted(registry_requests(registries.plain)[before:]),
    )


@pytest.mark.parametrize("how", ["cli", "library"])
def test_a_cold_pull_imports_no_http_stack_and_matches_the_full_path(
    registries: Registries, full_pull: FullPull, tmp_path: Path, how: str
) -> None:
    store, rootfs = tmp_path / "store", tmp_path / "rootfs"
    before = len(registry_requests(registries.plain))
    if how == "cli":
        [digest], loaded = run_and_list_modules(
            "--store", store, "-q", "pull", "--plain-http", "--unpack", rootfs, full_pull.reference
        )
    else:
        command = [sys.executable, "-c", LIBRARY_PULL, full_pull.reference, store, rootfs]
        done = subprocess.run(
            [str(part) for part in command], capture_output=True, text=True, timeout=300, check=True
        )
        digest, loaded = json.loads(done.stdout.splitlines()[-1])
    assert digest == full_pull.digest
    assert "ocistore.registry.lighthttp" in loaded and "ocistore.store.unpack" in loaded
    assert http_stack(loaded) == []
    # The same requests as the full path: a HEAD, the index, the manifest, config and layers.
    assert sorted(registry_requests(registries.plain)[before:]) == full_pull.requests
    assert len(full_pull.requests) == 1 + 2 + 1 + len(full_pull.layers)
    assert _blobs(store) == _blobs(full_pull.store)
    assert (store / "index.json").read_bytes() == (full_pull.store / "index.json").read_bytes()
    assert _record(store, full_pull.reference) == _record(full_pull.store, full_pull.reference)
    assert walk(rootfs) == walk(full_pull.rootfs)


def _via(proxy: FaultProxy, full_pull: FullPull) -> str:
    """The image's reference through the fault proxy."""
    return f"{proxy.host}/{full_pull.repository}:1"


def _connections(proxy: FaultProxy) -> list[tuple[str, str, str]]:
    """(method, path, Connection header) of each request the proxy saw, in order: ``close``
    marks a light request, ``keep-alive`` one of httpx."""
    return [(seen.method, seen.path, seen.headers.get("connection", "")) for seen in proxy.seen]


def _asked_again(seen: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
    """The requests sent the light way and then again the full way (sorted); checks that the
    pull began light and that no request went twice the same way."""
    light = [(method, path) for method, path, connection in seen if connection == "close"]
    full = [(method, path) for method, path, connection in seen if connection != "close"]
    assert seen[0][2] == "close", seen
    assert len(set(light)) == len(light) and len(set(full)) == len(full), seen
    return sorted(set(light) & set(full))


def test_a_layer_cut_short_resumes_the_full_way_and_is_verified(
    full_pull: FullPull, proxy: FaultProxy, tmp_path: Path
) -> None:
    big = full_pull.layers[0]
    cut = 1_500_000  # into the second buffer: a piece is written, the rest arrives later
    proxy.add(Fault(path=f"/blobs/{big}", truncate_after=cut))
    options = RegistryOptions(plain_http=True, retry=FAST_RETRY, connections=_pool())
    pulled = ocistore.pull(_via(proxy, full_pull), store=Store(tmp_path), options=options)
    assert pulled.digest == full_pull.digest
    assert _blobs(tmp_path) == _blobs(full_pull.store)
    gets = proxy.requests("GET", f"/blobs/{big}")
    # The light GET broke off; the resume asked the full way for the bytes after those written.
    assert [(get.headers.get("range"), get.headers["connection"]) for get in gets] == [
        (None, "close"),
        (f"bytes={cut}-", "keep-alive"),
    ]
    assert pulled.bytes_downloaded == sum(layer.size for layer in pulled.layers)


def test_a_manifest_cut_short_is_asked_again_the_full_way(
    full_pull: FullPull, proxy: FaultProxy, tmp_path: Path
) -> None:
    proxy.add(Fault(path=f"/manifests/{full_pull.digest}", truncate_after=100))
    options = RegistryOptions(plain_http=True, retry=FAST_RETRY, connections=_pool())
    pulled = ocistore.pull(_via(proxy, full_pull), store=Store(tmp_path), options=options)
    assert pulled.digest == full_pull.digest
    assert _blobs(tmp_path) == _blobs(full_pull.store)
    again = _asked_again(_connections(proxy))
    assert [path.rsplit("/", 1)[1] for _, path in again] == [full_pull.digest]


def _off_the_happy_path(kind: str, full_pull: FullPull) -> Fault:
    registry = full_pull.reference.split("/", 1)[0]  # the redirect's "object storage"
    return {
        "chunked manifests": Fault(path="/manifests/sha256:", chunked=True, times=None),
        "chunked blobs": Fault(path="/blobs/", chunked=True, times=None),
        "a content coding": Fault(path="/blobs/", set_headers={"Content-Encoding": "br"}),
        "503": Fault(path="/blobs/", status=503),
        "redirect": Fault(
            path="/blobs/", redirect_to=lambda seen: f"http://{registry}{seen.path}", times=None
        ),
    }[kind]


@pytest.mark.parametrize(
    "kind", ["chunked manifests", "chunked blobs", "a content coding", "503", "redirect"]
)
def test_answers_off_the_happy_path_are_asked_again_the_full_way(
    full_pull: FullPull, proxy: FaultProxy, tmp_path: Path, kind: str
) -> None:
    fault = proxy.add(_off_the_happy_path(kind, full_pull))
    options = RegistryOptions(plain_http=True, retry=FAST_RETRY, connections=_pool())
    pulled = ocistore.pull(_via(proxy, full_pull), store=Store(tmp_path), options=options)
    assert pulled.digest == full_pull.digest
    assert _blobs(tmp_path) == _blobs(full_pull.store)
    seen = _connections(proxy)
    again = _asked_again(seen)
    assert again and all(fault.path in path for _, path in again) and fault.used >= 1
    # The full path's requests (a redirect's next hop bypasses the proxy), and the light ones
    # that were asked again (the layers' GETs run in parallel: a few may have been in flight).
    assert len(seen) == len(full_pull.requests) + len(again)


@pytest.mark.parametrize("layer", [0, 2], ids=["big", "small"])
def test_wrong_bytes_are_the_same_digest_mismatch_and_leave_no_blob(
    full_pull: FullPull, proxy: FaultProxy, tmp_path: Path, layer: int
) -> None:
    wrong = full_pull.layers[layer]
    proxy.add(Fault(path=f"/blobs/{wrong}", corrupt_at=1000, times=None))
    errors = []
    for name, options in [
        ("light", RegistryOptions(plain_http=True, retry=FAST_RETRY, connections=_pool())),
        ("full", _full_options(_pool(), retry=FAST_RETRY)),
    ]:
        with pytest.raises(DigestMismatchError) as raised:
            ocistore.pull(_via(proxy, full_pull), store=Store(tmp_path / name), options=options)
        errors.append((type(raised.value), raised.value.expected, raised.value.actual))
        assert not Store(tmp_path / name).has_blob(wrong)
        _blobs(tmp_path / name)  # what the store holds is whole
    assert errors[0] == errors[1] and errors[0][1] == wrong
    assert proxy.seen[0].headers["connection"] == "close"  # the first pull went light


def test_light_gets_answer_as_the_full_path_does(
    registries: Registries, pushed: tuple[str, str]
) -> None:
    repository, digest = pushed
    plain = registries.plain
    before = registry_requests(plain)
    light = _client(plain.host)
    fetched = light.get_manifest(repository, digest)
    manifest = json.loads(fetched.data)
    config = light.read_blob(repository, manifest["config"]["digest"])
    layers = []
    for layer in manifest["layers"]:
        sink = ListSink(b"")
        assert light.download_blob(repository, layer["digest"], layer["size"], sink) == len(
            sink.data
        )
        layers.append(bytes(sink.data))
    resumed = ListSink(layers[1][:1234])  # a partial ingest: the first GET already asks a Range
    light.download_blob(repository, manifest["layers"][1]["digest"], None, resumed)
    assert _went_light(light) and light.credential is None
    made = registry_requests(plain)[len(before) :]
    assert [method for method, _ in made] == ["GET"] * 5  # one request each, as before
    full = _full_client(plain.host)
    assert full.get_manifest(repository, digest) == fetched
    assert full.read_blob(repository, manifest["config"]["digest"]) == config
    for layer, data in zip(manifest["layers"], layers, strict=True):
        sink = ListSink(b"")
        full.download_blob(repository, layer["digest"], layer["size"], sink)
        assert bytes(sink.data) == data and len(data) == layer["size"]
    assert bytes(resumed.data) == layers[1]


def test_light_gets_to_a_basic_auth_registry_authenticate_the_full_way(
    registries: Registries, pushed: tuple[str, str], full_pull: FullPull, tmp_path: Path
) -> None:
    repository, digest = pushed
    host = registries.basic.host
    right = [StaticCredential(TEST_USER, TEST_PASSWORD)]
    client = _client(host, credentials=right)
    assert client.get_manifest(repository, digest).digest == digest  # a light 401, then Basic
    assert client.credential is right[0] and not _went_light(client)
    wrong = [StaticCredential(TEST_USER, "wrong")]
    with pytest.raises(AuthenticationError) as light_error:
        _client(host, credentials=wrong).get_manifest(repository, digest)
    with pytest.raises(AuthenticationError) as full_error:
        _full_client(host, credentials=wrong).get_manifest(repository, digest)
    assert str(light_error.value) == str(full_error.value)
    # A whole pull (its HEAD is the first to meet the 401) with the right and a wrong password.
    basic = f"{host}/{full_pull.repository}:1"
    auth = RegistryOptions(plain_http=True, retry=FAST_RETRY, auth=(TEST_USER, TEST_PASSWORD))
    pulled = ocistore.pull(basic, store=Store(tmp_path / "right"), options=auth)
    assert pulled.digest == full_pull.digest and _blobs(tmp_path / "right") == _blobs(
        full_pull.store
    )
    outcomes = []
    for options in [
        RegistryOptions(plain_http=True, connections=_pool(), auth=(TEST_USER, "wrong")),
        _full_options(_pool(), auth=(TEST_USER, "wrong")),
    ]:
        with pytest.raises(AuthenticationError) as raised:
            ocistore.pull(basic, store=Store(tmp_path / "wrong"), options=options)
        outcomes.append((str(raised.value), raised.value.status))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("missing", ["tag (HEAD)", "tag", "manifest", "blob"])
def test_a_missing_manifest_or_blob_is_the_same_error(
    registries: Registries, pushed: tuple[str, str], missing: str
) -> None:
    repository, _ = pushed
    absent = "sha256:" + "0" * 64

    def fetch(client: RegistryClient) -> None:
        if missing == "blob":
            client.download_blob(repository, absent, 10, ListSink(b""))
        elif missing == "tag (HEAD)":
            client.head_manifest(repository, "absent")
        else:
            client.get_manifest(repository, "absent" if missing == "tag" else absent)

    host = registries.plain.host
    with pytest.raises(RegistryError) as light_error:
        fetch(_client(host))
    with pytest.raises(RegistryError) as full_error:
        fetch(_full_client(host))
    assert type(light_error.value) is type(full_error.value)
    assert str(light_error.value) == str(full_error.value)
    assert light_error.value.status == 404


def _request_heads(server: CannedServer) -> list[tuple[str, dict[str, str]]]:
    """The request line and the headers (names in lower case) of each request ``server`` got."""
    heads = []
    for request in server.requests:
        line, *fields = request.decode("latin-1").split("\r\n\r\n")[0].split("\r\n")
        pairs = [field.split(":", 1) for field in fields]
        heads.append((line, {name.lower(): value.strip() for name, value in pairs}))
    return heads


@pytest.mark.parametrize("what", ["manifest", "blob", "blob from an offset"])
def test_a_light_get_sends_the_headers_of_the_full_path(
    canned: list[CannedServer], what: str
) -> None:
    server = _serve(canned, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    host = RegistryHost(f"http://{server.host}/v2", server.host, headers=(("X-Mirror", "n1"),))
    client = RegistryClient(host, connections=_pool(), retry=RetryPolicy(attempts=1))
    with pytest.raises(RegistryError):
        if what == "manifest":
            client.get_manifest("app", DIGEST)
        else:
            prefix = b"x" * (1000 if what == "blob from an offset" else 0)
            client.download_blob("app", DIGEST, 5000, ListSink(prefix))
    assert len(server.requests) == 2  # the light GET, then the full path's
    (light_line, light), (full_line, full) = _request_heads(server)
    assert light_line == full_line and light_line.startswith("GET /v2/app/")
    assert light.pop("connection") == "close" and full.pop("connection") == "keep-alive"
    assert light == full
    assert light["x-mirror"] == "n1" and "user-agent" in light
    if what == "blob from an offset":
        assert light["range"] == "bytes=1000-" and light["accept-encoding"] == "identity"


BODY = b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}'
PLAIN = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (
    len(BODY),
    BODY,
)
# Transfer-Encoding overrides Content-Length (RFC 9112 6.3): the length is not the body's.
CHUNKED_WITH_LENGTH = CHUNKED.replace(
    b"OK\r\n", b"OK\r\nContent-Length: %d\r\n" % len(CHUNKED.split(b"\r\n\r\n", 1)[1])
)
GZIPPED = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (
    len(gzip.compress(BODY)),
    gzip.compress(BODY),
)
NO_LENGTH = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + BODY  # ends at the close
CUT_SHORT = PLAIN[: -len(BODY) // 2]


@pytest.mark.parametrize(
    ("answer", "decided"),
    [
        pytest.param(PLAIN, True, id="the happy path"),
        pytest.param(CHUNKED, False, id="chunked"),
        pytest.param(CHUNKED_WITH_LENGTH, False, id="chunked with a length"),
        pytest.param(NO_LENGTH, False, id="no length"),
        pytest.param(GZIPPED, False, id="gzip"),
        pytest.param(GZIPPED.replace(b"gzip", b"zstd"), False, id="not the zstd it says"),
        pytest.param(PLAIN.replace(b"1.1", b"1.0", 1), False, id="HTTP/1.0"),
        pytest.param(CUT_SHORT, False, id="cut short"),
        pytest.param(PLAIN.replace(b"200 OK", b"206 Partial Content"), False, id="206 unasked"),
        pytest.param(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", False, id="404"),
        pytest.param(b"HTTP/1.1 416 Unsatisfiable\r\nContent-Length: 0\r\n\r\n", False, id="416"),
        pytest.param(b"HTTP/1.1 301 Moved\r\nLocation: /elsewhere\r\n\r\n", False, id="redirect"),
    ],
)
@pytest.mark.parametrize("what", ["manifest", "blob"])
def test_odd_answers_to_a_get_are_asked_again_and_give_the_full_paths_result(
    canned: list[CannedServer], answer: bytes, decided: bool, what: str
) -> None:
    server = _serve(canned, answer)

    def outcome(client: RegistryClient) -> object:
        try:
            if what == "manifest":
                return client.get_manifest("app", "v1")
            sink = ListSink(b"")
            client.download_blob("app", DIGEST, None, sink)
            return bytes(sink.data)
        except OciStoreError as error:
            return type(error), str(error), getattr(error, "status", None)

    retry = RetryPolicy(attempts=2, backoff_initial=0.001, backoff_max=0.001, max_redirects=1)
    light = outcome(_client(server.host, retry=retry, timeout=5.0))
    light_requests = len(server.requests)
    server.requests.clear()
    full = outcome(_full_client(server.host, retry=retry, timeout=5.0))
    assert light == full
    # Only the happy path is decided by the light GET; every other answer is asked again, but a
    # blob's body cut short resumes (the full way) as it always did.
    resumed = what == "blob" and answer == CUT_SHORT
    assert light_requests == len(server.requests) + (0 if decided or resumed else 1)


def test_a_manifest_over_the_size_limit_is_refused_the_full_way(canned: list[CannedServer]) -> None:
    server = _serve(canned, PLAIN)
    outcomes = []
    for client in (_client(server.host), _full_client(server.host)):
        server.requests.clear()
        with pytest.raises(ManifestTooLargeError) as raised:
            client.get_manifest("app", "v1", max_size=len(BODY) - 1)
        outcomes.append((str(raised.value), len(server.requests)))
    (light, light_requests), (full, full_requests) = outcomes
    assert light == full and light_requests == full_requests + 1 == 2
