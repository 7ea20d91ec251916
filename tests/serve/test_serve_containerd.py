"""containerd pulls through ``ocistore serve`` as a mirror in ``hosts.toml``, never upstream."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import pytest
from containerd_daemon import Containerd
from regfixtures.registry import registry_requests
from servefixtures import Served, write_hosts_toml


@pytest.mark.parametrize("variant", ["single-oci", "single-docker", "multi-oci", "multi-docker"])
def test_containerd_pulls_through_the_mirror(
    served: Served, containerd: Containerd, tmp_path: Path, variant: str
) -> None:
    path, image = served.images[variant]
    ref = f"{served.upstream}/{path}:v1"
    hosts_dir = tmp_path / "certs.d"
    write_hosts_toml(hosts_dir, served.upstream, [served.server.url])
    before = len(registry_requests(served.registry))
    served_before = len(served.server.access_log())
    containerd.pull(ref, "--hosts-dir", str(hosts_dir), "--plain-http")
    try:
        # The registry's digest (of the index for a multi-arch image), verified by containerd.
        assert containerd.image_digest(ref) == image.digest
        upstream_after = [p for _, p in registry_requests(served.registry)[before:]]
        assert [p for p in upstream_after if path in p] == []
        mirror = [unquote(line) for line in served.server.access_log()[served_before:]]
        assert any(f"/v2/{path}/manifests/v1?ns={served.upstream}" in line for line in mirror)
        kind, media = variant.split("-")
        expected = f"{media}-linux/amd64" if kind == "multi" else f"top-{media}"
        with containerd.mounted(ref, "linux/amd64") as view:
            assert (view / "etc/label").read_text() == expected
    finally:
        containerd.reset()
