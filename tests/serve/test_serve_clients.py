"""skopeo and another ocistore store pull through the mirror; the upstream sees nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from regfixtures.proxy import Fault, FaultProxy
from regfixtures.registry import registry_requests
from servefixtures import BuiltImage, Served, running_server, write_hosts_toml

import ocistore
from ocistore.errors import DigestMismatchError
from ocistore.registry import RegistryOptions, RetryPolicy
from ocistore.store import Store


def _upstream_requests_for(served: Served, since: int, path: str) -> list[str]:
    return [p for _, p in registry_requests(served.registry)[since:] if path in p]


def test_skopeo_copies_through_the_mirror(served: Served, tmp_path: Path) -> None:
    # skopeo (like Docker's registry-mirrors) sends no ?ns=: the server's default registry.
    with running_server(served.store.root, "--default-registry", served.upstream) as server:
        for variant in ("single-docker", "multi-oci"):
            path, image = served.images[variant]
            before = len(registry_requests(served.registry))
            layout = tmp_path / variant
            source = f"docker://{server.host}/{path}:v1"
            subprocess.run(
                ["skopeo", "copy", "--src-tls-verify=false", source, f"oci:{layout}:v1"],
                check=True,
                capture_output=True,
            )
            assert _upstream_requests_for(served, before, path) == []
            raw = subprocess.run(
                ["skopeo", "inspect", "--raw", "--tls-verify=false", source],
                check=True,
                capture_output=True,
            ).stdout
            expected = getattr(image, "index", None) or getattr(image, "manifest", None)
            assert raw == expected
            index = json.loads((layout / "index.json").read_text())
            assert index["manifests"], "skopeo wrote the image"


def test_another_store_pulls_through_the_mirror(served: Served, tmp_path: Path) -> None:
    hosts_dir = tmp_path / "certs.d"
    write_hosts_toml(hosts_dir, served.upstream, [served.server.url])
    peer = Store(tmp_path / "peer")
    for variant, (path, image) in served.images.items():
        before = len(registry_requests(served.registry))
        pulled = ocistore.pull(
            f"{served.upstream}/{path}:v1",
            store=peer,
            options=RegistryOptions(hosts_dir=hosts_dir),
            platform="linux/amd64",
        )
        assert (pulled.index_digest or pulled.digest) == image.digest, variant
        assert pulled.host is not None and pulled.host.startswith(served.server.url)
        assert _upstream_requests_for(served, before, path) == []
    assert peer.fsck().ok


def test_peers_answering_404_or_short_bodies_are_skipped_and_corrupt_ones_refused(
    served: Served, tmp_path: Path
) -> None:
    path, image = served.images["single-oci"]
    assert isinstance(image, BuiltImage)
    ref = f"{served.upstream}/{path}:v1"
    layer = image.layers[1].digest
    with running_server(tmp_path / "empty-store") as empty:
        proxy = FaultProxy(served.server.url)
        try:
            # A peer that has nothing (404), one that cuts every body short, then a good one.
            proxy.add(Fault(path=layer, truncate_after=100, times=None))
            hosts_dir = tmp_path / "certs.d"
            write_hosts_toml(hosts_dir, served.upstream, [empty.url, proxy.url, served.server.url])
            before = len(registry_requests(served.registry))
            peer = Store(tmp_path / "peer")
            options = RegistryOptions(hosts_dir=hosts_dir, retry=RetryPolicy(attempts=2))
            pulled = ocistore.pull(ref, store=peer, options=options)
            assert pulled.digest == image.digest and peer.fsck().ok
            assert any(layer in line for line in empty.access_log())  # asked, 404
            assert proxy.requests(path=layer)  # asked, cut short
            assert any(layer in line for line in served.server.access_log())
            assert _upstream_requests_for(served, before, path) == []

            # A peer whose bytes are wrong is never trusted: the pull fails, nothing is stored.
            proxy.reset()
            proxy.add(Fault(path=layer, corrupt_at=10, times=None))
            write_hosts_toml(hosts_dir, served.upstream, [proxy.url])
            victim = Store(tmp_path / "victim")
            with pytest.raises(DigestMismatchError):
                ocistore.pull(ref, store=victim, options=options)
            assert not victim.blob_path(layer).exists() and victim.images() == []
        finally:
            proxy.close()
