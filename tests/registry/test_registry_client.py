"""RegistryClient against the real registry in every setup, and through the fault proxy."""

from __future__ import annotations

import io
import json
import os

import pytest
from regfixtures.blobs import OCI_MANIFEST, push_raw, raw_image, sha256
from regfixtures.proxy import Fault, FaultProxy
from regfixtures.registry import TEST_PASSWORD, TEST_USER
from regfixtures.setups import (
    FAST_RETRY,
    ListSink,
    Registries,
    Setup,
    make_setup,
    unique_repository,
)

from ocistore.errors import (
    AuthenticationError,
    DigestMismatchError,
    ManifestTooLargeError,
    RegistryError,
    UnsupportedManifestError,
)
from ocistore.registry import Connections, RegistryClient, StaticCredential
from ocistore.registry.mirrors import upstream_host


def proxied_client(proxy: FaultProxy, **kwargs: object) -> RegistryClient:
    """A client of the proxy that goes the full way from its first request: these tests count
    the requests its retries make (test_registry_lighthttp: the light way's fallbacks)."""
    host = upstream_host(proxy.host, plain_http=True)
    client = RegistryClient(host, retry=FAST_RETRY, **kwargs)  # type: ignore[arg-type]
    assert client.transport is not None
    return client


def test_push_then_pull_round_trip_in_every_setup(setup: Setup) -> None:
    repository = unique_repository(setup.name)
    image = raw_image([1000, 70_000])
    with setup.client() as client:
        push_raw(client, repository, "v1", image)
        head = client.head_manifest(repository, "v1")
        assert head.digest == image.digest
        assert head.media_type == OCI_MANIFEST
        assert head.size == len(image.manifest)
        fetched = client.get_manifest(repository, image.digest)
        assert fetched.data == image.manifest
        assert client.resolve(repository, "v1").digest == image.digest
        sink = ListSink()
        client.download_blob(repository, sha256(image.layers[1]), 70_000, sink)
        assert bytes(sink.data) == image.layers[1]
        assert client.read_blob(repository, sha256(image.config)) == image.config
        assert client.blob_exists(repository, sha256(image.layers[0])) == 1000
        assert client.blob_exists(repository, sha256(b"absent")) is None
        if setup.credentials:
            assert client.credential is setup.credentials[0]


def test_missing_manifest_is_manifest_unknown(setup: Setup) -> None:
    with setup.client() as client, pytest.raises(RegistryError) as raised:
        client.get_manifest(unique_repository(), "nope")
    assert raised.value.status == 404
    assert raised.value.code in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN")


def test_chunked_upload_and_cross_repository_mount(plain_client: RegistryClient) -> None:
    source, target = unique_repository(), unique_repository()
    blob = os.urandom(300_000)
    plain_client.upload_blob(source, sha256(blob), io.BytesIO(blob), len(blob), chunk_size=65_536)
    assert plain_client.blob_exists(source, sha256(blob)) == len(blob)
    assert plain_client.blob_exists(target, sha256(blob)) is None
    assert plain_client.mount_blob(target, sha256(blob), source)
    assert plain_client.blob_exists(target, sha256(blob)) == len(blob)
    # a blob the source does not have cannot be mounted
    assert not plain_client.mount_blob(target, sha256(b"nothing"), source)


def test_wrong_credentials_then_right_ones_are_tried_in_order(registries: Registries) -> None:
    for name in ("basic", "token"):
        setup = make_setup(registries, name)
        wrong = StaticCredential(TEST_USER, "wrong-password")
        right = StaticCredential(TEST_USER, TEST_PASSWORD)
        with setup.client(credentials=[wrong, right]) as client:
            client.blob_exists(unique_repository(), sha256(b"x"))
            assert client.credential is right


def test_only_wrong_credentials_fail_with_authentication_error(registries: Registries) -> None:
    for name in ("basic", "token"):
        setup = make_setup(registries, name)
        wrong = StaticCredential(TEST_USER, "wrong-password")
        with setup.client(credentials=[wrong]) as client:
            with pytest.raises(AuthenticationError) as raised:
                client.head_manifest(unique_repository(), "latest")
            assert raised.value.status == 401
            assert TEST_PASSWORD not in str(raised.value)
            assert "wrong-password" not in str(raised.value)
            assert "wrong-password" not in repr(client.auth) + repr(wrong)


