"""Build small OCI images deterministically, for tests, demos and seeding registries.

Layers come from in-memory file maps (``{"etc/hostname": b"box\\n"}``), directories, or raw tar
bytes; each is packed as a tar with fixed owners and times (so the same input always gives the
same digests), then compressed with gzip, zstd or not at all. The result is a
:class:`BuiltImage` holding every blob as bytes with its descriptor, which can be written into
a :class:`~ocistore.store.Store` or an OCI image layout directory, or pushed by a client.

>>> image = build_image([{"hello.txt": b"hi\\n"}], platform="linux/arm64")
>>> index = build_index([image, build_image([{"hello.txt": b"hi\\n"}])])
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ocistore import model
from ocistore.digest import digest_bytes
from ocistore.mediatypes import Compression, MediaType
from ocistore.platform import Platform

if TYPE_CHECKING:
    from ocistore.store.records import ImageRecord
    from ocistore.store.store import Store

__all__ = [
    "BuiltImage",
    "BuiltIndex",
    "BuiltLayer",
    "Directory",
    "FileEntry",
    "Hardlink",
    "RawLayer",
    "Symlink",
    "build_image",
    "build_index",
    "layer_tar",
]

MediaTypes = Literal["oci", "docker"]

_LAYER_TYPES: dict[tuple[MediaTypes, Compression], MediaType] = {
    ("oci", Compression.NONE): MediaType.OCI_LAYER,
    ("oci", Compression.GZIP): MediaType.OCI_LAYER_GZIP,
    ("oci", Compression.ZSTD): MediaType.OCI_LAYER_ZSTD,
    ("docker", Compression.NONE): MediaType.DOCKER_LAYER,
    ("docker", Compression.GZIP): MediaType.DOCKER_LAYER_GZIP,
    ("docker", Compression.ZSTD): MediaType.DOCKER_LAYER_ZSTD,
}
# Docker-style config keys accepted by build_image(config=...) -> ImageConfig fields.
_CONFIG_KEYS = {
    "Cmd": "cmd",
    "Entrypoint": "entrypoint",
    "Env": "env",
    "User": "user",
    "WorkingDir": "working_dir",
    "Labels": "labels",
    "StopSignal": "stop_signal",
    "ExposedPorts": "exposed_ports",
    "Volumes": "volumes",
}
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
EPOCH = "1970-01-01T00:00:00Z"


# --- layer contents ---------------------------------------------------------------------


@dataclass(frozen=True)
class FileEntry:
    """A regular file with explicit mode and owner (plain ``bytes`` means mode 0644, root)."""

    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Directory:
    """A directory entry (parents of listed files are added automatically with 0755)."""

    mode: int = 0o755
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Symlink:
    """A symbolic link to ``target``."""

    target: str


@dataclass(frozen=True)
class Hardlink:
    """A hard link to another path of the same layer."""

    target: str


@dataclass(frozen=True)
class RawLayer:
    """A ready-made, uncompressed tar stream used as is (for hostile or unusual layers)."""

    tar: bytes


Entry = bytes | str | FileEntry | Directory | Symlink | Hardlink
LayerSpec = Mapping[str, Entry] | str | os.PathLike[str] | RawLayer


def _tarinfo(name: str, kind: bytes, mode: int, uid: int = 0, gid: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.uname = info.gname = ""
    info.mtime = 0
    return info


def _entries_from_directory(root: Path) -> Iterator[tuple[str, Entry]]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            path = base / name
            rel = path.relative_to(root).as_posix()
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                yield rel, Symlink(os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                yield rel, Directory(stat.S_IMODE(info.st_mode))
            elif stat.S_ISREG(info.st_mode):
                yield rel, FileEntry(path.read_bytes(), stat.S_IMODE(info.st_mode))


def layer_tar(spec: LayerSpec) -> bytes:
    """The uncompressed tar of one layer, byte-for-byte reproducible."""
    if isinstance(spec, RawLayer):
        return spec.tar
    if isinstance(spec, (str, os.PathLike)):
        entries = dict(_entries_from_directory(Path(spec)))
    else:
        entries = dict(spec)
    # Parents first, then everything in name order: the usual shape of image layers.
    for name in list(entries):
        parts = name.strip("/").split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            entries.setdefault("/".join(parts[:depth]), Directory())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(entries, key=lambda n: n.strip("/").split("/")):
            entry = entries[name]
            clean = name.strip("/")
            if isinstance(entry, Directory):
                tar.addfile(
                    _tarinfo(clean + "/", tarfile.DIRTYPE, entry.mode, entry.uid, entry.gid)
                )
            elif isinstance(entry, Symlink):
                info = _tarinfo(clean, tarfile.SYMTYPE, 0o777)
                info.linkname = entry.target
                tar.addfile(info)
            elif isinstance(entry, Hardlink):
                info = _tarinfo(clean, tarfile.LNKTYPE, 0o644)
                info.linkname = entry.target.strip("/")
                tar.addfile(info)
            else:
                file = entry if isinstance(entry, FileEntry) else FileEntry(_as_bytes(entry))
                info = _tarinfo(clean, tarfile.REGTYPE, file.mode, file.uid, file.gid)
                info.size = len(file.data)
                tar.addfile(info, io.BytesIO(file.data))
    return buffer.getvalue()


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def compress(data: bytes, compression: Compression | str, *, level: int | None = None) -> bytes:
    """Compresses a layer tar deterministically (gzip with mtime 0; zstd single frame)."""
    if compression == Compression.NONE:
        return data
    if compression == Compression.GZIP:
        return gzip.compress(data, compresslevel=6 if level is None else level, mtime=0)
    if compression == Compression.ZSTD:
        import zstandard  # optional: only needed to build zstd layers

        return zstandard.ZstdCompressor(level=3 if level is None else level).compress(data)
    raise ValueError(f"unknown compression {compression!r} (gzip, zstd or none)")


# --- built artefacts --------------------------------------------------------------------


def _platform(platform: str) -> Platform:
    parts = platform.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"platform {platform!r} is not os/arch[/variant]")
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else "")


@dataclass(frozen=True)
class BuiltLayer:
    """One layer blob: its bytes (as stored), digest, media type and uncompressed diff_id."""

    data: bytes
    digest: str
    media_type: str
    diff_id: str

    @property
    def size(self) -> int:
        """Size of the blob as stored."""
        return len(self.data)

    def descriptor(self) -> model.Descriptor:
        """The manifest descriptor of this layer."""
        return model.Descriptor(self.media_type, self.digest, self.size)


@dataclass(frozen=True)
class BuiltImage:
    """A single-platform image: manifest, config and layer blobs, ready to store or push."""

    manifest: bytes
    manifest_media_type: str
    config: bytes
    config_media_type: str
    layers: tuple[BuiltLayer, ...]
    platform: str

    @property
    def digest(self) -> str:
        """The manifest digest (what a pull by digest names)."""
        return digest_bytes(self.manifest)

    @property
    def config_digest(self) -> str:
        """The config digest (the image ID)."""
        return digest_bytes(self.config)

    @property
    def diff_ids(self) -> list[str]:
        """Uncompressed layer digests, base first."""
        return [layer.diff_id for layer in self.layers]

    def descriptor(self, *, with_platform: bool = True, **annotations: str) -> model.Descriptor:
        """The manifest's descriptor (as an index or ``index.json`` lists it)."""
        return model.Descriptor.of(
            self.manifest_media_type,
            self.manifest,
            annotations=annotations,
            platform=_platform(self.platform) if with_platform else None,
        )

    def blobs(self) -> dict[str, tuple[str, bytes]]:
        """Every blob of the image: digest -> (media type, bytes)."""
        result = {layer.digest: (layer.media_type, layer.data) for layer in self.layers}
        result[self.config_digest] = (self.config_media_type, self.config)
        result[self.digest] = (self.manifest_media_type, self.manifest)
        return result

    def write_to_store(self, store: Store, ref: str, *, source: str = "build") -> ImageRecord:
        """Stores every blob (under a lease) and records the image as ``ref``."""
        with store.lease():
            for digest, (media_type, data) in self.blobs().items():
                if store.put_blob(data, media_type=media_type) != digest:
                    raise AssertionError("blob digest changed while storing")  # pragma: no cover
            return store.record_image(
                ref, manifest_digest=self.digest, platform=self.platform, source=source
            )

    def write_layout(self, path: str | os.PathLike[str], ref: str | None = None) -> None:
        """Adds the image to an OCI image layout (created if absent), tagged ``ref``."""
        _write_layout(Path(path), self.blobs(), self.descriptor(), ref)


