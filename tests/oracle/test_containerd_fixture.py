"""The containerd oracle itself: it starts privately, pulls from a test registry, mounts a view."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from containerd_daemon import Containerd
from regfixtures.registry import free_port, registry_config, running_registry

from ocistore.testing.imagebuild import build_image


def test_private_containerd_pulls_and_mounts_a_view(containerd: Containerd, tmp_path: Path) -> None:
    port = free_port()
    config = registry_config(port=port, storage=tmp_path / "storage")
    with running_registry("plain", tmp_path / "registry", config) as registry:
        image = build_image([{"etc/hello": b"from the oracle\n"}])
        layout = tmp_path / "layout"
        image.write_layout(layout, "v1")
        ref = f"{registry.host}/oracle/smoke:v1"
        subprocess.run(
            ["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{ref}"],
            check=True,
            capture_output=True,
        )
        containerd.pull(ref, "--plain-http")
        assert containerd.image_digest(ref) == image.digest
        with containerd.mounted(ref) as view:
            assert (view / "etc/hello").read_bytes() == b"from the oracle\n"
        # Its socket is private: the machine's default socket is not the one in use.
        assert str(containerd.socket).startswith(str(containerd.base))
    containerd.reset()
    assert containerd.ctr("images", "ls", "-q").stdout.strip() == b""


def test_overlay_probe_answers_without_leaving_mounts(tmp_path: Path) -> None:
    if subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0":
        pytest.skip("NOT RUN: mounting needs root")
    from containerd_daemon import overlay_supported

    overlay_supported(tmp_path)
    mounts = Path("/proc/self/mounts").read_text()
    assert str(tmp_path) not in mounts
