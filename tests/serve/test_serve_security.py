"""Hostile requests: traversal, malformed digests, huge Range lists, slow clients, GC races."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from node_registries import ManagerRegistries
from servefixtures import (
    BuiltImage,
    Server,
    build_image,
    publish,
    running_server,
    unique_files,
    wait_for,
)

import ocistore
from ocistore.store import Store

BIG = 24 * 1024 * 1024  # an incompressible layer much larger than socket buffers


@dataclass
class Hostile:
    server: Server
    store: Store
    upstream: str
    path: str
    image: BuiltImage
    secret: bytes
    secret_path: Path


@pytest.fixture(scope="module")
def hostile(
    manager_registries: ManagerRegistries, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hostile]:
    base = tmp_path_factory.mktemp("serve-hostile")
    upstream = manager_registries.plain.host
    path = f"hostile{uuid.uuid4().hex[:6]}/app"
    image = build_image(
        [unique_files("hostile"), {"big": os.urandom(BIG)}], compression=["gzip", "none"]
    )
    publish(image, f"{upstream}/{path}:v1", base)
    store = Store(base / "store")
    ocistore.pull(f"{upstream}/{path}:v1", store=store)
    # A file outside the store that must never come out, whatever the request.
    secret = f"TOPSECRET-{uuid.uuid4().hex}".encode()
    secret_path = base / "secret.txt"
    secret_path.write_bytes(secret)
    with running_server(store.root) as server:
        yield Hostile(server, store, upstream, path, image, secret, secret_path)


def _raw(
    server: Server, method: str, target: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """A request whose target goes out byte for byte (no client-side normalisation)."""
    host, _, port = server.host.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_traversal_in_names_digests_and_ns_reads_nothing_outside(hostile: Hostile) -> None:
    secret_digest = "sha256:" + hashlib.sha256(hostile.secret).hexdigest()
    relative = os.path.relpath(hostile.secret_path, hostile.store.root / "blobs" / "sha256")
    layer = hostile.image.layers[0].digest
    targets = [
        "/v2/../../../etc/passwd/manifests/v1",
        f"/v2/../{relative}/blobs/{layer}",
        "/v2/%2e%2e/%2e%2e/etc/manifests/latest",
        f"/v2/{hostile.path}/blobs/sha256:..%2f..%2f..%2fsecret.txt",
        f"/v2/{hostile.path}/blobs/sha256/../../../index.db",
        f"/v2/{hostile.path}/blobs/{relative}",
        f"/v2/{hostile.path}/blobs/..%2F..%2Findex.db",
        f"/v2/{hostile.path}/manifests/..%2f..%2findex.db",
        f"/v2/{hostile.path}/manifests/{relative.replace('/', '%2f')}",
        f"/v2/{hostile.path}/blobs/{secret_digest}",
        f"/v2/{hostile.path}/blobs/{layer}?ns=../../etc",
        f"/v2/{hostile.path}/blobs/{layer}?ns=%2e%2e%2f%2e%2e",
        f"/v2/{hostile.path}/manifests/v1?ns=/etc/passwd",
        f"/v2/{hostile.path}%00/manifests/v1",
        "/v2/index.db/blobs/" + layer,
        "/../index.db",
        "/v2/_catalog",
    ]
    for target in targets:
        status, body = _raw(hostile.server, "GET", target)
        assert status in (400, 404), (target, status)
        assert hostile.secret not in body and b"SQLite" not in body, target


def test_a_symlink_planted_as_a_blob_is_not_followed(hostile: Hostile) -> None:
    config = hostile.image.config_digest
    blob = hostile.store.blob_path(config)
    saved = blob.read_bytes()
    blob.unlink()
    blob.symlink_to(hostile.secret_path)
    try:
        status, body = _raw(
            hostile.server, "GET", f"/v2/{hostile.path}/blobs/{config}?ns={hostile.upstream}"
        )
        assert status == 404 and hostile.secret not in body
    finally:
        blob.unlink()
        blob.write_bytes(saved)
        blob.chmod(0o444)


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:abc",
        "sha256:" + "A" * 64,
        "sha256:" + "g" * 64,
        "md5:" + "a" * 32,
        "sha512:" + "a" * 64,
        "sha256:" + "a" * 65,
        "sha256" + "a" * 64,
        ":" + "a" * 64,
        "sha256:%00" + "a" * 61,
    ],
)
def test_malformed_digests_are_refused(hostile: Hostile, digest: str) -> None:
    for kind in ("blobs", "manifests"):
        status, body = _raw(
            hostile.server, "GET", f"/v2/{hostile.path}/{kind}/{digest}?ns={hostile.upstream}"
        )
        assert status in (400, 404), (kind, digest, status)
        assert b"errors" in body


def test_huge_range_lists_are_refused_cheaply(hostile: Hostile) -> None:
    layer = hostile.image.layers[1]
    target = f"/v2/{hostile.path}/blobs/{layer.digest}?ns={hostile.upstream}"
    many = "bytes=" + ",".join(f"{i}-{i}" for i in range(0, 1500, 2))
    status, body = _raw(hostile.server, "GET", target, {"Range": many})
    assert status in (416, 431, 400) and len(body) < 4096
    overlapping = "bytes=" + ",".join("0-" for _ in range(200))
    status, body = _raw(hostile.server, "GET", target, {"Range": overlapping})
    assert status in (416, 431, 400) and len(body) < 4096
    status, _ = _raw(hostile.server, "GET", target, {"Range": "bytes=" + "9" * 5000 + "-"})
    assert status in (416, 431, 400)
    status, body = _raw(hostile.server, "GET", target, {"Range": "bytes=5-1"})
    assert status in (200, 416)  # an invalid range is ignored or refused, never misread
    if status == 200:
        assert body == layer.data
    # Still serving.
    status, body = _raw(hostile.server, "GET", target, {"Range": "bytes=0-9"})
    assert status == 206 and body == layer.data[:10]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_slow_clients_hold_bounded_resources(hostile: Hostile) -> None:
    layer = hostile.image.layers[1]
    assert len(layer.data) > BIG
    target = f"/v2/{hostile.path}/blobs/{layer.digest}?ns={hostile.upstream}"
    host, _, port = hostile.server.host.rpartition(":")
    pid = hostile.server.process.pid
    baseline = _rss_kib(pid)
    sockets: list[socket.socket] = []
    try:
        # Clients that never finish their headers ...
        for _ in range(100):
            s = socket.create_connection((host, int(port)), timeout=30)
            s.sendall(b"GET " + target.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            sockets.append(s)
        # ... and readers that ask for the big blob and never read it.
        for _ in range(8):
            s = socket.create_connection((host, int(port)), timeout=30)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            sockets.append(s)
        # An endless header line is cut off, not buffered.
        s = socket.create_connection((host, int(port)), timeout=30)
        sockets.append(s)
        with contextlib.suppress(OSError):  # the server may close before taking it all
            s.sendall(b"GET /v2/ HTTP/1.1\r\nX-Long: " + b"a" * 200_000 + b"\r\n\r\n")
        answer = s.recv(200)
        assert re.match(rb"HTTP/1\.[01] 4\d\d ", answer), answer
        # A well-behaved client is still served in full and correctly meanwhile.
        response = httpx.get(hostile.server.url + target, timeout=120)
        assert response.status_code == 200
        assert hashlib.sha256(response.content).hexdigest() == layer.digest.split(":")[1]
        # 8 stalled readers of a 24 MiB blob would be 192 MiB if the server buffered them.
        assert _rss_kib(pid) - baseline < 64 * 1024
    finally:
        for s in sockets:
            s.close()


def test_gc_keeps_a_blob_while_it_is_served(hostile: Hostile, tmp_path: Path) -> None:
    # A second image of its own, so that removing it leaves the shared fixture intact.
    image = build_image([{"big2": os.urandom(BIG)}], compression="none")
    path = f"{hostile.path}-gc"
    publish(image, f"{hostile.upstream}/{path}:v1", tmp_path)
    ocistore.pull(f"{hostile.upstream}/{path}:v1", store=hostile.store)
    layer = image.layers[0]
    target = f"{hostile.server.url}/v2/{path}/blobs/{layer.digest}"
    with httpx.stream("GET", target, params={"ns": hostile.upstream}, timeout=120) as response:
        assert response.status_code == 200
        chunks = response.iter_bytes(65536)
        received = [next(chunks)]  # the transfer has started and is now stalled on us
        hostile.store.remove(f"{hostile.upstream}/{path}:v1")
        report = hostile.store.gc()
        assert layer.digest not in report.removed_blobs  # the server's lease keeps it
        assert hostile.store.blob_path(layer.digest).exists()
        received.extend(chunks)
    assert hashlib.sha256(b"".join(received)).hexdigest() == layer.digest.split(":")[1]
    # Once served, nothing protects it any more, and new requests no longer find it.
    wait_for(
        lambda: (
            layer.digest in hostile.store.gc().removed_blobs
            or not hostile.store.blob_path(layer.digest).exists()
        )
    )
    gone = httpx.get(target, params={"ns": hostile.upstream}, timeout=30)
    assert gone.status_code == 404


def test_a_client_trickling_its_headers_is_cut_off_but_a_slow_reader_is_not(
    hostile: Hostile,
) -> None:
    layer = hostile.image.layers[1]
    target = f"/v2/{hostile.path}/blobs/{layer.digest}?ns={hostile.upstream}"
    with running_server(hostile.store.root, "--idle-timeout", "1") as server:
        host, _, port = server.host.rpartition(":")
        trickler = socket.create_connection((host, int(port)), timeout=60)
        reader = socket.create_connection((host, int(port)), timeout=60)
        try:
            trickler.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            reader.sendall(
                f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
            )
            first = reader.recv(65536)
            assert first.startswith(b"HTTP/1.1 200")

            def cut_off() -> bool:
                try:
                    trickler.sendall(b"a")
                except OSError:
                    return True
                return False

            wait_for(cut_off, timeout=60)  # the server closed it: sends start failing
            # The reader, stalled longer than the idle timeout meanwhile, gets everything.
            time.sleep(3.0)
            chunks = [first]
            while chunk := reader.recv(1 << 20):
                chunks.append(chunk)
            body = b"".join(chunks).split(b"\r\n\r\n", 1)[1]
            assert body == layer.data
        finally:
            trickler.close()
            reader.close()
