"""What ``ocistore serve`` may hand out, and to whom: the store seen through a privacy policy.

Only complete, verified content is served: manifests are re-read and re-hashed from committed
blobs, blobs are committed files (visible only after ingest, fsync, verify and rename).

**No leaking private images.** A node that pulled an image with credentials must not give it
to anyone who can reach the port. By default an image is served only when it was *pulled* and
no pull of its manifest recorded a credential (the store records the credential hash of every
authenticated pull); imported or locally built images are not served either, since nothing says
who may see them. A blob is served only as part of a servable image of the repository asked
for. :class:`ServePolicy` widens this explicitly: every image, or the images of listed
registries.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ocistore.digest import validate_digest
from ocistore.errors import BlobNotFoundError, DigestMismatchError, ImageNotFoundError
from ocistore.mediatypes import MAX_MANIFEST_SIZE
from ocistore.model import parse_manifest_document
from ocistore.store import BlobInfo, ImageRecord, PullCredentialKind, PullRecord

__all__ = ["BlobAnswer", "ManifestAnswer", "ServePolicy", "ServedContent", "StoreReader"]

_CREDENTIAL_KINDS = frozenset({PullCredentialKind.SECRET, PullCredentialKind.SERVICE_ACCOUNT})


class LeaseLike(Protocol):
    """A GC lease on a set of blobs (``ocistore.store.Lease``)."""

    def add(self, digest: str) -> None: ...
    def close(self) -> None: ...


class StoreReader(Protocol):
    """The read-only part of :class:`ocistore.store.Store` the server needs."""

    def find_image(self, ref: str) -> ImageRecord | None: ...
    def pull_record(self, image_ref: str) -> PullRecord | None: ...
    def blob_info(self, digest: str) -> BlobInfo: ...
    def blob_path(self, digest: str) -> Path: ...
    def read_blob(self, digest: str, max_size: int | None = None) -> bytes: ...
    def lease(self) -> LeaseLike: ...


@dataclass(frozen=True)
class ServePolicy:
    """Which images are served: by default only those pulled without any credential."""

    serve_private: bool = False
    """Serve every image, whatever credential pulled it (and imported or built ones)."""
    private_registries: frozenset[str] = frozenset()
    """Registries whose images are served even when pulled with credentials."""
    default_registry: str = "docker.io"
    """The registry a request without ``ns`` is for."""

    def allows(self, record: ImageRecord, pull: PullRecord | None) -> bool:
        """Whether an image may be handed to anyone who can reach the server."""
        if self.serve_private:
            return True
        registry = record.repository.split("/", 1)[0]
        if registry in self.private_registries:
            return True
        if record.source != "pull":
            return False
        return pull is None or not any(
            cred.kind in _CREDENTIAL_KINDS or cred.credential_hash
            for creds in pull.credentials.values()
            for cred in creds
        )


@dataclass(frozen=True)
class ManifestAnswer:
    """A manifest or index to send: its stored bytes, digest and media type."""

    digest: str
    media_type: str
    data: bytes


@dataclass(frozen=True)
class BlobAnswer:
    """A committed blob to send, opened (``fd``) while a GC lease holds it."""

    digest: str
    size: int
    fd: int


class ServedContent:
    """Looks manifests and blobs up in the store, per repository, through a :class:`ServePolicy`.

    Every method blocks (SQLite, file I/O): call them from a worker thread.
    """

    def __init__(self, store: StoreReader, policy: ServePolicy) -> None:
        self.store = store
        self.policy = policy
        self._leases = _SharedLeases(store)

    def _servable(self, repository: str, reference: str) -> ImageRecord | None:
        """The image ``repository:tag`` or ``repository@digest`` names, if it may be served."""
        separator = "@" if reference.startswith(("sha256:", "sha512:")) else ":"
        record = self.store.find_image(f"{repository}{separator}{reference}")  # validates
        if record is None or record.repository != repository:
            return None
        return record if self.policy.allows(record, self.store.pull_record(record.digest)) else None

    def manifest(self, repository: str, reference: str) -> ManifestAnswer:
        """A servable manifest by tag or digest (``ImageNotFoundError`` otherwise)."""
        record = self._servable(repository, reference)
        if record is None:
            raise ImageNotFoundError(f"{repository} {reference} is not served")
        if reference.startswith(("sha256:", "sha512:")):
            digest = reference  # the platform manifest or the index the record holds
        else:
            digest = record.index_digest or record.digest  # what the tag resolved to upstream
        try:
            data = self.store.read_blob(digest, MAX_MANIFEST_SIZE)  # re-hashed on every read
        except BlobNotFoundError:
            raise ImageNotFoundError(f"manifest {digest} is no longer in the store") from None
        except DigestMismatchError:
            # Never serve it; a 404 sends the client on to its next host.
            raise ImageNotFoundError(f"manifest {digest} is corrupt in the store") from None
        return ManifestAnswer(digest, parse_manifest_document(data).media_type, data)

    @contextmanager
    def blob(self, repository: str, digest: str) -> Iterator[BlobAnswer]:
        """A servable blob, open and leased from GC until the block ends."""
        validate_digest(digest)
        try:
            parents = self.store.blob_info(digest).referenced_by  # manifests and indexes
        except BlobNotFoundError:
            parents = ()
        if not any(self._servable(repository, d) for d in (digest, *parents)):
            raise BlobNotFoundError(f"blob {digest} is not served for {repository}")
        with self._leases.hold(digest):
            fd = _open_regular_file(self.store.blob_path(digest), digest)
            try:
                yield BlobAnswer(digest, os.fstat(fd).st_size, fd)
            finally:
                os.close(fd)


def _open_regular_file(path: Path, digest: str) -> int:
    """Opens a committed blob: a regular file, never through a symlink planted in its place."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise BlobNotFoundError(f"blob {digest} is no longer in the store") from None
    except OSError as error:  # ELOOP: a symlink
        raise BlobNotFoundError(f"blob {digest} is not a regular file ({error.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise BlobNotFoundError(f"blob {digest} is not a regular file")
    return fd


@dataclass
class _SharedLeases:
    """One GC lease per blob being served, shared by its concurrent requests."""

    store: StoreReader
    _held: dict[str, tuple[LeaseLike, int]] = field(default_factory=dict)
    _mutex: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def hold(self, digest: str) -> Iterator[None]:
        with self._mutex:
            lease, users = self._held.get(digest, (None, 0))
            if lease is None:
                # Taken before the file is opened: GC either ran before (the open fails) or
                # sees the lease and keeps the blob.
                lease = self.store.lease()
                try:
                    lease.add(digest)
                except BaseException:
                    lease.close()
                    raise
            self._held[digest] = (lease, users + 1)
        try:
            yield
        finally:
            with self._mutex:
                lease, users = self._held[digest]
                if users == 1:
                    del self._held[digest]
                    lease.close()
                else:
                    self._held[digest] = (lease, users - 1)
