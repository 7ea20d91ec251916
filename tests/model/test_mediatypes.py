"""ocistore.mediatypes: one vocabulary, with the Rust layer engine as the authority on layers."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocistore import UnsupportedMediaTypeError, _core, mediatypes
from ocistore.layer import LayerWriter
from ocistore.mediatypes import Compression, MediaType

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
LAYER_TYPES = [(t, Compression(c)) for t, c in _core.layer_media_types()]


@pytest.mark.parametrize(
    ("media_type", "expected"),
    [
        ("application/vnd.oci.image.layer.v1.tar", Compression.NONE),
        ("application/vnd.oci.image.layer.v1.tar+gzip", Compression.GZIP),
        ("application/vnd.oci.image.layer.v1.tar+zstd", Compression.ZSTD),
        ("application/vnd.oci.image.layer.nondistributable.v1.tar", Compression.NONE),
        ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Compression.GZIP),
        ("application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", Compression.ZSTD),
        ("application/vnd.docker.image.rootfs.diff.tar", Compression.NONE),
        ("application/vnd.docker.image.rootfs.diff.tar.gzip", Compression.GZIP),
        ("application/vnd.docker.image.rootfs.diff.tar.zstd", Compression.ZSTD),
        ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", Compression.GZIP),
        ("application/vnd.docker.image.rootfs.foreign.diff.tar", Compression.NONE),
        ("Application/VND.OCI.image.layer.v1.tar+gzip; foo=bar", Compression.GZIP),
    ],
)
def test_layer_media_types(media_type: str, expected: Compression) -> None:
    assert mediatypes.is_layer(media_type)
    assert mediatypes.compression(media_type) is expected


@pytest.mark.parametrize(
    "media_type",
    [OCI_MANIFEST, OCI_INDEX, "application/vnd.oci.image.config.v1+json", "text/plain", ""],
)
def test_non_layer_media_types(media_type: str) -> None:
    assert not mediatypes.is_layer(media_type)
    with pytest.raises(UnsupportedMediaTypeError, match="not a layer media type"):
        mediatypes.compression(media_type)


def test_manifest_index_config_and_schema1_types() -> None:
    assert mediatypes.is_manifest(OCI_MANIFEST) and mediatypes.is_manifest(DOCKER_MANIFEST)
    assert mediatypes.is_index(OCI_INDEX) and mediatypes.is_index(f" {DOCKER_LIST.upper()}; x=y")
    assert not mediatypes.is_manifest(OCI_INDEX) and not mediatypes.is_index(OCI_MANIFEST)
    assert not mediatypes.is_manifest(None) and not mediatypes.is_index(None)
    assert mediatypes.is_config(MediaType.DOCKER_CONFIG) and not mediatypes.is_config(OCI_MANIFEST)
    assert mediatypes.is_schema1("application/vnd.docker.distribution.manifest.v1+prettyjws")
    assert not mediatypes.is_schema1(DOCKER_MANIFEST)
    assert mediatypes.ACCEPT_MANIFEST == (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x1f\x8b\x08\x00rest", Compression.GZIP),
        (b"\x28\xb5\x2f\xfd\x00", Compression.ZSTD),
        (bytes.fromhex("502a4d1804000000"), Compression.ZSTD),  # a skippable frame (pzstd)
        (b"ustar-ish tar header", Compression.NONE),
        (b"", Compression.NONE),
        (b"\x1f", Compression.NONE),
    ],
)
def test_detect_compression(head: bytes, expected: Compression) -> None:
    assert mediatypes.detect_compression(head) is expected


def test_python_and_rust_agree_on_every_layer_type() -> None:
    """Rust's table is the authority: every entry is a named MediaType, and back."""
    rust = {media_type: compression for media_type, compression in LAYER_TYPES}
    named_layers = {t.value for t in MediaType if mediatypes.is_layer(t)}
    assert set(rust) == named_layers
    assert {t.value for t in MediaType if ".layer." in t or ".rootfs." in t} == named_layers
    assert {mediatypes.compression(t) for t in rust} == set(Compression)
    for media_type, expected in rust.items():
        assert mediatypes.compression(media_type) is expected


def _accepted_by_engine(media_type: str, dest: Path) -> bool:
    try:
        writer = LayerWriter(dest, media_type)
    except UnsupportedMediaTypeError:
        return False
    writer.abort()
    return True


_VARIANTS = st.sampled_from([t for t, _ in LAYER_TYPES] + [OCI_MANIFEST, "text/plain", "a/b"])


@given(
    media_type=_VARIANTS,
    upper=st.booleans(),
    padding=st.sampled_from(["", " ", "\t"]),
    parameters=st.sampled_from(["", ";", "; charset=utf-8", ";a=b;c=d"]),
    junk=st.text(alphabet="+.-xz", max_size=3),
)
def test_engine_and_module_accept_the_same_spellings(
    tmp_path_factory: pytest.TempPathFactory,
    media_type: str,
    upper: bool,
    padding: str,
    parameters: str,
    junk: str,
) -> None:
    spelled = padding + (media_type.upper() if upper else media_type) + junk + padding + parameters
    dest = tmp_path_factory.mktemp("dest")
    assert mediatypes.is_layer(spelled) == _accepted_by_engine(spelled, dest)
    if mediatypes.is_layer(spelled):
        assert mediatypes.base(spelled) == (media_type + junk).lower()
