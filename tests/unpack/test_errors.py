"""Every error the engine raises is an ``OciStoreError``; file errors stay ``OSError``s with
their errno and filename."""

from __future__ import annotations

import errno
import io
from pathlib import Path

import pytest
from unpack_layers import TarWriter

import ocistore
from ocistore import LayerSourceError, LayerWriteError, LayerWriter, unpack_layer
from ocistore.mediatypes import MediaType


@pytest.fixture
def layer(tmp_path: Path) -> Path:
    path = tmp_path / "layer.tar"
    path.write_bytes(TarWriter().file("f", b"x").bytes())
    return path


def test_missing_source_is_a_typed_os_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.tar"
    with pytest.raises(LayerSourceError) as info:
        unpack_layer(missing, tmp_path / "dest", MediaType.OCI_LAYER)
    err = info.value
    assert isinstance(err, ocistore.OciStoreError) and isinstance(err, OSError)
    assert err.errno == errno.ENOENT
    assert err.filename == str(missing)
    assert not (tmp_path / "dest").exists()


def test_directory_source_is_refused_before_the_destination_is_made(tmp_path: Path) -> None:
    with pytest.raises(LayerSourceError) as info:
        unpack_layer(tmp_path, tmp_path / "dest", MediaType.OCI_LAYER)
    assert info.value.errno == errno.EISDIR
    assert info.value.filename == str(tmp_path)
    assert not (tmp_path / "dest").exists()


def test_except_oserror_still_catches_source_errors(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="reading the layer blob failed"):
        unpack_layer(str(tmp_path / "nope"), tmp_path / "dest", MediaType.OCI_LAYER)


@pytest.mark.parametrize("where", ["file", "file/sub"])
def test_destination_that_is_not_a_directory(tmp_path: Path, layer: Path, where: str) -> None:
    (tmp_path / "file").write_bytes(b"not a dir")
    dest = tmp_path / where
    with pytest.raises(LayerWriteError) as info:
        unpack_layer(layer, dest, MediaType.OCI_LAYER)
    assert info.value.errno == errno.ENOTDIR
    assert info.value.filename == str(dest)
    assert "unusable unpack destination" in str(info.value)
    assert (tmp_path / "file").read_bytes() == b"not a dir"


def test_destination_errors_from_file_objects_and_the_writer(tmp_path: Path, layer: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(LayerWriteError) as info:
        unpack_layer(io.BytesIO(layer.read_bytes()), tmp_path / "file", MediaType.OCI_LAYER)
    assert info.value.errno == errno.ENOTDIR
    writer = LayerWriter(tmp_path / "file", MediaType.OCI_LAYER)
    with pytest.raises(LayerWriteError) as info:
        writer.write(layer.read_bytes())
        writer.close()
    assert info.value.errno == errno.ENOTDIR


def test_a_missing_destination_is_created(tmp_path: Path, layer: Path) -> None:
    stats = unpack_layer(layer, tmp_path / "a/b/dest", MediaType.OCI_LAYER)
    assert stats.entries == 1
    assert (tmp_path / "a/b/dest/f").read_bytes() == b"x"