def test_bearer_tokens_are_cached_per_scope(registries: Registries) -> None:
    setup = make_setup(registries, "token")
    repository = unique_repository()
    with setup.client() as client:
        push_raw(client, repository, "v1", raw_image([10]))
    issued = len(registries.issuer.requests)
    with Connections() as connections:  # a process that has not talked to the registry yet
        with setup.client(connections=connections) as client:
            for _ in range(3):
                client.head_manifest(repository, "v1")
            assert len(registries.issuer.requests) == issued + 1  # pull scope: one token
            with pytest.raises(RegistryError):
                client.head_manifest(unique_repository(), "v1")
            assert len(registries.issuer.requests) == issued + 2  # another scope: another
        # The next client of the process (the next resolve or pull) reuses the tokens.
        with setup.client(connections=connections) as client:
            client.head_manifest(repository, "v1")
        assert len(registries.issuer.requests) == issued + 2


def test_refresh_token_from_the_issuer_works_as_identity_token(registries: Registries) -> None:
    setup = make_setup(registries, "token")
    repository = unique_repository()
    with setup.client() as client:
        push_raw(client, repository, "v1", raw_image([10]))
    assert registries.issuer.refresh_tokens, "the issuer should have handed out a refresh token"
    refresh = next(iter(registries.issuer.refresh_tokens))
    identity = StaticCredential(None, None, identity_token=refresh)
    with setup.client(credentials=[identity]) as client:
        assert client.head_manifest(repository, "v1").digest is not None
    grants = [r["grant"] for r in registries.issuer.requests if r["ok"]]
    assert "refresh_token" in grants


def test_tls_registry_with_the_wrong_ca_fails_clearly(registries: Registries) -> None:
    setup = make_setup(registries, "tls")
    with setup.client(ca_file=None) as client, pytest.raises(RegistryError) as raised:
        client.head_manifest("x/y", "latest")
    assert "TLS" in str(raised.value)


def test_resume_after_a_dropped_connection_uses_range(
    proxy: FaultProxy, plain_client: RegistryClient
) -> None:
    repository = unique_repository()
    image = raw_image([200_000])
    push_raw(plain_client, repository, "v1", image)
    digest = sha256(image.layers[0])
    proxy.add(Fault(path=f"/blobs/{digest}", truncate_after=50_000))
    with proxied_client(proxy) as client:
        sink = ListSink()
        client.download_blob(repository, digest, 200_000, sink)
    assert bytes(sink.data) == image.layers[0]
    gets = proxy.requests("GET", f"/blobs/{digest}")
    assert len(gets) == 2
    assert "range" not in gets[0].headers
    assert gets[1].headers["range"] == "bytes=50000-"


def test_partial_sink_is_continued_not_restarted(
    proxy: FaultProxy, plain_client: RegistryClient
) -> None:
    repository = unique_repository()
    image = raw_image([100_000])
    push_raw(plain_client, repository, "v1", image)
    digest = sha256(image.layers[0])
    with proxied_client(proxy) as client:
        sink = ListSink(image.layers[0][:30_000])  # what a killed process left behind
        received = client.download_blob(repository, digest, 100_000, sink)
    assert bytes(sink.data) == image.layers[0]
    assert received == 70_000
    assert proxy.requests("GET", "/blobs/")[0].headers["range"] == "bytes=30000-"


def test_server_ignoring_range_is_discarded_and_bounded(
    proxy: FaultProxy, plain_client: RegistryClient
) -> None:
    repository = unique_repository()
    image = raw_image([100_000])
    push_raw(plain_client, repository, "v1", image)
    digest = sha256(image.layers[0])
    proxy.add(Fault(path="/blobs/", ignore_range=True, times=None))
    with proxied_client(proxy) as client:
        sink = ListSink(image.layers[0][:40_000])
        client.download_blob(repository, digest, 100_000, sink)
        assert bytes(sink.data) == image.layers[0]
        # every response truncated and Range ignored: give up instead of looping forever
        proxy.reset()
        proxy.add(Fault(path="/blobs/", ignore_range=True, truncate_after=60_000, times=None))
        with pytest.raises(RegistryError, match="ignoring Range"):
            client.download_blob(repository, digest, 100_000, ListSink(image.layers[0][:40_000]))


