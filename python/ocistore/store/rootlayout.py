"""The store root as an OCI image layout: ``oci-layout`` and an ``index.json`` of its images.

skopeo and umoci read the root as a layout. The files are derived from the catalogue, rewritten
after every change of the image records; a pull loads this module, not ``layout.py``'s export
and import code.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ocistore.errors import BlobNotFoundError
from ocistore.mediatypes import MediaType
from ocistore.store import content

if TYPE_CHECKING:
    from ocistore.store.store import Store

__all__ = [
    "CONTAINERD_NAME_ANNOTATION",
    "OCI_LAYOUT_MARKER",
    "REF_NAME_ANNOTATION",
    "atomic_file",
    "atomic_write",
    "store_index_document",
    "write_store_layout_files",
]

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
CONTAINERD_NAME_ANNOTATION = "io.containerd.image.name"
LAYOUT_VERSION = "1.0.0"
OCI_LAYOUT_MARKER = json.dumps({"imageLayoutVersion": LAYOUT_VERSION}).encode()


@contextlib.contextmanager
def atomic_file(path: Path, *, durable: bool = True) -> Iterator[BinaryIO]:
    """A file that replaces ``path`` whole when the block ends: written to a temporary file
    beside it (fsync'd when ``durable``), then renamed over it; removed on error."""
    import tempfile  # here, not at import: it loads random and shutil

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replaces ``path`` by ``data`` whole (a temporary file renamed over it)."""
    with atomic_file(path, durable=durable) as handle:
        handle.write(data)


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
        atomic_write(marker, OCI_LAYOUT_MARKER)
    data = store_index_document(store) if document is None else document
    index_path = store.root / "index.json"
    with contextlib.suppress(OSError):
        if index_path.read_bytes() == data:
            return
    atomic_write(index_path, data, durable=False)
