"""OCI image layouts (``oci-layout``, ``index.json``, ``blobs/``): export and import.

Export names each image twice in ``index.json``: ``org.opencontainers.image.ref.name`` holds
the tag (what ``skopeo ... oci:dir:tag`` and ``umoci --image dir:tag`` look up; the full
reference when two exported images share a tag) and ``io.containerd.image.name`` the full
reference (what ``ctr`` writes). A multi-arch image is exported as its index, with the digest
the registry reports; its manifests for the chosen platforms (default: the one the store holds)
or for all of them travel with it, as ``ctr images export`` does.

Import reads the names back as containerd does: ``io.containerd.image.name``, then a ref.name
that is a full reference, then ``name`` (ctr's ``--base-name``) with the ref.name as tag, else
the image is known by its digest alone. Import is all or nothing: every entry is checked and
every blob copied (through :meth:`Store.ingest`, so digest and size are verified) before the
first image is named; on any error no image appears or changes.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from ocistore import mediatypes
from ocistore._valueclass import valueclass
from ocistore.digest import digest_bytes, validate_digest
from ocistore.errors import (
    BlobNotFoundError,
    DigestMismatchError,
    InvalidReferenceError,
    LayoutError,
    ManifestError,
    SizeMismatchError,
)
from ocistore.mediatypes import MAX_MANIFEST_SIZE, MediaType
from ocistore.reference import Reference
from ocistore.store import content
from ocistore.store.records import ImageRecord
from ocistore.store.rootlayout import (
    CONTAINERD_NAME_ANNOTATION,
    OCI_LAYOUT_MARKER,
    REF_NAME_ANNOTATION,
    atomic_file,
    atomic_write,
)

if TYPE_CHECKING:
    from ocistore.store.store import Store

__all__ = ["CONTAINERD_NAME_ANNOTATION", "REF_NAME_ANNOTATION", "LayoutWriter"]

COPY_CHUNK = 1 << 20


def _blob_path(root: Path, digest: str) -> Path:
    validate_digest(digest)  # a hostile index.json must not name paths outside blobs/
    algorithm, _, encoded = digest.partition(":")
    return root / "blobs" / algorithm / encoded


class IndexEntries:
    """The ``index.json`` of a layout being written: entries replaced by ref.name."""

    def __init__(self) -> None:
        self._manifests: list[dict[str, Any]] = []
        self._index_annotations: dict[str, str] | None = None

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

    def index_json(self) -> bytes:
        """The ``index.json`` document."""
        document: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": MediaType.OCI_INDEX,
            "manifests": self._manifests,
        }
        if self._index_annotations:
            document["annotations"] = self._index_annotations
        return json.dumps(document, indent=2).encode()


class LayoutSink(Protocol):
    """Where an export goes: a layout directory or an archive stream."""

    def add_blob_file(self, source: Path, digest: str) -> None: ...

    def add_manifest(
        self, descriptor: Mapping[str, Any], ref_name: str | None, **annotations: str
    ) -> None: ...


class LayoutWriter(IndexEntries):
    """Adds blobs and tagged manifests to an OCI image layout; ``index.json`` is written last."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

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
            atomic_write(target, data)
        return actual

    def add_blob_file(self, source: Path, digest: str) -> None:
        """Copies a verified blob file into the layout (if not already there)."""
        target = _blob_path(self.path, digest)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(target) as out, source.open("rb") as src:
            shutil.copyfileobj(src, out, COPY_CHUNK)

    def close(self) -> None:
        """Writes ``oci-layout`` and ``index.json``."""
        atomic_write(self.path / "oci-layout", OCI_LAYOUT_MARKER)
        atomic_write(self.path / "index.json", self.index_json())


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


# --- export -----------------------------------------------------------------------------


@valueclass
class ExportEntry:
    """One image of an export: its ``index.json`` entry and the blobs that travel with it."""

    record: ImageRecord
    descriptor: dict[str, Any]
    ref_name: str | None
    annotations: dict[str, str]
    blobs: list[str]
    manifest_digest: str
    """The image manifest a single-platform consumer takes (the first chosen platform's)."""


