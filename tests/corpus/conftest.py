"""Session fixtures of the corpus: one plain-HTTP registry and every corpus image pushed to it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from regfixtures.registry import Registry, free_port, registry_config, running_registry

from corpus.makers import Containers, require
from corpus.recipes import CorpusImage, build_corpus


def _needs_root(what: str) -> None:
    if os.geteuid() == 0:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} must run in CI, which runs as root")
    pytest.skip(f"NOT RUN: {what} needs root (device nodes, foreign owners, mounts)")


@pytest.fixture(scope="session")
def corpus_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A plain-HTTP docker-registry on 127.0.0.1 for the corpus."""
    base = tmp_path_factory.mktemp("corpus-registry")
    config = registry_config(port=free_port(), storage=base / "storage")
    with running_registry("corpus", base / "registry", config) as registry:
        yield registry


@pytest.fixture(scope="session")
def containers(
    tmp_path_factory: pytest.TempPathFactory, corpus_registry: Registry
) -> Iterator[Containers]:
    """buildah, podman and skopeo with private storage, pointed at the corpus registry."""
    _needs_root("the real-tool image corpus")
    require("buildah", "podman", "skopeo", "umoci", "tar", "bsdtar", "unshare")
    tools = Containers(tmp_path_factory.mktemp("containers"), corpus_registry.host)
    yield tools
    tools.close()


@pytest.fixture(scope="session")
def corpus(
    tmp_path_factory: pytest.TempPathFactory, containers: Containers
) -> dict[str, CorpusImage]:
    """Every corpus image, built by its tool and pushed to the corpus registry."""
    return build_corpus(tmp_path_factory.mktemp("corpus"), containers)
