"""Fixtures for the layer engine tests: a destination with canaries around it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from unpack_layers import Node, snapshot


@dataclass
class Sandbox:
    """``dest`` is where layers go; ``canary`` (next to it) must never change."""

    top: Path
    dest: Path
    canary: Path
    before: dict[str, Node]

    def assert_outside_untouched(self) -> None:
        """Nothing next to ``dest`` was created, removed or modified."""
        assert snapshot(self.top, exclude=self.dest) == self.before


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    top = tmp_path / "box"
    dest = top / "dest"
    canary = top / "canary"
    (canary / "sub").mkdir(parents=True)
    (canary / "file").write_bytes(b"canary")
    (canary / "sub" / "nested").write_bytes(b"nested")
    (canary / "dir-0755").mkdir(mode=0o755)
    dest.mkdir()
    box = Sandbox(top, dest, canary, snapshot(top, exclude=dest))
    yield box
    box.assert_outside_untouched()
