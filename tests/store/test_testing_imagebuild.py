"""The test-image builder: deterministic, correct diff_ids, every compression, layouts."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from ocistore import model
from ocistore.digest import digest_bytes
from ocistore.mediatypes import MediaType
from ocistore.testing.imagebuild import (
    Directory,
    FileEntry,
    Hardlink,
    RawLayer,
    Symlink,
    build_image,
    build_index,
    layer_tar,
)


def members(tar_bytes: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        return tar.getmembers()


def test_output_is_deterministic() -> None:
    spec = [{"a/b/c.txt": b"x", "z": b"y"}, {"q": b"1"}]
    assert build_image(spec).manifest == build_image(spec).manifest
    assert (
        build_image(spec, compression="zstd").digest == build_image(spec, compression="zstd").digest
    )
    assert build_image(spec).digest != build_image(spec, platform="linux/arm64").digest


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_diff_ids_are_digests_of_the_uncompressed_tar(compression: str) -> None:
    image = build_image([{"f": b"content"}], compression=compression)  # type: ignore[arg-type]
    layer = image.layers[0]
    if compression == "gzip":
        raw = gzip.decompress(layer.data)
    elif compression == "zstd":
        raw = zstandard.ZstdDecompressor().decompress(layer.data)
    else:
        raw = layer.data
    assert digest_bytes(raw) == layer.diff_id
    assert layer.digest == digest_bytes(layer.data)
    manifest = model.parse_manifest(image.manifest)
    config = model.parse_image_config(image.config)
    assert manifest.layers[0].media_type == layer.media_type
    assert list(config.diff_ids) == [layer.diff_id]
    assert manifest.config.digest == image.config_digest


def test_entries_parents_links_and_modes() -> None:
    tar = layer_tar(
        {
            "usr/bin/tool": FileEntry(b"#!", mode=0o755, uid=1000, gid=1000),
            "usr/bin/alias": Symlink("tool"),
            "usr/bin/hard": Hardlink("usr/bin/tool"),
            "var/empty": Directory(mode=0o700),
            "etc/.wh.old": b"",
        }
    )
    by_name = {m.name: m for m in members(tar)}
    assert by_name["usr"].isdir() and by_name["usr/bin"].isdir()
    assert by_name["usr/bin/tool"].mode == 0o755 and by_name["usr/bin/tool"].uid == 1000
    assert by_name["usr/bin/alias"].issym() and by_name["usr/bin/alias"].linkname == "tool"
    assert by_name["usr/bin/hard"].islnk()
    assert by_name["var/empty"].mode == 0o700
    assert all(m.mtime == 0 for m in by_name.values())
    names = [m.name for m in members(tar)]
    assert names.index("usr") < names.index("usr/bin") < names.index("usr/bin/tool")


def test_layer_from_a_directory(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "file").write_bytes(b"data")
    os.symlink("file", tmp_path / "d" / "link")
    by_name = {m.name: m for m in members(layer_tar(tmp_path))}
    assert by_name["d/file"].size == 4
    assert by_name["d/link"].issym()


def test_raw_layers_are_used_as_given() -> None:
    raw = RawLayer(b"\x00" * 1024)
    assert layer_tar(raw) == raw.tar


def test_config_fields_and_unknown_keys() -> None:
    image = build_image([{"f": b""}], config={"Cmd": ["/bin/sh"], "Env": ["A=1"]})
    config = model.parse_image_config(image.config)
    assert config.cmd == ("/bin/sh",) and config.env == ("A=1",)
    with pytest.raises(ValueError, match="unsupported config key"):
        build_image([{"f": b""}], config={"Bogus": 1})


def test_docker_media_types() -> None:
    image = build_image([{"f": b""}], media_types="docker")
    manifest = json.loads(image.manifest)
    assert manifest["mediaType"] == MediaType.DOCKER_MANIFEST
    assert manifest["layers"][0]["mediaType"] == MediaType.DOCKER_LAYER_GZIP


def test_index_lists_every_platform(tmp_path: Path) -> None:
    amd = build_image([{"f": b"amd"}])
    arm = build_image([{"f": b"arm"}], platform="linux/arm/v7")
    index = build_index([amd, arm])
    parsed = model.parse_index(index.index)
    assert [str(d.platform) for d in parsed.manifests] == ["linux/amd64", "linux/arm/v7"]
    assert index.image_for("linux/arm/v7") is arm
    index.write_layout(tmp_path / "layout", "multi")
    document = json.loads((tmp_path / "layout" / "index.json").read_text())
    assert document["manifests"][0]["digest"] == index.digest
    for digest in index.blobs():
        assert (tmp_path / "layout" / "blobs" / "sha256" / digest.split(":")[1]).is_file()