def test_a_206_starting_elsewhere_is_refused(
    proxy: FaultProxy, plain_client: RegistryClient
) -> None:
    repository = unique_repository()
    image = raw_image([100_000])
    push_raw(plain_client, repository, "v1", image)
    proxy.add(Fault(path="/blobs/", range_shift=10))
    with proxied_client(proxy) as client, pytest.raises(RegistryError, match="Content-Range"):
        client.download_blob(repository, sha256(image.layers[0]), 100_000, ListSink(b"x" * 10))


def test_wrong_docker_content_digest_is_rejected(
    proxy: FaultProxy, plain_client: RegistryClient
) -> None:
    repository = unique_repository()
    image = raw_image([10])
    push_raw(plain_client, repository, "v1", image)
    proxy.add(Fault(path="/manifests/v1", set_headers={"Docker-Content-Digest": sha256(b"x")}))
    with proxied_client(proxy) as client, pytest.raises(DigestMismatchError):
        client.get_manifest(repository, "v1")


def test_manifest_body_not_matching_the_requested_digest_is_rejected(
    proxy: FaultProxy, plain_client: RegistryClient
) -> None:
    repository = unique_repository()
    image = raw_image([10])
    push_raw(plain_client, repository, "v1", image)
    proxy.add(
        Fault(
            path="/manifests/",
            transform=lambda body: body.replace(b'"schemaVersion": 2', b'"schemaVersion":2'),
            drop_headers=("Docker-Content-Digest",),
        )
    )
    with proxied_client(proxy) as client, pytest.raises(DigestMismatchError):
        client.get_manifest(repository, image.digest)


def test_schema1_manifests_are_refused(proxy: FaultProxy) -> None:
    schema1 = json.dumps({"schemaVersion": 1, "name": "x/y", "tag": "v1", "fsLayers": []})
    for content_type in (
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/json",
    ):
        proxy.add(
            Fault(
                path="/manifests/old",
                status=200,
                body=schema1.encode(),
                headers={"Content-Type": content_type},
            )
        )
        with proxied_client(proxy) as client, pytest.raises(UnsupportedManifestError):
            client.get_manifest("x/y", "old")


def test_oversized_manifests_are_refused_without_reading_them_whole(proxy: FaultProxy) -> None:
    big = b"{" + b" " * (5 * 1024 * 1024) + b"}"
    proxy.add(
        Fault(path="/manifests/big", status=200, body=big, headers={"Content-Type": OCI_MANIFEST})
    )
    with proxied_client(proxy) as client, pytest.raises(ManifestTooLargeError):
        client.get_manifest("x/y", "big")


def test_429_retry_after_is_honoured(proxy: FaultProxy, plain_client: RegistryClient) -> None:
    repository = unique_repository()
    image = raw_image([10])
    push_raw(plain_client, repository, "v1", image)
    proxy.add(Fault(path="/manifests/", status=429, headers={"Retry-After": "1"}, times=2))
    slept: list[float] = []
    with proxied_client(proxy, sleep=slept.append) as client:
        assert client.get_manifest(repository, "v1").digest == image.digest
    assert slept == [1.0, 1.0]


def test_5xx_bursts_are_retried_then_reported(
    proxy: FaultProxy, plain_client: RegistryClient
) -> None:
    repository = unique_repository()
    image = raw_image([10])
    push_raw(plain_client, repository, "v1", image)
    proxy.add(Fault(path="/manifests/", status=502, times=1))
    proxy.add(Fault(path="/manifests/", status=500, times=1))
    proxy.add(Fault(path="/manifests/", status=503, times=1))
    slept: list[float] = []
    with proxied_client(proxy, sleep=slept.append) as client:
        assert client.get_manifest(repository, "v1").digest == image.digest
        assert len(slept) == 3
        proxy.add(Fault(path="/manifests/", status=503, times=None))
        with pytest.raises(RegistryError) as raised:
            client.get_manifest(repository, "v1")
        assert raised.value.status == 503


