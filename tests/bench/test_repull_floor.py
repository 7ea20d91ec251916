"""The floor row of the command-line re-pull imports only what a real re-pull imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from node_registries import ManagerRegistries

import ocistore
from ocistore.testing.imagebuild import build_image
from peerbench.jobs import REPULL_STDLIB

LOADED_BY_A_REPULL = """
import json, runpy, sys
sys.argv = ["ocistore", *sys.argv[1:]]
try:
    runpy.run_module("ocistore", run_name="__main__")
except SystemExit as exit:
    assert not exit.code, exit.code
print(json.dumps(sorted(m for m, v in sys.modules.items() if v is not None)))
"""


def test_the_floor_row_imports_nothing_a_repull_does_not(
    manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    reference = f"{manager_registries.plain.host}/floor/app:1"
    build = ocistore.Store(tmp_path / "build")
    build_image([{"etc/os-release": "ID=floor\n"}]).write_to_store(build, reference)
    options = ocistore.RegistryOptions(plain_http=True)
    ocistore.push(reference, store=build, options=options)
    store = tmp_path / "store"
    ocistore.pull(reference, store=ocistore.Store(store), options=options)
    done = subprocess.run(
        [sys.executable, "-c", LOADED_BY_A_REPULL, "--store", str(store), "-q", "pull",
         "--policy", "Always", "--plain-http", reference],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert "ocistore.registry.lighthead" in loaded  # a real re-pull, the light way
    assert [m for m in REPULL_STDLIB if m not in loaded] == []
