"""The containerd oracle itself: it starts privately, pulls from a test registry, mounts a view."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from containerd_daemon import Containerd
from node_registries import ManagerRegistries
from publishing import copy_with_skopeo

from ocistore.testing.imagebuild import build_image


def test_private_containerd_pulls_and_mounts_a_view(
    containerd: Containerd, manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    image = build_image([{"etc/hello": b"from the oracle\n"}])
    ref = f"{manager_registries.plain.host}/oracle/{uuid.uuid4().hex[:8]}:v1"
    copy_with_skopeo(image, ref, tmp_path)
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