def test_authorization_is_not_sent_to_another_host_on_redirect(
    registries: Registries, plain_client: RegistryClient
) -> None:
    basic = make_setup(registries, "basic")
    repository = unique_repository()
    image = raw_image([5000])
    with basic.client() as client:
        push_raw(client, repository, "v1", image)
    storage = FaultProxy(registries.plain.url)  # "object storage": another host, no auth
    front = FaultProxy(registries.basic.url)
    try:
        front.add(
            Fault(
                path="/blobs/",
                method="GET",
                times=None,
                redirect_to=lambda seen: storage.url + seen.path + "?X-Signature=s3cr3t",
            )
        )
        digest = sha256(image.layers[0])
        with proxied_client(front, credentials=basic.credentials) as client:
            client.head_manifest(repository, "v1")  # learns the Basic challenge
            sink = ListSink()
            client.download_blob(repository, digest, 5000, sink)
        assert bytes(sink.data) == image.layers[0]
        assert "authorization" in front.requests("GET", "/blobs/")[-1].headers
        redirected = storage.requests("GET", "/blobs/")
        assert len(redirected) == 1
        assert "authorization" not in redirected[0].headers
    finally:
        storage.close()
        front.close()


def test_oversized_token_responses_are_refused(registries: Registries) -> None:
    huge = json.dumps({"token": "a" * (2 * 1024 * 1024)}).encode()
    token_server = FaultProxy(registries.issuer.url.rsplit("/", 1)[0])
    front = FaultProxy(registries.token.url)
    try:
        token_server.add(
            Fault(
                path="/token",
                status=200,
                body=huge,
                times=None,
                headers={"Content-Type": "application/json"},
            )
        )
        front.add(
            Fault(
                path="/v2/",
                times=None,
                set_headers={
                    "WWW-Authenticate": (
                        f'Bearer realm="{token_server.url}/token",'
                        f'service="{registries.issuer.service}"'
                    )
                },
            )
        )
        with proxied_client(front) as client, pytest.raises(AuthenticationError, match="token"):
            client.head_manifest("x/y", "v1")
    finally:
        token_server.close()
        front.close()


def test_resolve_falls_back_to_get_without_a_digest_header_or_on_405(
    proxy: FaultProxy, plain_client: RegistryClient
) -> None:
    repository = unique_repository()
    image = raw_image([10])
    push_raw(plain_client, repository, "v1", image)
    proxy.add(Fault(path="/manifests/v1", method="HEAD", drop_headers=("Docker-Content-Digest",)))
    proxy.add(Fault(path="/manifests/v1", method="HEAD", status=405))
    with proxied_client(proxy) as client:
        assert client.transport is not None  # the full path (test_registry_lighthttp: the light)
        assert client.resolve(repository, "v1").digest == image.digest
        assert client.resolve(repository, "v1").digest == image.digest
        assert client.resolve(repository, "v1").digest == image.digest
    assert [s.method for s in proxy.requests(path="/manifests/v1")] == [
        "HEAD",
        "GET",
        "HEAD",
        "GET",
        "HEAD",
    ]


def test_expired_tokens_are_renewed_and_a_rejected_token_is_retried_once(
    registries: Registries,
) -> None:
    setup = make_setup(registries, "token")
    repository = unique_repository()
    image = raw_image([10])
    with setup.client() as client:
        push_raw(client, repository, "v1", image)
    front = FaultProxy(registries.token.url)
    try:
        with proxied_client(front, credentials=setup.credentials) as client:
            now = [1000.0]
            client.auth.clock = lambda: now[0]
            client.head_manifest(repository, "v1")
            assert client.auth.token_fetches == 1
            now[0] += 100  # well inside the issuer's 300 s
            client.head_manifest(repository, "v1")
            assert client.auth.token_fetches == 1
            now[0] += 300  # past expires_in
            client.head_manifest(repository, "v1")
            assert client.auth.token_fetches == 2
            # the registry rejects a token it accepted before: one retry with a fresh one
            challenge = front.requests(path="/manifests/")[0]
            assert challenge.status == 401
            front.add(
                Fault(
                    path="/manifests/v1",
                    status=401,
                    headers={
                        "WWW-Authenticate": f'Bearer realm="{registries.issuer.url}",'
                        f'service="{registries.issuer.service}",error="invalid_token"'
                    },
                )
            )
            assert client.head_manifest(repository, "v1").digest == image.digest
            assert client.auth.token_fetches == 3
    finally:
        front.close()
