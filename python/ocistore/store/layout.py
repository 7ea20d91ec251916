"""OCI image layout directories (``oci-layout``, ``index.json``, ``blobs/``): export and import.

Export names each image twice in ``index.json``: ``org.opencontainers.image.ref.name`` holds
the tag (what ``skopeo ... oci:dir:tag`` and ``umoci --image dir:tag`` look up; the full
reference when two exported images share a tag) and ``io.containerd.image.name`` the full
reference (what ``ctr`` writes). Import reads those back: an image is named by a full reference
in either annotation, else by ``name`` with the ref.name as tag, else by its digest alone.
Every imported blob goes through :meth:`Store.ingest`, so its digest and size are verified.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO

from ocistore import mediatypes
from ocistore.digest import digest_bytes, validate_digest
from ocistore.errors import (
    BlobNotFoundError,
    DigestMismatchError,
    InvalidReferenceError,
    LayoutError,
    SizeMismatchError,
)
from ocistore.mediatypes import MAX_MANIFEST_SIZE, MediaType
from ocistore.reference import Reference
from ocistore.store import content
from ocistore.store.records import ImageRecord

if TYPE_CHECKING:
    from ocistore.store.store import Store

__all__ = ["CONTAINERD_NAME_ANNOTATION", "REF_NAME_ANNOTATION", "LayoutWriter"]

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
CONTAINERD_NAME_ANNOTATION = "io.containerd.image.name"
LAYOUT_VERSION = "1.0.0"
_COPY_CHUNK = 1 << 20


def _atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _blob_path(root: Path, digest: str) -> Path:
    validate_digest(digest)  # a hostile index.json must not name paths outside blobs/
    algorithm, _, encoded = digest.partition(":")
    return root / "blobs" / algorithm / encoded


class LayoutWriter:
    """Adds blobs and tagged manifests to an OCI image layout; ``index.json`` is written last."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._manifests: list[dict[str, Any]] = []
        self._index_annotations: dict[str, str] | None = None

    def __enter__(self) -> LayoutWriter:
        self.path.mkdir(parents=True, exist_ok=True)
        existing = self.path / "index.json"
        if existing.exists():
            document = _load_json(existing, "index.json")
            manifests = document.get("manifests", [])
            if not isinstance(manifests, list):
                raise LayoutError(f"{existing}: 'manifests' is not a list")
            self._manifests = manifests
            annotations = document.get("annotations")
            self._index_annotations = annotations if isinstance(annotations, dict) else None
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()

    def add_blob_bytes(self, data: bytes, digest: str | None = None) -> str:
        """Writes a blob (if not already there); returns its digest."""
        actual = digest_bytes(data, (digest or "sha256").partition(":")[0])
        if digest is not None and actual != digest:
            raise DigestMismatchError(f"blob hashes to {actual}, not {digest}", digest, actual)
        target = _blob_path(self.path, actual)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(target, data)
        return actual

    def add_blob_file(self, source: Path, digest: str) -> None:
        """Copies a verified blob file into the layout (if not already there)."""
        target = _blob_path(self.path, digest)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                shutil.copyfileobj(src, out, _COPY_CHUNK)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
            os.rename(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def add_manifest(
        self, descriptor: Mapping[str, Any], ref_name: str | None, **annotations: str
    ) -> None:
        """Lists a manifest or index in ``index.json``, replacing an entry with the same name."""
        entry = dict(descriptor)
        merged = dict(entry.get("annotations") or {})
        merged.update(annotations)
        if ref_name is not None:
            merged[REF_NAME_ANNOTATION] = ref_name
            self._manifests = [
                m
                for m in self._manifests
                if (m.get("annotations") or {}).get(REF_NAME_ANNOTATION) != ref_name
            ]
        if merged:
            entry["annotations"] = merged
        self._manifests.append(entry)

    def close(self) -> None:
        """Writes ``oci-layout`` and ``index.json``."""
        _atomic_write(
            self.path / "oci-layout",
            json.dumps({"imageLayoutVersion": LAYOUT_VERSION}).encode(),
        )
        document: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": MediaType.OCI_INDEX,
            "manifests": self._manifests,
        }
        if self._index_annotations:
            document["annotations"] = self._index_annotations
        _atomic_write(self.path / "index.json", json.dumps(document, indent=2).encode())