def plan_export(
    store: Store,
    refs: list[Reference | str],
    *,
    platforms: list[str] | None = None,
    all_platforms: bool = False,
) -> list[ExportEntry]:
    """What an export writes, checked before anything is written (call inside a lease)."""
    records = [store.image(ref) for ref in refs]
    tags = [r.tag for r in records]
    entries = []
    for record in records:
        descriptor, blobs, manifest_digest = _export_plan(store, record, platforms, all_platforms)
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
        entries.append(
            ExportEntry(record, descriptor, ref_name, annotations, blobs, manifest_digest)
        )
    return entries


def write_export(store: Store, entries: list[ExportEntry], sink: LayoutSink) -> None:
    """Writes planned images into a layout directory or an archive."""
    for entry in entries:
        for digest in entry.blobs:
            sink.add_blob_file(store.blob_path(digest), digest)
        sink.add_manifest(entry.descriptor, entry.ref_name, **entry.annotations)


def export_layout(
    store: Store,
    refs: list[Reference | str],
    path: Path,
    *,
    platforms: list[str] | None = None,
    all_platforms: bool = False,
) -> None:
    """Implements :meth:`Store.export_layout`."""
    with store.lease():
        entries = plan_export(store, refs, platforms=platforms, all_platforms=all_platforms)
        with LayoutWriter(path) as writer:
            write_export(store, entries, writer)


def _export_plan(
    store: Store, record: ImageRecord, platforms: list[str] | None, all_platforms: bool
) -> tuple[dict[str, Any], list[str], str]:
    """The descriptor ``index.json`` lists for an image, and the blobs that travel with it."""
    if record.index_digest is None:
        descriptor: dict[str, Any] = {
            "mediaType": record.media_type,
            "digest": record.digest,
            "size": store.blobs.size(record.digest),
        }
        platform = content.platform_descriptor(record.platform)
        if platform:
            descriptor["platform"] = platform
        return descriptor, _image_blobs(store, record.reference, record.digest), record.digest
    index_bytes = store.read_blob(record.index_digest, MAX_MANIFEST_SIZE)
    index = content.verified_index(index_bytes, record.index_digest)
    if all_platforms:
        chosen = content.index_children(index)
    else:
        wanted: list[str | None] = list(platforms) if platforms else [record.platform]
        chosen = list(
            {c.digest: c for c in (content.choose_platform(index, p) for p in wanted)}.values()
        )
    blobs = [record.index_digest]
    for child in chosen:
        if not mediatypes.is_manifest(child.media_type):
            raise ManifestError(
                f"image {record.reference}: nested index {child.digest} is not exported"
            )
        if not store.has_blob(child.digest):
            raise BlobNotFoundError(
                f"image {record.reference}: the {content.platform_string(child.platform)} manifest"
                f" {child.digest} is not in the store (pull or import that platform first)"
            )
        blobs += _image_blobs(store, record.reference, child.digest)
    descriptor = {
        "mediaType": index.media_type,
        "digest": record.index_digest,
        "size": len(index_bytes),
    }
    digests = [c.digest for c in chosen]
    return descriptor, blobs, record.digest if record.digest in digests else digests[0]


def _image_blobs(store: Store, reference: str, manifest_digest: str) -> list[str]:
    manifest = store.manifest(manifest_digest)
    digests = [manifest_digest]
    for child in content.manifest_children(manifest):
        if store.has_blob(child.digest):
            digests.append(child.digest)
        elif not content.may_be_absent(child):
            raise BlobNotFoundError(f"image {reference}: blob {child.digest} is missing")
    return digests


# --- import -----------------------------------------------------------------------------


@valueclass
class _PlannedImage:
    """One image an import will name, once every blob it needs is in the store."""

    reference: str
    manifest: content.Child
    index: content.Child | None


def _layout_blob_exists(layout: Path, digest: str) -> bool:
    """Whether the layout has an entry for a blob (reading it checks it is a regular file)."""
    return os.path.lexists(_blob_path(layout, digest))


