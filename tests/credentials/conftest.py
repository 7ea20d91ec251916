"""Shared fixtures for the credential tests: small executables written into tmp dirs."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ScriptWriter = Callable[[Path, str], Path]


def _write_executable(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def write_executable() -> ScriptWriter:
    """Writes a Python script (run by this interpreter) and makes it executable."""
    return _write_executable


@pytest.fixture
def env_with_path() -> Callable[[Path], dict[str, str]]:
    """The current environment with a directory first on PATH."""

    def build(directory: Path) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{directory}{os.pathsep}{env.get('PATH', '')}"
        return env

    return build
