"""The floor rows of the command-line re-pull and of the pull import only what a real re-pull
or pull imports."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_modules import http_stack, push_small_image, run_and_list_modules
from node_registries import ManagerRegistries

import ocistore
from peerbench.jobs import PULL_STDLIB, REPULL_STDLIB


@pytest.mark.parametrize("row", ["re-pull", "pull"])
def test_the_floor_row_imports_nothing_a_real_run_does_not(
    manager_registries: ManagerRegistries, tmp_path: Path, row: str
) -> None:
    reference = push_small_image(manager_registries.plain.host, f"floor/{row}", tmp_path)
    options = ocistore.RegistryOptions(plain_http=True)
    store = tmp_path / "store"
    if row == "re-pull":
        ocistore.pull(reference, store=ocistore.Store(store), options=options)
        how, floor = ["--policy", "Always"], REPULL_STDLIB
    else:
        how, floor = ["--unpack", str(tmp_path / "rootfs")], PULL_STDLIB
    _, loaded = run_and_list_modules(
        "--store", store, "-q", "pull", *how, "--plain-http", reference
    )
    assert "ocistore.registry.lighthttp" in loaded  # a real run, the light way
    assert http_stack(loaded) == []
    assert [m for m in floor if m not in loaded] == []
