"""The floor row of the command-line re-pull imports only what a real re-pull imports."""

from __future__ import annotations

from pathlib import Path

from cli_modules import push_small_image, run_and_list_modules
from node_registries import ManagerRegistries

import ocistore
from peerbench.jobs import REPULL_STDLIB


def test_the_floor_row_imports_nothing_a_repull_does_not(
    manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    reference = push_small_image(manager_registries.plain.host, "floor/app", tmp_path)
    store = tmp_path / "store"
    options = ocistore.RegistryOptions(plain_http=True)
    ocistore.pull(reference, store=ocistore.Store(store), options=options)
    _, loaded = run_and_list_modules(
        "--store", store, "-q", "pull", "--policy", "Always", "--plain-http", reference
    )
    assert "ocistore.registry.lighthead" in loaded  # a real re-pull, the light way
    assert [m for m in REPULL_STDLIB if m not in loaded] == []
