"""Image archives: OCI archives (a tar of a layout) and ``docker save`` tarballs, both ways.

Import reads the tar once, as a stream (a file or stdin), into a private directory inside the
store root: only regular files and directories are written, every member name must stay inside
(no absolute path, no ``..``), a name may appear once. Symlinks are not created; they are
remembered, because a legacy ``docker save`` links repeated layers (``<id>/layer.tar``). Then,
as containerd's ``archive.ImportIndex`` does, an ``index.json`` (an OCI archive, or Docker 25+'s
``docker save``) wins over a legacy ``manifest.json``, which is turned into Docker schema 2
manifests byte for byte as containerd writes them, so both report the same digests. The
directory then goes through :func:`ocistore.store.layout.import_layout` (verified, all or
nothing) and is removed.

Export writes the layout as a tar stream: blobs first, ``oci-layout`` and ``index.json`` last,
with fixed owners, modes and times so the same images give the same bytes. Like ``ctr images
export`` it adds a Docker ``manifest.json`` for each image's platform manifest, so ``docker
load`` (and any ``docker-archive`` reader) takes the archive too.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ocistore.digest import digest_bytes, digest_file
from ocistore.errors import InvalidReferenceError, LayoutError
from ocistore.mediatypes import MAX_MANIFEST_SIZE, Compression, MediaType, detect_compression
from ocistore.reference import Reference
from ocistore.store.layout import (
    COPY_CHUNK,
    ExportEntry,
    IndexEntries,
    import_layout,
    plan_export,
    write_export,
)
from ocistore.store.rootlayout import (
    CONTAINERD_NAME_ANNOTATION,
    OCI_LAYOUT_MARKER,
    REF_NAME_ANNOTATION,
)

if TYPE_CHECKING:
    from ocistore.store.records import ImageRecord
    from ocistore.store.store import Store

__all__ = ["ArchiveWriter", "export_archive", "import_archive"]

_MAX_MEMBERS = 100_000
_MAX_LINK_HOPS = 8
SCRATCH_PREFIX = ".import-"
STALE_SCRATCH_SECONDS = 24 * 3600.0


# --- export -----------------------------------------------------------------------------


class ArchiveWriter(IndexEntries):
    """Writes an OCI layout as an uncompressed tar stream (stdout and pipes work)."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        # Closed by close(), which also writes the index: a context manager cannot span the export.
        self._tar = tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        self._written: set[str] = set()
        for directory in ("blobs", "blobs/sha256"):
            self._add(directory, None, 0, tarfile.DIRTYPE)

    def _add(self, name: str, data: BinaryIO | None, size: int, kind: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
        info.size = size
        info.mtime = 0
        self._tar.addfile(info, data)

    def add_blob_file(self, source: Path, digest: str) -> None:
        """Adds a blob once (a verified file of the store)."""
        if digest in self._written:
            return
        algorithm, _, encoded = digest.partition(":")
        if algorithm != "sha256":
            self._add(f"blobs/{algorithm}", None, 0, tarfile.DIRTYPE)
        with source.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            self._add(f"blobs/{algorithm}/{encoded}", handle, size, tarfile.REGTYPE)
        self._written.add(digest)

    def close(self, docker_manifest: bytes | None = None) -> None:
        """Adds ``oci-layout``, ``index.json`` (and a Docker ``manifest.json``); ends the tar."""
        files = [("oci-layout", OCI_LAYOUT_MARKER), ("index.json", self.index_json())]
        if docker_manifest is not None:
            files.append(("manifest.json", docker_manifest))
        for name, data in files:
            self._add(name, io.BytesIO(data), len(data), tarfile.REGTYPE)
        self._tar.close()


def _blob_member(digest: str) -> str:
    algorithm, _, encoded = digest.partition(":")
    return f"blobs/{algorithm}/{encoded}"


def docker_manifest_json(store: Store, entries: list[ExportEntry]) -> bytes | None:
    """The ``manifest.json`` ``docker load`` reads, one entry per manifest, as ``ctr`` writes it.

    Each image contributes its single-platform manifest; ``RepoTags`` hold the familiar
    tagged names. An image whose layers do not all travel (non-distributable) is left out.
    """
    documents: dict[str, dict[str, Any]] = {}
    for entry in entries:
        manifest = store.manifest(entry.manifest_digest)
        if not all(layer.digest in entry.blobs for layer in manifest.layers):
            continue
        document = documents.setdefault(
            entry.manifest_digest,
            {
                "Config": _blob_member(manifest.config.digest),
                "RepoTags": [],
                "Layers": [_blob_member(layer.digest) for layer in manifest.layers],
            },
        )
        if entry.record.tag is not None:
            document["RepoTags"].append(Reference.parse(entry.record.reference).familiar)
    return json.dumps(list(documents.values())).encode() if documents else None


def export_archive(
    store: Store,
    refs: list[Reference | str],
    stream: BinaryIO,
    *,
    platforms: list[str] | None = None,
    all_platforms: bool = False,
) -> None:
    """Implements :meth:`Store.export_archive`."""
    with store.lease():
        entries = plan_export(store, refs, platforms=platforms, all_platforms=all_platforms)
        docker_manifest = docker_manifest_json(store, entries)
        writer = ArchiveWriter(stream)
        write_export(store, entries, writer)
        writer.close(docker_manifest)


# --- import: reading the tar ------------------------------------------------------------


def _member_name(raw: str, what: str = "archive member") -> str:
    """A path inside the archive, normalised, or LayoutError when it would leave it."""
    name = posixpath.normpath(raw) if raw else "."
    if raw.startswith("/") or name == ".." or name.startswith("../") or "\x00" in raw:
        raise LayoutError(f"{what} {raw!r} points outside the archive")
    return "" if name == "." else name


class _Extracted:
    """An archive's regular files under a directory, plus the symlinks it held."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.links: dict[str, str] = {}
        self.files: set[str] = set()

    def resolve(self, name: str, what: str) -> Path:
        """The extracted file a path of ``manifest.json`` names (following archive links)."""
        path = _member_name(name, what)
        for _ in range(_MAX_LINK_HOPS):
            if path in self.files:
                return self.root / path
            target = self.links.get(path)
            if target is None:
                break
            if target.startswith("/"):
                raise LayoutError(f"{what} {name!r} links outside the archive")
            path = _member_name(posixpath.join(posixpath.dirname(path), target), what)
        else:
            raise LayoutError(f"{what} {name!r}: too many links")
        raise LayoutError(f"{what} {name!r} is not a file in the archive")


def _extract(stream: BinaryIO, root: Path) -> _Extracted:
    extracted = _Extracted(root)
    seen: set[str] = set()
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for count, member in enumerate(tar):
                if count >= _MAX_MEMBERS:
                    raise LayoutError(f"archive has more than {_MAX_MEMBERS} members")
                name = _member_name(member.name)
                if not name or member.isdir():
                    continue
                if name in seen:
                    raise LayoutError(f"archive member {name!r} appears twice")
                seen.add(name)
                if member.issym():
                    extracted.links[name] = member.linkname
                elif member.isfile():
                    _write_member(tar, member, root, name)
                    extracted.files.add(name)
                else:
                    raise LayoutError(f"archive member {name!r} is not a file or directory")
    except (tarfile.TarError, EOFError) as exc:
        raise LayoutError(
            f"not a readable tar archive (an OCI archive or a docker save tarball): {exc}"
        ) from None
    return extracted


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, root: Path, name: str) -> None:
    target = root / name
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except (FileExistsError, NotADirectoryError):
        raise LayoutError(f"archive member {name!r} clashes with another member") from None
    source = tar.extractfile(member)
    assert source is not None  # a regular file
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(source, out, COPY_CHUNK)


# --- import: legacy docker save ---------------------------------------------------------


_DOCKER_LAYER_TYPES = {
    Compression.NONE: MediaType.DOCKER_LAYER,
    Compression.GZIP: MediaType.DOCKER_LAYER_GZIP,
    Compression.ZSTD: MediaType.DOCKER_LAYER_ZSTD,
}


def _layer_media_type(path: Path) -> str:
    """What a legacy layer file is, from its first bytes (``docker save`` does not say)."""
    with path.open("rb") as handle:
        head = handle.read(16)
    return _DOCKER_LAYER_TYPES[detect_compression(head)]


def _docker_manifest(config: Mapping[str, Any], layers: Sequence[Mapping[str, Any]]) -> bytes:
    """A schema 2 manifest in containerd's exact bytes (compact, its field order)."""
    document = {
        "schemaVersion": 2,
        "mediaType": MediaType.DOCKER_MANIFEST,
        "config": dict(config),
        "layers": [dict(layer) for layer in layers],
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _string_list(value: object, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LayoutError(f"manifest.json: {what} is not a list of strings")
    return value


def _docker_save_to_layout(extracted: _Extracted, layout: Path) -> None:
    """Writes ``layout`` (an OCI layout) from a legacy ``manifest.json`` archive."""
    manifest_json = extracted.resolve("manifest.json", "manifest.json")
    if manifest_json.stat().st_size > MAX_MANIFEST_SIZE:
        raise LayoutError(f"manifest.json is over the {MAX_MANIFEST_SIZE}-byte limit")
    try:
        entries = json.loads(manifest_json.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LayoutError(f"manifest.json is not valid JSON: {exc}") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise LayoutError("manifest.json is not a list of objects")
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    digests: dict[Path, str] = {}

    def blob(path: Path) -> dict[str, Any]:
        if path not in digests:
            digests[path] = digest_file(path)
            target = blobs / digests[path].partition(":")[2]
            if not target.exists():
                os.link(path, target)
        return {"digest": digests[path], "size": path.stat().st_size}

    index = IndexEntries()
    for number, entry in enumerate(entries):
        config_name = entry.get("Config")
        if not isinstance(config_name, str):
            raise LayoutError(f"manifest.json entry {number} has no Config")
        config = {
            "mediaType": MediaType.DOCKER_CONFIG,
            **blob(extracted.resolve(config_name, "manifest.json Config")),
        }
        layers = []
        for layer_name in _string_list(entry.get("Layers"), "Layers"):
            path = extracted.resolve(layer_name, "manifest.json layer")
            layers.append({"mediaType": _layer_media_type(path), **blob(path)})
        data = _docker_manifest(config, layers)
        digest = digest_bytes(data)
        (blobs / digest.partition(":")[2]).write_bytes(data)
        descriptor = {
            "mediaType": MediaType.DOCKER_MANIFEST,
            "digest": digest,
            "size": len(data),
        }
        tags = _string_list(entry.get("RepoTags"), "RepoTags")
        for tag in tags:
            try:
                reference = Reference.parse(tag).with_default_tag()
            except InvalidReferenceError:
                raise LayoutError(
                    f"manifest.json: RepoTag {tag!r} is not a valid reference"
                ) from None
            annotations = {CONTAINERD_NAME_ANNOTATION: str(reference)}
            index.add_manifest(
                descriptor, None, **annotations, **{REF_NAME_ANNOTATION: reference.tag or ""}
            )
        if not tags:
            index.add_manifest(descriptor, None)
    (layout / "oci-layout").write_bytes(OCI_LAYOUT_MARKER)
    (layout / "index.json").write_bytes(index.index_json())


# --- import -----------------------------------------------------------------------------


def _remove_stale_scratch(root: Path) -> None:
    """Removes what an import killed long ago left (a live import's directory is young)."""
    cutoff = time.time() - STALE_SCRATCH_SECONDS
    for entry in root.glob(f"{SCRATCH_PREFIX}*"):
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink() and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)


@contextlib.contextmanager
def _opened(source: str | os.PathLike[str] | BinaryIO) -> Iterator[BinaryIO]:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            handle = path.open("rb")
        except IsADirectoryError:
            raise LayoutError(f"{path} is a directory: import it as a layout") from None
        with handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise LayoutError(f"{path} is not a regular file")
            yield handle
    else:
        yield source


def import_archive(
    store: Store,
    source: str | os.PathLike[str] | BinaryIO,
    name: str | None,
    *,
    platform: str | None,
    all_platforms: bool = False,
) -> list[ImageRecord]:
    """Implements :meth:`Store.import_archive`."""
    _remove_stale_scratch(store.root)
    with tempfile.TemporaryDirectory(dir=store.root, prefix=SCRATCH_PREFIX) as scratch:
        work = Path(scratch)
        with _opened(source) as stream:
            extracted = _extract(stream, work / "archive")
        if {"oci-layout", "index.json"} <= extracted.files:
            layout = extracted.root
        elif "manifest.json" in extracted.files:
            layout = work / "layout"
            _docker_save_to_layout(extracted, layout)
        else:
            raise LayoutError(
                "neither an OCI archive (no oci-layout and index.json) nor a docker save "
                "tarball (no manifest.json)"
            )
        return import_layout(store, layout, name, platform=platform, all_platforms=all_platforms)
