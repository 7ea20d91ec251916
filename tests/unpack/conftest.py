"""Fixtures for the layer engine tests: a destination with canaries around it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from unpack_layers import Sandbox, snapshot


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    top = tmp_path / "box"
    dest = top / "dest"
    canary = top / "canary"
    (canary / "sub").mkdir(parents=True)
    (canary / "file").write_bytes(b"canary")
    (canary / "sub" / "nested").write_bytes(b"nested")
    (canary / "dir-0755").mkdir(mode=0o755)
    dest.mkdir()
    box = Sandbox(top, dest, canary, snapshot(top, exclude=dest))
    yield box
    box.assert_outside_untouched()


NOBODY = 65534


@pytest.fixture
def nobody_work() -> Iterator[Path]:
    """A directory the unprivileged user (65534) owns, in a fresh world-searchable /tmp dir.

    Not under pytest's basetemp: another pytest session may reset that to 0700 at any time.
    """
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    top = Path(tempfile.mkdtemp(prefix="ocistore-nobody-", dir="/tmp"))
    try:
        os.chmod(top, 0o755)
        work = top / "work"
        work.mkdir()
        os.chown(work, NOBODY, NOBODY)
        probe = subprocess.run(
            [
                "setpriv",
                f"--reuid={NOBODY}",
                f"--regid={NOBODY}",
                "--clear-groups",
                sys.executable,
                "-c",
                "import ocistore",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if probe.returncode != 0:
            pytest.skip(f"the unprivileged user cannot import ocistore here: {probe.stderr[-300:]}")
        yield work
    finally:
        shutil.rmtree(top, ignore_errors=True)
