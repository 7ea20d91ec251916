"""A command-line pull defines ocistore's value classes without compiling their methods.

``dataclasses.dataclass`` writes and compiles six methods per class at import, a quarter of a
re-pull process, and importing ``dataclasses`` is another sixth; ``@valueclass`` attaches
methods made without ``exec`` and imports ``dataclasses`` only when asked for fields. Checked in
fresh processes by the ``compile`` audit event, the modules loaded, and the ``__init__`` of every
ocistore dataclass a pull loads (a valueclass ``__init__`` runs the one template's bytecode).
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

from cli_modules import push_small_image, run_ocistore_process
from node_registries import ManagerRegistries

from ocistore._valueclass import _init_template


def _dataclasses_of(modules: set[str]) -> list[type]:
    """The dataclasses the ocistore modules among ``modules`` define."""
    found = []
    for name in sorted(m for m in modules if m.startswith("ocistore")):
        for value in vars(importlib.import_module(name)).values():
            if isinstance(value, type) and dataclasses.is_dataclass(value):
                found += [value] if value.__module__ == name else []
    return found


def _is_valueclass(cls: type) -> bool:
    return cls.__init__.__code__.co_code == _init_template.__code__.co_code


def test_a_pull_process_compiles_no_dataclass_method(
    manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    reference = push_small_image(manager_registries.plain.host, "valueclass/app", tmp_path)
    store = tmp_path / "store"
    pull = ("--store", store, "-q", "pull", "--plain-http")
    cold = run_ocistore_process(*pull, reference)
    again = run_ocistore_process(*pull, "--policy", "Always", reference)

    assert "ocistore.registry.lighthttp" in again.modules  # a real re-pull, over the network
    # Nothing asked for the value classes' fields: dataclasses (and its inspect) stayed out.
    assert {"dataclasses", "inspect"} & again.modules == set()
    # dataclasses compiles "def __create_fn__(...)" for each method it generates.
    assert [line for line in again.compiled if line.startswith("def __create_fn__")] == []
    # The cold pull also loads httpx, whose h11 events are plain dataclasses.
    for process in (cold, again):
        classes = _dataclasses_of(process.modules)
        assert len(classes) >= 15
        assert [c.__qualname__ for c in classes if not _is_valueclass(c)] == []