def _copy_in(store: Store, layout: Path, blob: content.Child) -> None:
    source = _blob_path(layout, blob.digest)
    with store.ingest(blob.digest, blob.size, media_type=blob.media_type) as ingest:
        if ingest.done:
            return
        ingest.truncate()
        with _open_regular(source, f"layout {layout} lacks blob {blob.digest}") as handle:
            while chunk := handle.read(COPY_CHUNK):
                ingest.write(chunk)  # bounded: more than the declared size is refused
        ingest.commit()


def _read_document(layout: Path, descriptor: content.Child) -> bytes:
    if not _layout_blob_exists(layout, descriptor.digest):
        raise LayoutError(f"layout {layout} lacks blob {descriptor.digest} that index.json lists")
    source = _blob_path(layout, descriptor.digest)
    data = _read_bounded(source, MAX_MANIFEST_SIZE, f"layout lacks {descriptor.digest}")
    actual = digest_bytes(data, descriptor.digest.partition(":")[0])
    if actual != descriptor.digest:
        raise DigestMismatchError(
            f"layout blob {descriptor.digest} hashes to {actual}", descriptor.digest, actual
        )
    if len(data) != descriptor.size:
        raise SizeMismatchError(
            f"manifest {descriptor.digest}: descriptor says {descriptor.size} bytes,"
            f" blob has {len(data)}"
        )
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
            return str(Reference.parse(value))
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


class _ImportPlan:
    """What an import will copy and name; built and checked before the store changes."""

    def __init__(self, layout: Path) -> None:
        self.layout = layout
        self.blobs: dict[str, content.Child] = {}
        self.claims: dict[str, str] = {}
        self.images: dict[str, _PlannedImage] = {}

    def need(self, blob: content.Child) -> None:
        if blob.digest in self.blobs:
            return
        if not _layout_blob_exists(self.layout, blob.digest):
            raise LayoutError(f"layout {self.layout} lacks blob {blob.digest} ({blob.kind})")
        self.blobs[blob.digest] = blob

    def claim(self, reference: str, digest: str) -> None:
        """Reserves a name for a top-level digest: one name, one image."""
        first = self.claims.setdefault(reference, digest)
        if first != digest:
            raise LayoutError(f"conflicting names: {reference} names both {first} and {digest}")

    def manifest_tree(self, descriptor: content.Child) -> None:
        manifest = content.verified_manifest(
            _read_document(self.layout, descriptor), descriptor.digest
        )
        for child in content.manifest_children(manifest):
            if content.may_be_absent(child) and not _layout_blob_exists(self.layout, child.digest):
                continue
            self.need(child)
        self.need(descriptor)


def import_layout(
    store: Store,
    path: Path,
    name: str | None,
    *,
    platform: str | None,
    all_platforms: bool = False,
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
    plan = _ImportPlan(path)
    for descriptor in content.index_children(top):
        if not (
            mediatypes.is_index(descriptor.media_type)
            or mediatypes.is_manifest(descriptor.media_type)
        ):
            continue  # artifacts and unknown types are not images: leave them
        reference = _name_for(descriptor.annotations, name, descriptor.digest)
        plan.claim(reference, descriptor.digest)
        if mediatypes.is_index(descriptor.media_type):
            index = content.verified_index(_read_document(path, descriptor), descriptor.digest)
            chosen = content.choose_platform(index, platform)
            for child in content.index_children(index) if all_platforms else [chosen]:
                if not mediatypes.is_manifest(child.media_type):
                    raise ManifestError(f"nested index {child.digest} is not supported here")
                if not _layout_blob_exists(path, child.digest):
                    raise LayoutError(
                        f"{path} lacks the {content.platform_string(child.platform)} manifest"
                        f" {child.digest} of {reference} (choose a platform it holds with"
                        " --platform)"
                    )
                plan.manifest_tree(child)
            plan.need(descriptor)
            plan.images[reference] = _PlannedImage(reference, chosen, descriptor)
        else:
            plan.manifest_tree(descriptor)
            plan.images[reference] = _PlannedImage(reference, descriptor, None)
    with store.lease():
        for blob in plan.blobs.values():
            _copy_in(store, path, blob)
        return [
            store.record_image(
                image.reference,
                manifest_digest=image.manifest.digest,
                index_digest=image.index.digest if image.index else None,
                platform=content.platform_string(image.manifest.platform),
                source="import",
            )
            for image in plan.images.values()
        ]
