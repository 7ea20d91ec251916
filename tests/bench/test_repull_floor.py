"""The floor row of the command-line re-pull imports only what a real re-pull imports."""

from __future__ import annotations

from pathlib import Path

from cli_modules import run_and_list_modules
from node_registries import ManagerRegistries

import ocistore
from ocistore.testing.imagebuild import build_image
from peerbench.jobs import REPULL_STDLIB


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
    _, loaded = run_and_list_modules(
        "--store", store, "-q", "pull", "--policy", "Always", "--plain-http", reference
    )
    assert "ocistore.registry.lighthttp" in loaded  # a real re-pull, the light way
    assert [m for m in REPULL_STDLIB if m not in loaded] == []
