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
from ci import cannot_run
from unpack_layers import Sandbox, snapshot

import ocistore


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


@pytest.fixture(autouse=True, params=["0", "2"], ids=["one-thread", "two-writers"])
def writers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Every layer engine test runs with small files written on the applying thread only, and
    on two worker threads (``OCISTORE_UNPACK_WRITERS``): both must pass the same oracles."""
    monkeypatch.setenv("OCISTORE_UNPACK_WRITERS", str(request.param))
    return int(request.param)


@pytest.fixture(params=["auto", "walk"])
def resolver(request: pytest.FixtureRequest) -> str:
    """The layer engine's path resolver: the kernel's ``openat2(RESOLVE_IN_ROOT)`` ("auto") or
    the component-wise fallback for kernels without it ("walk"); hostile input runs through both.
    """
    return str(request.param)


NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def _imports_as_nobody(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, "-c", "import ocistore, ocistore.layer"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="session")
def nobody_python() -> Iterator[list[str]]:
    """The command that runs this Python, with ocistore importable, as the unprivileged user.

    A checkout or venv under a 0700 directory (a CI clone may be) is out of the user's reach:
    then the package is copied to a world-readable directory and run by an interpreter the user
    can execute (this one's real path, or the system's python3; the abi3 module fits both).
    Not being root, or no way working, fails in CI and skips elsewhere.
    """
    if os.geteuid() != 0:
        cannot_run("needs root to switch to an unprivileged user")
    direct = [*AS_NOBODY, sys.executable]
    if _imports_as_nobody(direct).returncode == 0:
        yield direct
        return
    copy = Path(tempfile.mkdtemp(prefix="ocistore-nobody-pkg-", dir="/tmp"))
    try:
        package = Path(ocistore.__file__).parent
        shutil.copytree(package, copy / "ocistore", ignore=shutil.ignore_patterns("__pycache__"))
        for path in [copy, *copy.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        errors = []
        for interpreter in (os.path.realpath(sys.executable), "/usr/bin/python3"):
            copied = [*AS_NOBODY, "env", f"PYTHONPATH={copy}", interpreter, "-s"]
            probe = _imports_as_nobody(copied)
            if probe.returncode == 0:
                yield copied
                return
            errors.append(f"{interpreter}: {probe.stderr[-200:]}")
        cannot_run(f"the unprivileged user cannot import ocistore: {errors}")
    finally:
        shutil.rmtree(copy, ignore_errors=True)


@pytest.fixture
def nobody_work(nobody_python: list[str]) -> Iterator[Path]:
    """A directory the unprivileged user (65534) owns, in a fresh world-searchable /tmp dir.

    Not under pytest's basetemp: another pytest session may reset that to 0700 at any time.
    """
    top = Path(tempfile.mkdtemp(prefix="ocistore-nobody-", dir="/tmp"))
    try:
        os.chmod(top, 0o755)
        work = top / "work"
        work.mkdir()
        os.chown(work, NOBODY, NOBODY)
        yield work
    finally:
        shutil.rmtree(top, ignore_errors=True)
