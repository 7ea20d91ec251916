"""``ocistore.push`` and ``ocistore.copy``: images from the store or a registry into a registry."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from ocistore.digest import digest_file
from ocistore.errors import DigestMismatchError, RegistryError
from ocistore.mediatypes import MAX_MANIFEST_SIZE
from ocistore.model import Index, Manifest, parse_manifest_document
from ocistore.platform import Platform
from ocistore.reference import Reference
from ocistore.registry.client import RegistryClient
from ocistore.registry.options import RegistryOptions
from ocistore.registry.session import RegistrySession, session_for

if TYPE_CHECKING:
    from ocistore.store import Store


@dataclass
class TransferReport:
    """What a push or copy did."""

    reference: str
    digest: str
    manifests: list[str] = field(default_factory=list)
    blobs_uploaded: int = 0
    blobs_mounted: int = 0
    blobs_skipped: int = 0
    bytes_uploaded: int = 0


def _push_client(session: RegistrySession) -> RegistryClient:
    for host in session.hosts:
        if host.can("push"):
            return session.client(host)
    raise RegistryError(f"no host of {session.registry} is allowed to push")


def _parse(ref: Reference | str) -> Reference:
    reference = ref if isinstance(ref, Reference) else Reference.parse(ref)
    if reference.tag is None and reference.digest is None:
        reference = reference.with_default_tag()
    return reference


class _Uploader:
    """Puts blobs into one target repository: skip, mount or upload."""

    def __init__(
        self,
        client: RegistryClient,
        repository: str,
        report: TransferReport,
        *,
        mount_from: str | None,
        chunk_size: int | None,
    ) -> None:
        self.client = client
        self.repository = repository
        self.report = report
        self.mount_from = mount_from
        self.chunk_size = chunk_size
        self.done: set[str] = set()

    def ensure(self, digest: str, size: int, open_file: _Opener) -> None:
        if digest in self.done:
            return
        if self.client.blob_exists(self.repository, digest) is not None:
            self.report.blobs_skipped += 1
        elif self.mount_from is not None and self.client.mount_blob(
            self.repository, digest, self.mount_from
        ):
            self.report.blobs_mounted += 1
        else:
            with open_file() as source:
                self.client.upload_blob(
                    self.repository, digest, source, size, chunk_size=self.chunk_size
                )
            self.report.blobs_uploaded += 1
            self.report.bytes_uploaded += size
        self.done.add(digest)


class _Opener:
    """Opens a blob file for upload (a callable, so a skipped blob is never opened)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path

    def __call__(self) -> BinaryIO:
        return open(self.path, "rb")


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
    target = _parse(ref)
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
        client = _push_client(session)
        report = TransferReport(str(target), record.digest)
        uploader = _Uploader(
            client, target.repository, report, mount_from=mount_from, chunk_size=chunk_size
        )

        def push_manifest(digest: str, reference: str) -> None:
            data = store.read_blob(digest, MAX_MANIFEST_SIZE)
            document = parse_manifest_document(data)
            if isinstance(document, Manifest):
                for blob in (document.config, *document.layers):
                    uploader.ensure(blob.digest, blob.size, _Opener(store.blob_path(blob.digest)))
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
    source = _parse(src)
    target = _parse(dst)
    same_registry = source.registry == target.registry
    with (
        session_for(source, options) as src_session,
        session_for(target, dst_options if dst_options is not None else options) as dst_session,
        tempfile.TemporaryDirectory(prefix="ocistore-copy-") as scratch,
    ):
        top = source.digest or src_session.resolve(source.identifier).digest
        assert top is not None
        client = _push_client(dst_session)
        report = TransferReport(str(target), top)
        uploader = _Uploader(
            client,
            target.repository,
            report,
            mount_from=source.repository if same_registry else None,
            chunk_size=chunk_size,
        )

        def fetch_to_file(digest: str, size: int) -> _Opener:
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
            return _Opener(path)

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
