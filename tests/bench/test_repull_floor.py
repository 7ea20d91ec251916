"""The floor rows of the command-line re-pull and of the pull import only what a real re-pull
or pull imports."""

from __future__ import annotations

from pathlib import Path

from cli_modules import http_stack, run_and_list_modules
from node_registries import ManagerRegistries

import ocistore
from ocistore.testing.imagebuild import build_image
from peerbench.jobs import PULL_STDLIB, REPULL_STDLIB


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


def test_the_pull_floor_row_imports_nothing_a_pull_does_not(
    manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    reference = f"{manager_registries.plain.host}/floor/pulled:1"
    build = ocistore.Store(tmp_path / "build")
    build_image([{"etc/os-release": "ID=floor\n"}]).write_to_store(build, reference)
    ocistore.push(reference, store=build, options=ocistore.RegistryOptions(plain_http=True))
    _, loaded = run_and_list_modules(
        "--store", tmp_path / "store", "-q", "pull", "--plain-http", "--unpack",
        tmp_path / "rootfs", reference,
    )  # fmt: skip
    assert "ocistore.registry.lighthttp" in loaded and http_stack(loaded) == []
    assert [m for m in PULL_STDLIB if m not in loaded] == []
