"""Fixtures for the layer engine tests: a destination with canaries around it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from unpack_layers import Sandbox, snapshot


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
