"""Where kubelet looks for the node's docker config (paths only: no parsing, cheap to import)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_KUBELET_ROOT = "/var/lib/kubelet"


def node_docker_config_paths(
    preferred_dir: str | os.PathLike[str] | None = DEFAULT_KUBELET_ROOT,
    *,
    working_dir: str | os.PathLike[str] | None = None,
    home: str | os.PathLike[str] | None = None,
    root: str | os.PathLike[str] = "/",
) -> list[Path]:
    """kubelet's search order: every ``config.json`` candidate, then every ``.dockercfg``."""
    preferred = os.fspath(preferred_dir) if preferred_dir is not None else ""
    cwd = os.fspath(working_dir) if working_dir is not None else ""
    home_dir = os.fspath(home) if home is not None else os.environ.get("HOME", "")
    root_dir = os.fspath(root)
    json_dirs = [
        preferred,
        cwd,
        os.path.join(home_dir, ".docker"),
        os.path.join(root_dir, ".docker"),
    ]
    cfg_dirs = [preferred, cwd, home_dir, root_dir]
    paths = [Path(os.path.abspath(os.path.join(d, "config.json"))) for d in json_dirs]
    paths += [Path(os.path.abspath(os.path.join(d, ".dockercfg"))) for d in cfg_dirs]
    return paths


def node_docker_config_exists() -> bool:
    """True when any of kubelet's default candidates exists (else pulls are anonymous)."""
    return any(path.exists() for path in node_docker_config_paths())
