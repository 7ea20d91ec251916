"""The package's shape: a cheap ``import ocistore``, a lazy top-level API, layers that do not
reach sideways (the registry protocol never imports the store, the store never the network)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import ocistore


def loaded_after(statement: str) -> set[str]:
    """The ``ocistore`` modules (and httpx) a fresh interpreter holds after ``statement``."""
    code = (
        "import json, sys\n"
        f"{statement}\n"
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.startswith(('ocistore', 'httpx', 'sqlite3')))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(result.stdout))


def test_import_ocistore_loads_no_network_store_or_manager() -> None:
    loaded = loaded_after("import ocistore")
    assert "ocistore.mediatypes" in loaded and "ocistore.model" in loaded
    for heavy in ("httpx", "sqlite3", "ocistore.registry", "ocistore.store", "ocistore.manager"):
        assert heavy not in loaded, heavy


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("ImageManager", "ocistore.manager"),
        ("ImageGCManager", "ocistore.manager"),
        ("Store", "ocistore.store"),
        ("Keyring", "ocistore.credentials"),
        ("RegistryOptions", "ocistore.registry.options"),
        ("pull", "ocistore.transfer.pull"),
        ("copy", "ocistore.transfer.copy"),
    ],
)
def test_main_classes_are_at_top_level_and_load_on_first_use(name: str, module: str) -> None:
    loaded = loaded_after(f"import ocistore; ocistore.{name}")
    assert module in loaded
    assert getattr(ocistore, name) is getattr(sys.modules[module], name)
    assert name in ocistore.__all__ and name in dir(ocistore)


@pytest.mark.parametrize(
    "package", ["ocistore", "ocistore.credentials", "ocistore.manager", "ocistore.store"]
)
def test_every_public_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert [name for name in module.__all__ if not hasattr(module, name)] == []
    assert dir(module) == sorted(module.__all__)
    with pytest.raises(AttributeError, match="NoSuchThing"):
        _ = module.NoSuchThing


def test_credentials_and_manager_load_their_modules_on_first_use() -> None:
    """``ocistore pull`` needs the manager and (without a node config) no credential code."""
    loaded = loaded_after("import ocistore.credentials, ocistore.manager")
    lazy = {
        "ocistore.credentials.keyring",
        "ocistore.credentials.provider",
        "ocistore.credentials.helpers",
        "ocistore.credentials.secrets",
        "ocistore.manager.manager",
        "ocistore.manager.imagegc",
        "ocistore.manager.pods",
    }
    assert not lazy & loaded, lazy & loaded
    loaded = loaded_after("from ocistore.manager import ImageManager")
    assert "ocistore.manager.manager" in loaded
    assert not {m for m in loaded if m.startswith("ocistore.credentials.")}
    # fsck's and GC's reports are not a pull's business
    assert not {"ocistore.store.reports", "ocistore.store.layout"} & loaded


def test_the_registry_protocol_does_not_import_the_store() -> None:
    loaded = loaded_after("import ocistore.registry")
    assert not {m for m in loaded if m.startswith(("ocistore.store", "ocistore.transfer"))}


def test_the_store_does_not_import_the_network() -> None:
    loaded = loaded_after("from ocistore.store import Store, FsckReport")
    assert "ocistore.store.store" in loaded
    assert "httpx" not in loaded
    assert not {m for m in loaded if m.startswith(("ocistore.registry", "ocistore.transfer"))}


def test_test_helpers_live_apart_from_the_product() -> None:
    assert "ocistore.testing" not in loaded_after("import ocistore, ocistore.store")
    assert not hasattr(ocistore, "imagebuild")
