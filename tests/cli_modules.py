"""What a fresh ``ocistore`` command-line process imported (for the start-up cost tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

# What a process that talks only to plain-HTTP registries must not import: the HTTP stack httpx
# brings. (``ocistore.registry`` parks None at ``httpx._main``, so httpx never loads its CLI.)
HTTP_STACK = ("httpx", "httpcore", "h11", "ssl", "_ssl", "email", "http.client", "urllib.request")

_RUN_AND_LIST = """
import json, runpy, sys
sys.argv = ["ocistore", *sys.argv[1:]]
try:
    runpy.run_module("ocistore", run_name="__main__")
except SystemExit as exit:
    assert not exit.code, exit.code
print(json.dumps(sorted(m for m, v in sys.modules.items() if v is not None)))
"""


def run_and_list_modules(*args: str | Path) -> tuple[list[str], set[str]]:
    """Runs ``ocistore ARGS`` (``python -m ocistore``) in a new process, which must succeed:
    the lines it printed, and the modules it had loaded at its end (parked ``None`` entries,
    such as ``httpx._main``, left out)."""
    done = subprocess.run(
        [sys.executable, "-c", _RUN_AND_LIST, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    *printed, modules = done.stdout.splitlines()
    return printed, set(json.loads(modules))


def http_stack(loaded: Iterable[str]) -> list[str]:
    """The modules of :data:`HTTP_STACK` (with their submodules) among ``loaded``."""
    return sorted(m for m in loaded if m in HTTP_STACK or m.split(".")[0] in HTTP_STACK)