@dataclass(frozen=True)
class BuiltIndex:
    """A multi-platform image index over several :class:`BuiltImage`."""

    index: bytes
    media_type: str
    images: tuple[BuiltImage, ...]
    extra_blobs: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """The index digest."""
        return digest_bytes(self.index)

    def blobs(self) -> dict[str, tuple[str, bytes]]:
        """Every blob of every platform plus the index itself."""
        result: dict[str, tuple[str, bytes]] = dict(self.extra_blobs)
        for image in self.images:
            result.update(image.blobs())
        result[self.digest] = (self.media_type, self.index)
        return result

    def descriptor(self, **annotations: str) -> model.Descriptor:
        """The index's own descriptor."""
        return model.Descriptor.of(self.media_type, self.index, annotations=annotations)

    def image_for(self, platform: str) -> BuiltImage:
        """The image built for exactly ``platform``."""
        for image in self.images:
            if image.platform == platform:
                return image
        raise LookupError(f"no image for {platform} in this index")

    def write_to_store(
        self, store: Store, ref: str, *, platform: str | None = None, source: str = "build"
    ) -> ImageRecord:
        """Stores every blob and records ``ref`` resolved to ``platform`` (default: the first)."""
        chosen = self.image_for(platform) if platform else self.images[0]
        with store.lease():
            for media_type, data in self.blobs().values():
                store.put_blob(data, media_type=media_type)
            return store.record_image(
                ref,
                manifest_digest=chosen.digest,
                index_digest=self.digest,
                platform=chosen.platform,
                source=source,
            )

    def write_layout(self, path: str | os.PathLike[str], ref: str | None = None) -> None:
        """Adds the whole index to an OCI image layout (created if absent), tagged ``ref``."""
        _write_layout(Path(path), self.blobs(), self.descriptor(), ref)


