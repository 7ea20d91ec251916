"""Same work: ocistore's root filesystem against umoci's for the same image."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from peerbench.jobs import Setup


def compare_with_umoci(setup: Setup) -> str:
    """``diff -rq --no-dereference`` of ocistore's unpacked tree and umoci's (gzip image)."""
    if shutil.which("umoci") is None:
        return "n/a: umoci not installed"
    bundle = setup.scratch.parent / "check-umoci"
    shutil.rmtree(bundle, ignore_errors=True)
    layout = f"{setup.warm_layouts['gzip']}:{setup.tags['gzip']}"
    unpacked = subprocess.run(
        ["umoci", "unpack", "--image", layout, str(bundle)], capture_output=True, check=False
    )
    if unpacked.returncode != 0:
        return "n/a: umoci unpack failed"
    diff = subprocess.run(
        ["diff", "-rq", "--no-dereference", str(setup.warm_tree), str(bundle / "rootfs")],
        capture_output=True,
        text=True,
        check=False,
    )
    entries = sum(1 for _ in Path(setup.warm_tree).rglob("*"))
    shutil.rmtree(bundle, ignore_errors=True)
    if diff.returncode == 0:
        return f"ocistore's and umoci's root filesystems are identical ({entries} entries)"
    lines = diff.stdout.splitlines() + diff.stderr.splitlines()
    return f"{len(lines)} differences from umoci's root filesystem, e.g. {lines[:3]}"
