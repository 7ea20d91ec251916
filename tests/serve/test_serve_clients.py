"""skopeo and another ocistore store pull through the mirror; the upstream sees nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from regfixtures.registry import registry_requests
from servefixtures import Served, running_server, write_hosts_toml

import ocistore
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
            f"{served.upstream}/{path}:v1", store=peer, hosts_dir=hosts_dir, platform="linux/amd64"
        )
        assert (pulled.index_digest or pulled.digest) == image.digest, variant
        assert pulled.host is not None and pulled.host.startswith(served.server.url)
        assert _upstream_requests_for(served, before, path) == []
    assert peer.fsck().ok
