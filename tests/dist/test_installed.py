"""The package as installed: one version everywhere, and (in CI) the wheel, not the checkout.

CI installs the wheel from scripts/build-dist into a fresh venv and runs the whole suite with it
and ``OCISTORE_TEST_INSTALLED=1``; these tests prove that is what ran.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path

import pytest
from node_registries import ManagerRegistries

import ocistore
import ocistore._core

ROOT = Path(__file__).resolve().parents[2]
# The console script pip wrote for the entry point, beside this interpreter.
COMMAND = Path(sys.executable).parent / "ocistore"


def run(*args: str | Path) -> str:
    result = subprocess.run(
        [str(COMMAND), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"ocistore {args} failed: {result.stderr}"
    return result.stdout


def test_one_version_everywhere() -> None:
    version = importlib.metadata.version("ocistore")
    assert ocistore.__version__ == ocistore._core.__version__ == version
    assert run("--version").strip() == f"ocistore, version {version}"


@pytest.fixture
def installed() -> None:
    if not os.environ.get("OCISTORE_TEST_INSTALLED"):
        reason = "OCISTORE_TEST_INSTALLED is not set (the suite runs against the checkout)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the suite against the installed wheel: {reason}")
        pytest.skip(f"NOT RUN: {reason}")


@pytest.mark.usefixtures("installed")
def test_the_suite_imports_the_installed_wheel() -> None:
    site_packages = {Path(sysconfig.get_path(key)).resolve() for key in ("purelib", "platlib")}
    for module in (ocistore, ocistore._core):
        location = Path(str(module.__file__)).resolve()
        assert any(location.is_relative_to(site) for site in site_packages), location
        assert not location.is_relative_to(ROOT / "python"), location
    assert str(ROOT / "python") not in sys.path
    # pip's record of where the distribution came from (PEP 610): a wheel file, not a directory.
    direct_url = json.loads(
        importlib.metadata.distribution("ocistore").read_text("direct_url.json") or "{}"
    )
    assert direct_url["url"].endswith(".whl"), direct_url
    assert "archive_info" in direct_url and "dir_info" not in direct_url, direct_url


def test_the_installed_command_pulls_from_a_local_registry(
    manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    """umoci makes the image, skopeo pushes it and reads its digest, the installed command pulls."""
    layout, bundle = tmp_path / "layout", tmp_path / "bundle"
    # umoci 0.4.7's `insert` writes a layer without tar padding (GNU tar rejects it too), so the
    # layer comes from `unpack` + `repack`.
    rootless = ["--rootless"] if os.geteuid() else []
    umoci = [
        ["init", "--layout", layout],
        ["new", "--image", f"{layout}:1"],
        ["unpack", *rootless, "--image", f"{layout}:1", bundle],
    ]
    for command in umoci:
        subprocess.run(["umoci", *map(str, command)], check=True, capture_output=True)
    (bundle / "rootfs" / "hello").write_text("hello from umoci\n")
    subprocess.run(
        ["umoci", "repack", *rootless, "--image", f"{layout}:1", str(bundle)],
        check=True,
        capture_output=True,
    )
    image = f"{manager_registries.plain.host}/dist/hello-{uuid.uuid4().hex[:6]}:1"
    subprocess.run(
        ["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:1", f"docker://{image}"],
        check=True,
        capture_output=True,
    )
    inspected = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{image}"],
        check=True,
        capture_output=True,
        text=True,
    )
    store, rootfs = tmp_path / "store", tmp_path / "rootfs"
    run("--store", store, "pull", image, "--plain-http", "--unpack", rootfs)
    (listed,) = json.loads(run("--store", store, "--json", "images"))
    registry_digest = json.loads(inspected.stdout)["Digest"]
    assert (listed["reference"], listed["digest"]) == (image, registry_digest)
    assert (rootfs / "hello").read_text() == "hello from umoci\n"
