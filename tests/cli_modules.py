"""What a fresh ``ocistore`` command-line process imported and compiled (for the start-up cost
tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import ocistore
from ocistore.testing.imagebuild import build_image

# What a process that talks only to plain-HTTP registries must not import: the HTTP stack httpx
# brings. (``ocistore.registry`` parks None at ``httpx._main``, so httpx never loads its CLI.)
HTTP_STACK = ("httpx", "httpcore", "h11", "ssl", "_ssl", "email", "http.client", "urllib.request")

# The "compile" audit event names the source of every compile(), exec() and eval() of text:
# what a dataclass or a NamedTuple generates, a forward reference, a module without bytecode.
_RUN_AND_LIST = """
import json, runpy, sys
compiled = []
def record(event, args):
    if event == "compile" and isinstance(args[0], (str, bytes)):
        source = args[0] if isinstance(args[0], str) else args[0].decode(errors="replace")
        compiled.append(source.strip().partition("\\n")[0])
sys.addaudithook(record)
sys.argv = ["ocistore", *sys.argv[1:]]
try:
    runpy.run_module("ocistore", run_name="__main__")
except SystemExit as exit:
    assert not exit.code, exit.code
modules = sorted(m for m, v in sys.modules.items() if v is not None)
print(json.dumps({"modules": modules, "compiled": compiled}))
"""


class Process(NamedTuple):
    """A finished ``ocistore`` process: its lines, loaded modules, and the first line of each
    source text it compiled."""

    printed: list[str]
    modules: set[str]
    compiled: list[str]


def run_ocistore_process(*args: str | Path) -> Process:
    """Runs ``ocistore ARGS`` (``python -m ocistore``) in a new process, which must succeed.
    Parked ``None`` entries of ``sys.modules``, such as ``httpx._main``, are left out."""
    done = subprocess.run(
        [sys.executable, "-c", _RUN_AND_LIST, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    *printed, last = done.stdout.splitlines()
    seen = json.loads(last)
    return Process(printed, set(seen["modules"]), seen["compiled"])


def run_and_list_modules(*args: str | Path) -> tuple[list[str], set[str]]:
    """The lines ``ocistore ARGS`` printed in a new process, and the modules it had loaded."""
    process = run_ocistore_process(*args)
    return process.printed, process.modules


def push_small_image(registry: str, repository: str, work: Path) -> str:
    """Pushes a one-layer image to the plain-HTTP ``registry``; its reference."""
    reference = f"{registry}/{repository}:1"
    build = ocistore.Store(work / f"build-{repository.replace('/', '-')}")
    build_image([{"etc/os-release": f"ID={repository}\n"}]).write_to_store(build, reference)
    ocistore.push(reference, store=build, options=ocistore.RegistryOptions(plain_http=True))
    return reference


def http_stack(loaded: Iterable[str]) -> list[str]:
    """The modules of :data:`HTTP_STACK` (with their submodules) among ``loaded``."""
    return sorted(m for m in loaded if m in HTTP_STACK or m.split(".")[0] in HTTP_STACK)
