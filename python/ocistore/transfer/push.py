"""``ocistore.push``: an image from the store into a registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocistore.mediatypes import MAX_MANIFEST_SIZE
from ocistore.model import Index, Manifest, parse_manifest_document
from ocistore.reference import Reference
from ocistore.registry.options import RegistryOptions
from ocistore.registry.session import session_for
from ocistore.transfer.pull import image_reference
from ocistore.transfer.upload import BlobOpener, TransferReport, Uploader, push_client

if TYPE_CHECKING:
    from ocistore.store import Store


def push(
    ref: Reference | str,
    *,
    store: Store | None = None,
    source: Reference | str | None = None,
    options: RegistryOptions | None = None,
    chunk_size: int | None = None,
) -> TransferReport:
    """Push an image from the store to ``ref`` (``source`` names it in the store if different).

    Blobs the registry has are skipped; blobs in another repository of the same registry that
    the image came from are mounted; the rest are uploaded (in chunks of ``chunk_size`` if
    given). When the store has every platform of the image's index, the whole index is pushed.
    """
    from ocistore.store import Store

    store = store if store is not None else Store()
    target = image_reference(ref)
    record = store.image(source if source is not None else target)
    origin_ref = Reference.parse(record.reference) if record.repository else None
    mount_from = None
    if (
        origin_ref is not None
        and origin_ref.registry == target.registry
        and origin_ref.repository != target.repository
    ):
        mount_from = origin_ref.repository
    tag = target.tag or target.digest or "latest"
    with session_for(target, options) as session:
        client = push_client(session)
        report = TransferReport(str(target), record.digest)
        uploader = Uploader(
            client, target.repository, report, mount_from=mount_from, chunk_size=chunk_size
        )

        def push_manifest(digest: str, reference: str) -> None:
            data = store.read_blob(digest, MAX_MANIFEST_SIZE)
            document = parse_manifest_document(data)
            if isinstance(document, Manifest):
                for blob in (document.config, *document.layers):
                    uploader.ensure(
                        blob.digest, blob.size, BlobOpener(store.blob_path(blob.digest))
                    )
            client.put_manifest(target.repository, reference, data, document.media_type)
            report.manifests.append(digest)

        index_digest = record.index_digest
        if index_digest is not None:
            index = parse_manifest_document(store.read_blob(index_digest, MAX_MANIFEST_SIZE))
            assert isinstance(index, Index)
            if all(store.has_blob(entry.digest) for entry in index.manifests):
                for entry in index.manifests:
                    push_manifest(entry.digest, entry.digest)
                push_manifest(index_digest, tag)
                report.digest = index_digest
                return report
        push_manifest(record.digest, tag)
        return report