def _open_regular(path: Path, missing: str) -> BinaryIO:
    """Opens a layout file for reading: no symlinks, no FIFOs or devices (they could hang)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise BlobNotFoundError(missing) from None
    except OSError as exc:
        raise LayoutError(f"{path} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LayoutError(f"{path} is not a regular file")
    return os.fdopen(fd, "rb")


def _read_bounded(path: Path, limit: int, missing: str) -> bytes:
    with _open_regular(path, missing) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise LayoutError(f"{path} is over the {limit}-byte limit")
    return data


def _load_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = _read_bounded(path, MAX_MANIFEST_SIZE, what)
    except BlobNotFoundError:
        raise LayoutError(f"{path.parent} is not an OCI image layout: no {what}") from None
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LayoutError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise LayoutError(f"{path} is not a JSON object")
    return document


# --- the store as a layout ---------------------------------------------------------------


def store_index_document(store: Store) -> bytes:
    """The ``index.json`` that makes the store root itself an OCI image layout."""
    manifests: list[dict[str, Any]] = []
    for record in store.images():
        try:
            size = store.blobs.size(record.digest)
        except BlobNotFoundError:
            continue  # fsck reports the image; a layout must not list what is missing
        descriptor: dict[str, Any] = {
            "mediaType": record.media_type,
            "digest": record.digest,
            "size": size,
        }
        platform = content.platform_descriptor(record.platform)
        if platform:
            descriptor["platform"] = platform
        if record.repository:
            descriptor["annotations"] = {
                CONTAINERD_NAME_ANNOTATION: record.reference,
                REF_NAME_ANNOTATION: record.reference,
            }
        manifests.append(descriptor)
    document = {"schemaVersion": 2, "mediaType": MediaType.OCI_INDEX, "manifests": manifests}
    return json.dumps(document, indent=2).encode()


def write_store_layout_files(store: Store, document: bytes | None = None) -> None:
    """Writes ``oci-layout`` and ``index.json`` at the store root (derived data: no fsync)."""
    marker = store.root / "oci-layout"
    if not marker.exists():
        _atomic_write(marker, json.dumps({"imageLayoutVersion": LAYOUT_VERSION}).encode())
    data = store_index_document(store) if document is None else document
    index_path = store.root / "index.json"
    with contextlib.suppress(OSError):
        if index_path.read_bytes() == data:
            return
    _atomic_write(index_path, data, durable=False)


# --- export -----------------------------------------------------------------------------


def export_layout(store: Store, refs: list[Reference | str], path: Path) -> None:
    """Implements :meth:`Store.export_layout`."""
    records = [store.image(ref) for ref in refs]
    tags = [r.tag for r in records]
    with store.lease(), LayoutWriter(path) as writer:
        for record in records:
            for digest in _image_blobs(store, record):
                writer.add_blob_file(store.blob_path(digest), digest)
            descriptor: dict[str, Any] = {
                "mediaType": record.media_type,
                "digest": record.digest,
                "size": store.blobs.size(record.digest),
            }
            platform = content.platform_descriptor(record.platform)
            if platform:
                descriptor["platform"] = platform
            annotations: dict[str, str] = {}
            if record.repository:
                annotations[CONTAINERD_NAME_ANNOTATION] = record.reference
            ref_name: str | None
            if record.tag is not None and tags.count(record.tag) == 1:
                ref_name = record.tag
            elif record.repository:
                ref_name = record.reference
            else:
                ref_name = None
            writer.add_manifest(descriptor, ref_name, **annotations)


def _image_blobs(store: Store, record: ImageRecord) -> list[str]:
    manifest = store.manifest(record.digest)
    digests = [record.digest]
    for child in content.manifest_children(manifest):
        if store.has_blob(child.digest):
            digests.append(child.digest)
        elif not content.may_be_absent(child):
            raise BlobNotFoundError(f"image {record.reference}: blob {child.digest} is missing")
    return digests


# --- import -----------------------------------------------------------------------------


def _copy_in(
    store: Store, layout: Path, digest: str, size: int | None, media_type: str | None
) -> None:
    source = _blob_path(layout, digest)
    with store.ingest(digest, size, media_type=media_type) as ingest:
        if ingest.done:
            return
        ingest.truncate()
        with _open_regular(source, f"layout {layout} lacks blob {digest}") as handle:
            while chunk := handle.read(_COPY_CHUNK):
                ingest.write(chunk)  # bounded: more than the declared size is refused
        ingest.commit()


def _read_layout_blob(layout: Path, digest: str, limit: int) -> bytes:
    source = _blob_path(layout, digest)
    data = _read_bounded(source, limit, f"layout {layout} lacks blob {digest}")
    actual = digest_bytes(data, digest.partition(":")[0])
    if actual != digest:
        raise DigestMismatchError(f"layout blob {digest} hashes to {actual}", digest, actual)
    return data


def _is_full_reference(text: str) -> bool:
    if not any(sep in text for sep in "/:@"):
        return False  # a bare tag such as "latest" or "v1.2"
    try:
        Reference.parse(text)
    except InvalidReferenceError:
        return False
    return True


def _name_for(annotations: Mapping[str, str], name: str | None, digest: str) -> str:
    for key in (CONTAINERD_NAME_ANNOTATION, REF_NAME_ANNOTATION):
        value = annotations.get(key)
        if value and _is_full_reference(value):
            return value
    ref_name = annotations.get(REF_NAME_ANNOTATION)
    if name is not None:
        base = Reference.parse(name)
        if ref_name:
            try:
                return str(base.with_tag(ref_name))
            except InvalidReferenceError:
                raise LayoutError(f"ref.name {ref_name!r} is not a valid tag for {name}") from None
        return str(base.with_digest(digest)) if base.tag is None and base.digest is None else name
    return digest


def import_layout(
    store: Store, path: Path, name: str | None, *, platform: str | None
) -> list[ImageRecord]:
    """Implements :meth:`Store.import_layout`."""
    marker = _load_json(path / "oci-layout", "oci-layout")
    if not isinstance(marker.get("imageLayoutVersion"), str):
        raise LayoutError(f"{path}/oci-layout has no imageLayoutVersion")
    try:
        index_bytes = _read_bounded(path / "index.json", MAX_MANIFEST_SIZE, "index.json")
    except BlobNotFoundError:
        raise LayoutError(f"{path} is not an OCI image layout: no index.json") from None
    top = content.verified_index(index_bytes, None)
    records: list[ImageRecord] = []
    with store.lease():
        for descriptor in content.index_children(top):
            annotations = descriptor.annotations
            if mediatypes.is_index(descriptor.media_type):
                records.append(_import_index(store, path, descriptor, annotations, name, platform))
            elif mediatypes.is_manifest(descriptor.media_type):
                _import_manifest_tree(store, path, descriptor)
                reference = _name_for(annotations, name, descriptor.digest)
                records.append(
                    store.record_image(
                        reference,
                        manifest_digest=descriptor.digest,
                        platform=content.platform_string(descriptor.platform),
                        source="import",
                    )
                )
            # Other media types (artifacts, unknown) are not images: leave them.
    return records


def _import_manifest_tree(store: Store, layout: Path, descriptor: content.Child) -> None:
    data = _read_layout_blob(layout, descriptor.digest, MAX_MANIFEST_SIZE)
    if len(data) != descriptor.size:
        raise SizeMismatchError(
            f"manifest {descriptor.digest}: descriptor says {descriptor.size} bytes,"
            f" blob has {len(data)}"
        )
    manifest = content.verified_manifest(data, descriptor.digest)
    for child in content.manifest_children(manifest):
        if content.may_be_absent(child) and not _blob_path(layout, child.digest).exists():
            continue
        _copy_in(store, layout, child.digest, child.size, child.media_type)
    _copy_in(store, layout, descriptor.digest, len(data), descriptor.media_type)


def _import_index(
    store: Store,
    layout: Path,
    descriptor: content.Child,
    annotations: Mapping[str, str],
    name: str | None,
    platform: str | None,
) -> ImageRecord:
    data = _read_layout_blob(layout, descriptor.digest, MAX_MANIFEST_SIZE)
    index = content.verified_index(data, descriptor.digest)
    chosen = content.choose_platform(index, platform)
    _import_manifest_tree(store, layout, chosen)
    _copy_in(store, layout, descriptor.digest, len(data), descriptor.media_type)
    reference = _name_for(annotations, name, descriptor.digest)
    return store.record_image(
        reference,
        manifest_digest=chosen.digest,
        index_digest=descriptor.digest,
        platform=content.platform_string(chosen.platform),
        source="import",
    )
