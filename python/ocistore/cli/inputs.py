"""What the shared command-line options turn into: registry options, keyrings, Kubernetes objects.

Plain functions (no click), so that the quick ``pull`` path (``cli/quick.py``) and the click
commands build the same objects from the same values.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ocistore.registry.auth import AuthSpec
    from ocistore.registry.options import RegistryOptions


def registry_options_from(
    plain_http: bool | None,
    ca_file: str | None,
    hosts_dir: str | None,
    auth: AuthSpec = None,
    *,
    per_layer: int | None = None,
    fetch_buffer: int | None = None,
) -> RegistryOptions:
    """The RegistryOptions the shared command-line options describe."""
    from ocistore.registry.options import RegistryOptions
    from ocistore.registry.ranges import ParallelFetch

    default = ParallelFetch()
    return RegistryOptions(
        auth=auth,
        hosts_dir=hosts_dir or None,
        ca_file=ca_file or None,
        plain_http=plain_http or None,
        parallel=ParallelFetch(
            chunk_size=default.chunk_size if fetch_buffer is None else fetch_buffer,
            max_per_layer=default.max_per_layer if per_layer is None else per_layer,
        ),
    )


def load_objects(paths: tuple[Path, ...]) -> list[Mapping[str, Any]]:
    """Kubernetes objects from YAML/JSON files (several documents and Lists allowed)."""
    if not paths:
        return []
    from ocistore.manager import load_documents

    objects: list[Mapping[str, Any]] = []
    for path in paths:
        objects.extend(load_documents(path.read_text()))
    return objects


def node_keyring(docker_config: Path | None) -> Any:
    """The node's credentials: an explicit config.json, else kubelet's default search."""
    from ocistore.credentials import Keyring

    if docker_config is not None:
        return Keyring.from_docker_config(docker_config)
    return Keyring.from_node_defaults()


def pull_keyring(docker_config: Path | None) -> Any:
    """``node_keyring``, or None when the node has no docker config at all.

    Both mean the same pulls (anonymous, unless pull secrets name credentials); None spares
    a credential-less pull the import of the keyring, its plugins and helpers.
    """
    from ocistore.credentials.nodepaths import node_docker_config_exists

    if docker_config is None and not node_docker_config_exists():
        return None
    return node_keyring(docker_config)
