"""Bounded fuzzing without nightly Rust: random and mutated layer bytes through the engine.
Only OciStoreError subclasses may escape, and nothing may appear outside the destination,
with either path resolver.
``OCISTORE_LONG=1`` runs many more examples."""

from __future__ import annotations

import contextlib
import os
import tarfile
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unpack_layers import COMPRESSORS, TarWriter, snapshot

import ocistore
from ocistore import UnpackLimits

LONG = os.environ.get("OCISTORE_LONG") == "1"
EXAMPLES = 3000 if LONG else 150
LIMITS = UnpackLimits(max_bytes=8 << 20, max_entries=2000, max_file_size=4 << 20)


def seed_layer() -> bytes:
    """A small valid layer using every entry type, PAX and GNU long names."""
    w = TarWriter(fmt=tarfile.PAX_FORMAT)
    w.dir("etc").file("etc/passwd", b"root:x:0:0").symlink("etc/link", "/etc/passwd")
    w.hardlink("etc/hard", "etc/passwd").file("d/" * 40 + "deep", b"deep")
    w.file("etc/.wh.gone").file("var/.wh..wh..opq").symlink("up", "../../..")
    return w.bytes()


SEED = seed_layer()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from([SEED, SEED[:1024], b""])))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "splice"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from([0, 0x2F, 0x2E, 0x30, 0x35, 0x32, 0x31, 0x78, 0xFF]))
        elif op == "cut":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(max_size=64))
        elif op == "splice":
            data[pos : pos + 8] = draw(st.sampled_from([b"../../..", b"/tmp/xx", b".wh....."]))
    return bytes(data)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.one_of(mutated(), st.binary(max_size=4096)),
    media_type=st.sampled_from(sorted(COMPRESSORS)),
    compress_after=st.booleans(),
)
def test_fuzzed_layers_fail_typed_and_stay_inside(
    data: bytes,
    media_type: str,
    compress_after: bool,
    resolver: Literal["auto", "walk"],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    top = tmp_path_factory.mktemp("fuzz")
    dest = top / "dest"
    (top / "outside").mkdir()
    (top / "outside" / "canary").write_bytes(b"canary")
    before = snapshot(top, exclude=dest)
    blob = COMPRESSORS[media_type](data) if compress_after else data
    blob_path: Path = top / "blob"
    blob_path.write_bytes(blob)
    with contextlib.suppress(ocistore.OciStoreError):
        ocistore.unpack_layer(blob_path, dest, media_type, limits=LIMITS, resolver=resolver)
    assert snapshot(top, exclude=dest) == {**before, "blob": snapshot(top)["blob"]}
