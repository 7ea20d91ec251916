"""pytest-benchmark for the layer engine on a generated, realistic layer of each compression."""

from __future__ import annotations

import io
import os
import random
import shutil
import tarfile
from pathlib import Path

import pytest
import zstandard

import ocistore
from ocistore.mediatypes import MediaType


def realistic_tar() -> bytes:
    """~40 MB: many small text-like files, some mid-size, a few large binaries, symlinks."""
    rng = random.Random(7)
    words = [
        bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(2000)
    ]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in range(40):
            ti = tarfile.TarInfo(f"usr/share/pkg{d}")
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(ti)
            for f in range(60):
                text = b" ".join(rng.choices(words, k=rng.randint(20, 2000)))
                ti = tarfile.TarInfo(f"usr/share/pkg{d}/file{f}.txt")
                ti.size = len(text)
                tar.addfile(ti, io.BytesIO(text))
            ti = tarfile.TarInfo(f"usr/share/pkg{d}/latest")
            ti.type, ti.linkname = tarfile.SYMTYPE, "file0.txt"
            tar.addfile(ti)
        for i in range(6):
            blob = os.urandom(2 << 20) + bytes(2 << 20)
            ti = tarfile.TarInfo(f"usr/lib/libbig{i}.so")
            ti.size, ti.mode = len(blob), 0o755
            tar.addfile(ti, io.BytesIO(blob))
    return buf.getvalue()


@pytest.fixture(scope="module")
def blobs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tar = realistic_tar()
    base = tmp_path_factory.mktemp("bench-blobs")
    out = {}
    for media_type, data in [
        (MediaType.OCI_LAYER, tar),
        (MediaType.OCI_LAYER_GZIP, __import__("gzip").compress(tar, compresslevel=6)),
        (MediaType.OCI_LAYER_ZSTD, zstandard.ZstdCompressor(level=3).compress(tar)),
    ]:
        path = base / media_type.rsplit(".", 1)[-1].replace("+", "-")
        path.write_bytes(data)
        out[media_type] = path
    return out


@pytest.mark.parametrize(
    "media_type", [MediaType.OCI_LAYER, MediaType.OCI_LAYER_GZIP, MediaType.OCI_LAYER_ZSTD]
)
def test_unpack_layer(benchmark, blobs: dict[str, Path], media_type: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dest = tmp_path / "dest"

    def setup() -> None:
        shutil.rmtree(dest, ignore_errors=True)

    stats = benchmark.pedantic(
        lambda: ocistore.unpack_layer(blobs[media_type], dest, media_type),
        setup=setup,
        rounds=5,
    )
    assert stats.entries > 2400
    benchmark.extra_info["uncompressed_mb"] = stats.uncompressed_size / 1e6
