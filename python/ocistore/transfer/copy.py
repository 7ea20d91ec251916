"""``ocistore.copy``: an image from one registry into another, through bounded scratch files."""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, BinaryIO

from ocistore.digest import digest_file
from ocistore.errors import DigestMismatchError
from ocistore.model import Index, Manifest, parse_manifest_document
from ocistore.platform import Platform
from ocistore.reference import Reference
from ocistore.registry.options import RegistryOptions
from ocistore.registry.session import session_for
from ocistore.transfer.pull import image_reference
from ocistore.transfer.upload import BlobOpener, TransferReport, Uploader, push_client

if TYPE_CHECKING:
    pass


def copy(
    src: Reference | str,
    dst: Reference | str,
    *,
    platform: Platform | str | None = None,
    options: RegistryOptions | None = None,
    dst_options: RegistryOptions | None = None,
    chunk_size: int | None = None,
) -> TransferReport:
    """Copy an image between registries: every platform of an index, or just ``platform``.

    ``dst_options`` reaches the destination (default: ``options``), e.g. other credentials.

    Blobs go through a temporary file (bounded memory, resumable, verified before upload);
    within one registry they are mounted instead.
    """
    source = image_reference(src)
    target = image_reference(dst)
    same_registry = source.registry == target.registry
    with (
        session_for(source, options) as src_session,
        session_for(target, dst_options if dst_options is not None else options) as dst_session,
        tempfile.TemporaryDirectory(prefix="ocistore-copy-") as scratch,
    ):
        top = source.digest or src_session.resolve(source.identifier).digest
        assert top is not None
        client = push_client(dst_session)
        report = TransferReport(str(target), top)
        uploader = Uploader(
            client,
            target.repository,
            report,
            mount_from=source.repository if same_registry else None,
            chunk_size=chunk_size,
        )

        def fetch_to_file(digest: str, size: int) -> BlobOpener:
            path = os.path.join(scratch, digest.replace(":", "_"))
            with open(path, "ab") as handle:
                sink = _FileSink(handle)
                src_session.download_blob(digest, size, sink)
            actual = digest_file(path, digest.split(":", 1)[0])
            if actual != digest:
                os.unlink(path)
                raise DigestMismatchError(
                    f"blob {digest} from {source} does not match", expected=digest, actual=actual
                )
            return BlobOpener(path)

        def copy_manifest(digest: str, reference: str) -> Manifest | Index:
            fetched = src_session.get_manifest(digest)
            document = parse_manifest_document(fetched.data, fetched.media_type)
            if isinstance(document, Manifest):
                for blob in (document.config, *document.layers):
                    if blob.digest in uploader.done:
                        continue
                    exists = client.blob_exists(target.repository, blob.digest)
                    if exists is not None:
                        uploader.done.add(blob.digest)
                        report.blobs_skipped += 1
                        continue
                    if same_registry and client.mount_blob(
                        target.repository, blob.digest, source.repository
                    ):
                        uploader.done.add(blob.digest)
                        report.blobs_mounted += 1
                        continue
                    opener = fetch_to_file(blob.digest, blob.size)
                    uploader.mount_from = None
                    uploader.ensure(blob.digest, blob.size, opener)
                    os.unlink(opener.path)
            client.put_manifest(target.repository, reference, fetched.data, document.media_type)
            report.manifests.append(digest)
            return document

        tag = target.tag or target.digest or "latest"
        fetched = src_session.get_manifest(top)
        document = parse_manifest_document(fetched.data, fetched.media_type)
        if isinstance(document, Index) and platform is None:
            for entry in document.manifests:
                copy_manifest(entry.digest, entry.digest)
            copy_manifest(top, tag)
        elif isinstance(document, Index):
            chosen = document.select(platform)
            copy_manifest(chosen.digest, tag)
            report.digest = chosen.digest
        else:
            copy_manifest(top, tag)
        return report


class _FileSink:
    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle

    @property
    def offset(self) -> int:
        return self.handle.tell()

    def write(self, data: bytes | memoryview) -> None:
        self.handle.write(data)

    def truncate(self) -> None:
        self.handle.seek(0)
        self.handle.truncate()
