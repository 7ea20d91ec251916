"""Every media type ocistore knows, once (image-spec media-types.md, containerd's mediatypes.go).

Layer media types and their compression come from the Rust layer engine
(``_core.layer_media_types``), which is the authority: adding a compression format touches the
Rust decoder and this module, nothing else. Comparisons ignore parameters and case, as a
``Content-Type`` header needs; documents are never trusted to spell a type canonically.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from ocistore import _core
from ocistore.errors import UnsupportedMediaTypeError

__all__ = [
    "ACCEPT_MANIFEST",
    "MAX_CONFIG_SIZE",
    "MAX_MANIFEST_SIZE",
    "Compression",
    "MediaType",
    "base",
    "compression",
    "detect_compression",
    "is_config",
    "is_index",
    "is_layer",
    "is_manifest",
    "is_nondistributable",
    "is_schema1",
]


class MediaType(StrEnum):
    """The media types of OCI and Docker images."""

    OCI_INDEX = "application/vnd.oci.image.index.v1+json"
    OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
    OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
    OCI_EMPTY = "application/vnd.oci.empty.v1+json"
    OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
    OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
    OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
    OCI_LAYER_NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar"
    OCI_LAYER_NONDISTRIBUTABLE_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    OCI_LAYER_NONDISTRIBUTABLE_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
    DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
    DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
    DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
    DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
    DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    DOCKER_LAYER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd"
    DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar"
    DOCKER_FOREIGN_LAYER_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    DOCKER_SCHEMA1_MANIFEST = "application/vnd.docker.distribution.manifest.v1+json"
    DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"


class Compression(StrEnum):
    """How a layer blob is compressed (the names the Rust engine uses)."""

    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


_LAYER_COMPRESSION: Final[dict[str, Compression]] = {
    media_type: Compression(name) for media_type, name in _core.layer_media_types()
}
_INDEX: Final = frozenset({MediaType.OCI_INDEX, MediaType.DOCKER_MANIFEST_LIST})
_MANIFEST: Final = frozenset({MediaType.OCI_MANIFEST, MediaType.DOCKER_MANIFEST})
_CONFIG: Final = frozenset({MediaType.OCI_CONFIG, MediaType.DOCKER_CONFIG})
_SCHEMA1: Final = frozenset({MediaType.DOCKER_SCHEMA1_MANIFEST, MediaType.DOCKER_SCHEMA1_SIGNED})
_NONDISTRIBUTABLE: Final = frozenset(
    {
        MediaType.OCI_LAYER_NONDISTRIBUTABLE,
        MediaType.OCI_LAYER_NONDISTRIBUTABLE_GZIP,
        MediaType.OCI_LAYER_NONDISTRIBUTABLE_ZSTD,
        MediaType.DOCKER_FOREIGN_LAYER,
        MediaType.DOCKER_FOREIGN_LAYER_GZIP,
    }
)

#: What to send as Accept when fetching a manifest: every type we parse, no schema 1 and no
#: ``*/*`` (an old registry would answer those with schema 1).
ACCEPT_MANIFEST: Final = (
    MediaType.OCI_INDEX,
    MediaType.OCI_MANIFEST,
    MediaType.DOCKER_MANIFEST_LIST,
    MediaType.DOCKER_MANIFEST,
)
#: Documents larger than this are refused before they are read (containerd's limit).
MAX_MANIFEST_SIZE: Final = 4 * 1024 * 1024
MAX_CONFIG_SIZE: Final = 16 * 1024 * 1024


def base(media_type: str) -> str:
    """A media type without parameters, lower-cased (Content-Type parameters are ignored)."""
    return media_type.split(";", 1)[0].strip().lower()


def is_layer(media_type: str) -> bool:
    """Whether the layer engine applies blobs of this type (OCI, Docker, foreign, any codec)."""
    return base(media_type) in _LAYER_COMPRESSION


def is_manifest(media_type: str | None) -> bool:
    """Whether this is an OCI image manifest or a Docker schema 2 manifest."""
    return media_type is not None and base(media_type) in _MANIFEST


def is_index(media_type: str | None) -> bool:
    """Whether this is an OCI image index or a Docker manifest list."""
    return media_type is not None and base(media_type) in _INDEX


def is_config(media_type: str | None) -> bool:
    """Whether this is a runnable image's config (not an artifact's)."""
    return media_type is not None and base(media_type) in _CONFIG


def is_schema1(media_type: str | None) -> bool:
    """Whether this is a Docker schema 1 manifest (refused everywhere)."""
    return media_type is not None and base(media_type) in _SCHEMA1


def is_nondistributable(media_type: str) -> bool:
    """Whether this layer may be absent from registries (fetched from its ``urls``)."""
    return base(media_type) in _NONDISTRIBUTABLE


def compression(media_type: str) -> Compression:
    """The compression a layer type declares; UnsupportedMediaTypeError if not a layer."""
    found = _LAYER_COMPRESSION.get(base(media_type))
    if found is None:
        raise UnsupportedMediaTypeError(f"{media_type!r} is not a layer media type ocistore knows")
    return found


def detect_compression(head: bytes) -> Compression:
    """The compression the first bytes of a blob show (registries sometimes mislabel layers)."""
    return Compression(_core.detect_compression(head))
