"""hosts.toml mirrors: a pull-through cache (docker-registry in proxy mode) with fallback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from regfixtures.blobs import push_raw, raw_image, sha256
from regfixtures.proxy import FaultProxy
from regfixtures.registry import Registry, free_port, registry_config, start_registry
from regfixtures.setups import FAST_RETRY, ListSink, Registries, unique_repository

from ocistore.errors import RegistryError
from ocistore.registry.mirrors import load_hosts, upstream_host
from ocistore.registry.options import RegistryOptions
from ocistore.registry.session import RegistrySession


@pytest.fixture
def mirror(registries: Registries, tmp_path: Path) -> Iterator[Registry]:
    """A pull-through cache of the plain registry, as clusters put in front of Docker Hub."""
    config = registry_config(
        port=free_port(), storage=tmp_path / "cache", proxy_remote=registries.plain.url
    )
    registry = start_registry("mirror", tmp_path / "mirror", config)
    try:
        yield registry
    finally:
        registry.stop()


def write_hosts(config: Path, registry: str, body: str) -> Path:
    directory = config / registry
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "hosts.toml").write_text(body)
    return config


def test_pulls_go_through_the_mirror_and_fall_back_when_it_is_down(
    registries: Registries, mirror: Registry, tmp_path: Path
) -> None:
    upstream = registries.plain
    repository = unique_repository("mirrored")
    image = raw_image([4000, 9000])
    with RegistrySession(
        upstream.host, repository, RegistryOptions(plain_http=True, retry=FAST_RETRY)
    ) as s:
        push_raw(s.client(s.hosts[0]), repository, "v1", image)
    counter = FaultProxy(mirror.url)  # counts what reaches the mirror
    config = write_hosts(
        tmp_path / "certs.d",
        upstream.host,
        f'server = "{upstream.url}"\n\n[host."{counter.url}"]\n'
        'capabilities = ["pull", "resolve"]\n',
    )
    try:
        with RegistrySession(
            upstream.host, repository, RegistryOptions(hosts_dir=config, retry=FAST_RETRY)
        ) as s:
            assert [h.url for h in s.hosts] == [f"{counter.url}/v2", f"{upstream.url}/v2"]
            head = s.resolve("v1")
            assert head.digest == image.digest
            assert s.get_manifest(image.digest).data == image.manifest
            sink = ListSink()
            s.download_blob(sha256(image.layers[1]), 9000, sink)
            assert bytes(sink.data) == image.layers[1]
            assert s.last_host is not None and s.last_host.url == f"{counter.url}/v2"
        assert counter.requests("HEAD", "/manifests/v1")
        assert counter.requests("GET", f"/blobs/{sha256(image.layers[1])}")
        assert all("ns=" in seen.path for seen in counter.requests("GET", "/blobs/"))
        # the cache now holds the blob itself
        cached = list((mirror.directory.parent / "cache").rglob("data"))
        assert cached, "the pull-through cache should have stored content"

        mirror.stop()
        with RegistrySession(
            upstream.host, repository, RegistryOptions(hosts_dir=config, retry=FAST_RETRY)
        ) as s:
            assert s.resolve("v1").digest == image.digest
            sink = ListSink()
            s.download_blob(sha256(image.layers[0]), 4000, sink)
            assert bytes(sink.data) == image.layers[0]
            assert s.last_host is not None and s.last_host.url == f"{upstream.url}/v2"
    finally:
        counter.close()


def test_a_pull_only_mirror_never_resolves_tags(registries: Registries, tmp_path: Path) -> None:
    upstream = registries.plain
    repository = unique_repository()
    image = raw_image([100])
    counter = FaultProxy(upstream.url)
    config = write_hosts(
        tmp_path,
        upstream.host,
        f'server = "{upstream.url}"\n[host."{counter.url}"]\ncapabilities = ["pull"]\n',
    )
    try:
        with RegistrySession(
            upstream.host, repository, RegistryOptions(hosts_dir=config, retry=FAST_RETRY)
        ) as s:
            push_raw(s.client(s.hosts[-1]), repository, "v1", image)
            assert s.resolve("v1").digest == image.digest
            s.get_manifest(image.digest)
        assert not counter.requests(path="/manifests/v1")
        assert counter.requests("GET", f"/manifests/{image.digest}")
    finally:
        counter.close()


def test_hosts_toml_fields_are_read(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("")
    config = write_hosts(
        tmp_path,
        "registry.example:5000",
        'server = "https://registry.example:5000"\n'
        '[host."https://mirror.example/cache"]\n'
        'capabilities = ["pull"]\nca = "ca.pem"\nskip_verify = true\noverride_path = true\n'
        '[host."https://mirror.example/cache".header]\nx-team = ["a", "b"]\n',
    )
    mirror, server = load_hosts("registry.example:5000", config)
    assert mirror.url == "https://mirror.example/cache"
    assert mirror.capabilities == {"pull"}
    assert mirror.ca_files == (str(tmp_path / "registry.example:5000" / "ca.pem"),)
    assert mirror.skip_verify
    assert mirror.headers == (("x-team", "a"), ("x-team", "b"))
    assert not mirror.is_upstream
    assert server.url == "https://registry.example:5000/v2"
    assert server.is_upstream and server.capabilities == {"pull", "resolve", "push"}


def test_host_port_directory_and_default_and_docker_hub(tmp_path: Path) -> None:
    write_hosts(tmp_path, "reg.example_5000_", '[host."http://m1"]\n')
    write_hosts(tmp_path, "_default", '[host."http://fallback-mirror"]\n')
    assert load_hosts("reg.example:5000", tmp_path)[0].url == "http://m1/v2"
    assert load_hosts("other.example", tmp_path)[0].url == "http://fallback-mirror/v2"
    hub = load_hosts("docker.io", None)
    assert [h.url for h in hub] == ["https://registry-1.docker.io/v2"]
    assert upstream_host("127.0.0.1:5000").http_fallback
    assert not upstream_host("registry.example").http_fallback


def test_bad_hosts_toml_is_a_clear_error(tmp_path: Path) -> None:
    for body in ("server = 5\n", '[host."http://m"]\ncapabilities = ["fly"]\n', "not toml ["):
        config = write_hosts(tmp_path / str(abs(hash(body))), "r.example", body)
        with pytest.raises(RegistryError):
            load_hosts("r.example", config)


@settings(deadline=None)  # results must not depend on machine load
@given(st.lists(st.sampled_from(["pull", "resolve", "push"]), unique=True))
def test_capabilities_round_trip(capabilities: list[str]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        config = write_hosts(
            Path(directory),
            "r.example",
            f'[host."https://m"]\ncapabilities = {capabilities!r}\n'.replace("'", '"'),
        )
        assert load_hosts("r.example", config)[0].capabilities == frozenset(capabilities)
