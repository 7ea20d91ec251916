"""Putting blobs into a registry repository: skip what is there, mount, or upload.

Push (from the store) and copy (from another registry) share it.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from ocistore._valueclass import field, valueclass
from ocistore.errors import RegistryError
from ocistore.registry.client import RegistryClient
from ocistore.registry.session import RegistrySession

__all__ = ["BlobOpener", "TransferReport", "Uploader", "push_client"]


@valueclass(frozen=False)
class TransferReport:
    """What a push or copy did."""

    reference: str
    digest: str
    manifests: list[str] = field(default_factory=list)
    blobs_uploaded: int = 0
    blobs_mounted: int = 0
    blobs_skipped: int = 0
    bytes_uploaded: int = 0


def push_client(session: RegistrySession) -> RegistryClient:
    for host in session.hosts:
        if host.can("push"):
            return session.client(host)
    raise RegistryError(f"no host of {session.registry} is allowed to push")


class Uploader:
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

    def ensure(self, digest: str, size: int, open_file: BlobOpener) -> None:
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


class BlobOpener:
    """Opens a blob file for upload (a callable, so a skipped blob is never opened)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path

    def __call__(self) -> BinaryIO:
        return open(self.path, "rb")