def _write_layout(
    path: Path,
    blobs: Mapping[str, tuple[str, bytes]],
    descriptor: model.Descriptor,
    ref: str | None,
) -> None:
    from ocistore.store.layout import LayoutWriter

    with LayoutWriter(path) as writer:
        for digest, (_, data) in blobs.items():
            writer.add_blob_bytes(data, digest)
        writer.add_manifest(descriptor.to_dict(), ref)


# --- builders ---------------------------------------------------------------------------


def build_image(
    files_per_layer: Sequence[LayerSpec],
    *,
    compression: Compression | str | Sequence[Compression | str] = Compression.GZIP,
    platform: str = "linux/amd64",
    media_types: MediaTypes = "oci",
    config: Mapping[str, Any] | None = None,
    annotations: Mapping[str, str] | None = None,
    level: int | None = None,
) -> BuiltImage:
    """Builds a single-platform image from one layer spec per layer (base first).

    ``compression`` is one value for every layer or one per layer. ``config`` fills the
    config's ``config`` section (``Env``, ``Cmd``, ``Entrypoint``, ...).
    """
    kinds = (
        [compression] * len(files_per_layer) if isinstance(compression, str) else list(compression)
    )
    if len(kinds) != len(files_per_layer):
        raise ValueError("give one compression per layer, or a single one for all")
    layers = []
    for spec, kind in zip(files_per_layer, kinds, strict=True):
        tar = layer_tar(spec)
        blob = compress(tar, kind, level=level)
        layers.append(
            BuiltLayer(
                data=blob,
                digest=digest_bytes(blob),
                media_type=_LAYER_TYPES[(media_types, Compression(kind))],
                diff_id=digest_bytes(tar),
            )
        )
    fields: dict[str, Any] = {}
    for key, value in (config or {}).items():
        if key not in _CONFIG_KEYS:
            raise ValueError(f"unsupported config key {key!r} (one of {sorted(_CONFIG_KEYS)})")
        fields[_CONFIG_KEYS[key]] = value
    target = _platform(platform)
    image_config = model.ImageConfig(
        architecture=target.architecture,
        os=target.os,
        variant=target.variant,
        diff_ids=tuple(layer.diff_id for layer in layers),
        created=EPOCH,
        history=tuple(
            model.History(created=EPOCH, created_by="ocistore.testing.imagebuild") for _ in layers
        ),
        **fields,
    )
    config_bytes = image_config.to_json()
    config_type = MediaType.OCI_CONFIG if media_types == "oci" else MediaType.DOCKER_CONFIG
    manifest_type = MediaType.OCI_MANIFEST if media_types == "oci" else MediaType.DOCKER_MANIFEST
    manifest = model.Manifest(
        config=model.Descriptor.of(config_type, config_bytes),
        layers=tuple(layer.descriptor() for layer in layers),
        media_type=manifest_type,
        annotations=model.Annotations(annotations or {}),
    )
    return BuiltImage(
        manifest=manifest.to_json(),
        manifest_media_type=manifest_type,
        config=config_bytes,
        config_media_type=config_type,
        layers=tuple(layers),
        platform=platform,
    )


def build_index(
    images: Sequence[BuiltImage],
    *,
    media_types: MediaTypes = "oci",
    annotations: Mapping[str, str] | None = None,
    extra_manifests: Sequence[tuple[model.Descriptor, bytes]] = (),
) -> BuiltIndex:
    """Builds an image index listing ``images`` (plus raw ``(descriptor, blob)`` extras)."""
    media_type = MediaType.OCI_INDEX if media_types == "oci" else MediaType.DOCKER_MANIFEST_LIST
    manifests = [image.descriptor() for image in images]
    extra: dict[str, tuple[str, bytes]] = {}
    for descriptor, blob in extra_manifests:
        manifests.append(descriptor)
        extra[descriptor.digest] = (descriptor.media_type, blob)
    index = model.Index(
        manifests=tuple(manifests),
        media_type=media_type,
        annotations=model.Annotations(annotations or {}),
    )
    return BuiltIndex(
        index=index.to_json(), media_type=media_type, images=tuple(images), extra_blobs=extra
    )
