"""No leaking private images: only what was pulled without credentials is served by default."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from node_registries import ManagerRegistries
from servefixtures import build_image, publish, running_server, unique_files

import ocistore
from ocistore import RegistryOptions
from ocistore.serve import ServePolicy
from ocistore.store import ImageRecord, PullCredential, PullRecord, Store


def _status(url: str, path: str, ns: str) -> int:
    return httpx.get(f"{url}{path}", params={"ns": ns}, timeout=30).status_code


def test_images_pulled_with_credentials_are_served_only_when_widened(
    manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    plain, basic = manager_registries.plain.host, manager_registries.basic.host
    public = build_image([unique_files("public")])
    private = build_image([unique_files("private")])
    built = build_image([unique_files("built-here")])
    publish(public, f"{plain}/privacy/public:v1", tmp_path)
    publish(private, f"{plain}/privacy/private:v1", tmp_path)  # one storage behind both
    store = Store(tmp_path / "store")
    ocistore.pull(f"{plain}/privacy/public:v1", store=store)
    pulled = ocistore.pull(
        f"{basic}/privacy/private:v1",
        store=store,
        options=RegistryOptions(auth=(manager_registries.user, manager_registries.password)),
    )
    assert pulled.credential_hash is not None  # the store recorded a credential
    built.write_to_store(store, f"{plain}/privacy/built:v1")  # built here, never pulled

    public_paths = [
        "/v2/privacy/public/manifests/v1",
        f"/v2/privacy/public/manifests/{public.digest}",
        f"/v2/privacy/public/blobs/{public.layers[0].digest}",
        f"/v2/privacy/public/blobs/{public.config_digest}",
    ]
    private_paths = [
        "/v2/privacy/private/manifests/v1",
        f"/v2/privacy/private/manifests/{private.digest}",
        f"/v2/privacy/private/blobs/{private.layers[0].digest}",
        f"/v2/privacy/private/blobs/{private.config_digest}",
    ]
    built_paths = ["/v2/privacy/built/manifests/v1", f"/v2/privacy/built/blobs/{built.digest}"]

    with running_server(store.root) as server:
        assert [_status(server.url, p, plain) for p in public_paths] == [200] * 4
        assert [_status(server.url, p, basic) for p in private_paths] == [404] * 4
        assert [_status(server.url, p, plain) for p in built_paths] == [404] * 2
        # A private blob is not reachable through a public repository's name either.
        leak = f"/v2/privacy/public/blobs/{private.layers[0].digest}"
        assert _status(server.url, leak, plain) == 404

    with running_server(store.root, "--serve-private-registry", basic) as server:
        assert [_status(server.url, p, basic) for p in private_paths] == [200] * 4
        assert [_status(server.url, p, plain) for p in built_paths] == [404] * 2

    with running_server(store.root, "--serve-private") as server:
        assert [_status(server.url, p, basic) for p in private_paths] == [200] * 4
        assert [_status(server.url, p, plain) for p in built_paths] == [200] * 2
        body = httpx.get(
            f"{server.url}/v2/privacy/private/blobs/{private.layers[0].digest}",
            params={"ns": basic},
            timeout=30,
        ).content
        assert body == private.layers[0].data


def _record(source: str = "pull", repository: str = "registry.example.com/team/app") -> ImageRecord:
    now = datetime.now(UTC)
    return ImageRecord(
        reference=f"{repository}:1",
        repository=repository,
        tag="1",
        digest="sha256:" + "a" * 64,
        index_digest=None,
        platform="linux/amd64",
        media_type="application/vnd.oci.image.manifest.v1+json",
        size=1,
        created=now,
        last_used=now,
        pinned=False,
        source=source,
    )


def _pulled_with(*credentials: PullCredential) -> PullRecord:
    return PullRecord("sha256:" + "a" * 64, datetime.now(UTC), {"team/app": credentials})


SECRET = PullCredential.secret(namespace="ns", name="regcred", uid="u", credential_hash="ab" * 32)


@pytest.mark.parametrize(
    ("policy", "record", "pull", "allowed"),
    [
        (ServePolicy(), _record(), None, True),
        (ServePolicy(), _record(), _pulled_with(PullCredential.node()), True),
        (ServePolicy(), _record(), _pulled_with(SECRET), False),
        (ServePolicy(), _record(), _pulled_with(PullCredential.node(), SECRET), False),
        (
            ServePolicy(),
            _record(),
            _pulled_with(PullCredential.service_account(namespace="n", name="sa", uid="u")),
            False,
        ),
        (ServePolicy(), _record(source="import"), None, False),
        (ServePolicy(), _record(source="build"), None, False),
        (ServePolicy(serve_private=True), _record(source="import"), _pulled_with(SECRET), True),
        (
            ServePolicy(private_registries=frozenset({"registry.example.com"})),
            _record(),
            _pulled_with(SECRET),
            True,
        ),
        (
            ServePolicy(private_registries=frozenset({"registry.example.com"})),
            _record(repository="other.example.com/team/app"),
            _pulled_with(SECRET),
            False,
        ),
    ],
)
def test_policy_table(
    policy: ServePolicy, record: ImageRecord, pull: PullRecord | None, allowed: bool
) -> None:
    assert policy.allows(record, pull) is allowed
