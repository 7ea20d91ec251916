"""The :class:`Store` facade: blobs, image records, pull records, unpack, GC, fsck, layouts."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ocistore import mediatypes
from ocistore.digest import digest_bytes, validate_digest
from ocistore.errors import (
    BlobNotFoundError,
    ImageNotFoundError,
    ManifestError,
    StoreWriteError,
    store_writes,
)
from ocistore.layer import UnpackLimits
from ocistore.mediatypes import MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, MediaType
from ocistore.model import ImageConfig, Index, Manifest
from ocistore.reference import Reference
from ocistore.store import content
from ocistore.store.blobs import BlobStore, Ingest
from ocistore.store.catalog import Catalog
from ocistore.store.leases import Lease, LeaseSet
from ocistore.store.locks import FileLock
from ocistore.store.records import BlobInfo, ImageRecord

if TYPE_CHECKING:
    from ocistore.store.pullcredentials import PullCredential, PullRecord
    from ocistore.store.reports import FsckReport, GcReport

__all__ = ["Store", "default_root"]

ROOT_ENV = "OCISTORE_ROOT"


#: How long a partial download stays resumable before GC (and fsck) treat it as garbage.
INGEST_MAX_AGE = 24 * 3600.0


def default_root() -> Path:
    """``$OCISTORE_ROOT``, else the user data directory (``~/.local/share/ocistore``)."""
    configured = os.environ.get(ROOT_ENV)
    if configured:
        return Path(configured)
    import platformdirs  # only without --store or $OCISTORE_ROOT

    return platformdirs.user_data_path("ocistore")


def _is_digest(text: str) -> bool:
    try:
        validate_digest(text)
    except ValueError:
        return False
    return True


class Store:
    """A node's content store: crash-safe content-addressed blobs plus an SQLite index.

    Several processes may use one root at the same time. Blobs are written through
    :meth:`ingest` (verified before they become visible); images are named with
    :meth:`record_image` once their manifest, config and layers are committed.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        with store_writes(self.root):
            self.root.mkdir(parents=True, exist_ok=True)
            self._blobs = BlobStore(self.root)
            self.unpacked_dir = self.root / "unpacked"
            self.leases_dir = self.root / "leases"
            self.unpacked_dir.mkdir(exist_ok=True)
            self.leases_dir.mkdir(exist_ok=True)
            self._catalog = Catalog(self.root / "index.db")
            self._leases = LeaseSet(self._catalog, self.leases_dir)
        if not (self.root / "index.json").exists():
            # Derived data: a full disk must not keep fsck or gc from opening the store.
            with contextlib.suppress(StoreWriteError), store_writes(self.root):
                self._refresh_layout()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def close(self) -> None:
        """Closes this thread's index connection (the object stays usable)."""
        self._catalog.close()

    @property
    def blobs(self) -> BlobStore:
        """The blob directories (paths, partial files, locks)."""
        return self._blobs

    @property
    def catalog(self) -> Catalog:
        """The SQLite catalogue (image names, references between blobs, leases)."""
        return self._catalog

    # --- blobs --------------------------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        """Whether a verified blob with this digest is committed.

        Inside :meth:`lease` the blob is first added to the lease, so a True answer stays true
        (GC either ran before, and the blob is gone, or sees the lease and keeps it).
        """
        if self._leases.active():
            self._leases.protect(digest)
        return self._blobs.has(digest)

    def blob_path(self, digest: str) -> Path:
        """The path of a committed blob (it may not exist)."""
        return self._blobs.path(digest)

    def open_blob(self, digest: str) -> BinaryIO:
        """Opens a committed blob for reading (``BlobNotFoundError`` if absent)."""
        return self._blobs.open(digest)

    def read_blob(self, digest: str, max_size: int | None = None) -> bytes:
        """Reads a whole blob and re-verifies its digest (for manifests and configs)."""
        return self._blobs.read(digest, max_size)

    def blob_info(self, digest: str) -> BlobInfo:
        """Index metadata of a blob (media type, size, which manifests reference it)."""
        info = self._catalog.blob(digest)
        if info is None:
            raise BlobNotFoundError(f"blob {digest} is not in the store index")
        return info

    def put_blob(self, data: bytes, *, media_type: str | None = None) -> str:
        """Stores an in-memory blob; returns its sha256 digest."""
        digest = digest_bytes(data)
        with self.ingest(digest, len(data), media_type=media_type) as ingest:
            if not ingest.done:
                ingest.truncate()
                ingest.write(data)
                ingest.commit()
        return digest

    def ingest(
        self,
        digest: str,
        size: int | None,
        *,
        media_type: str | None = None,
        lock_timeout: float | None = None,
    ) -> Ingest:
        """A writer for one blob; use it as a context manager (see :class:`Ingest`)."""
        validate_digest(digest)
        return Ingest(
            self._blobs,
            digest,
            size,
            media_type=media_type,
            on_commit=self._committed,
            lock_timeout=lock_timeout,
        )

    def _committed(self, digest: str, size: int, media_type: str | None) -> None:
        # Runs under the digest lock, so GC cannot delete the blob before it is protected.
        self._catalog.add_blob(digest, size, media_type)
        self._leases.protect(digest)

    def lease(self) -> Lease:
        """Protects every blob committed or found through this object from GC until closed.

        Run a pull inside ``with store.lease():`` so that GC in another process cannot remove
        its layers between their download and :meth:`record_image`.
        """
        return self._leases.open()

    def pin_blob(self, digest: str, pinned: bool = True) -> None:
        """Makes a blob a GC root (or stops it being one)."""
        if not self._catalog.set_blob_pinned(digest, pinned):
            raise BlobNotFoundError(f"blob {digest} is not in the store index")

    # --- images -------------------------------------------------------------------------

    def record_image(
        self,
        reference: Reference | str,
        *,
        manifest_digest: str,
        index_digest: str | None = None,
        platform: str | None = None,
        credential_hash: str | None = None,
        source: str = "pull",
        pinned: bool | None = None,
    ) -> ImageRecord:
        """Names an image whose manifest (and index, config, layers) are already committed."""
        key, repository, tag = self._record_key(reference, manifest_digest)
        manifest_bytes = self._read_committed(manifest_digest, MAX_MANIFEST_SIZE)
        manifest = content.verified_manifest(manifest_bytes, manifest_digest)
        children = content.manifest_children(manifest)
        for child in children:
            if not self._blobs.has(child.digest) and not content.may_be_absent(child):
                raise BlobNotFoundError(
                    f"image {key}: {child.kind} {child.digest} is not in the store"
                )
        index_children: list[content.Child] = []
        if index_digest is not None:
            index_doc = content.verified_index(
                self._read_committed(index_digest, MAX_MANIFEST_SIZE), index_digest
            )
            index_children = [
                c for c in content.index_children(index_doc) if self.has_blob(c.digest)
            ]
            if manifest_digest not in {c.digest for c in content.index_children(index_doc)}:
                raise ManifestError(
                    f"index {index_digest} does not list manifest {manifest_digest}"
                )
            if platform is None:
                platform = content.platform_in_index(index_doc, manifest_digest)
        config: ImageConfig | None = None
        if mediatypes.is_config(manifest.config.media_type) and self.has_blob(
            manifest.config.digest
        ):
            config = content.verified_config(
                self._read_committed(manifest.config.digest, MAX_CONFIG_SIZE),
                manifest.config.digest,
            )
            manifest.check_config(config)
            if platform is None:
                platform = content.config_platform(config)
        chain = content.chain_id(list(config.diff_ids)) if config is not None else None
        size = len(manifest_bytes) + sum(c.size for c in children)
        now = datetime.now(UTC)
        with self._layout_lock():
            with self._catalog.write() as conn:
                # Under the index write lock GC cannot run, so what we checked stays true.
                for digest in [manifest_digest, *([index_digest] if index_digest else [])]:
                    if not self._blobs.has(digest):
                        raise BlobNotFoundError(f"blob {digest} vanished while recording {key}")
                # A blob renamed into place whose index row was never written (a crash or a
                # full disk between the two) is indexed again by the next image that uses it.
                tops = [(manifest_digest, manifest.media_type or MediaType.OCI_MANIFEST)]
                if index_digest is not None:
                    tops.append((index_digest, index_doc.media_type or MediaType.OCI_INDEX))
                everything = [*tops, *((c.digest, c.media_type) for c in children)]
                self._catalog.index_blobs(conn, self._present_sizes(everything))
                self._catalog.add_refs(
                    conn, manifest_digest, [(c.digest, c.kind) for c in children]
                )
                if index_digest is not None:
                    self._catalog.add_refs(
                        conn, index_digest, [(c.digest, c.kind) for c in index_children]
                    )
                previous = self._catalog.image(key, conn)
                record = ImageRecord(
                    reference=key,
                    repository=repository,
                    tag=tag,
                    digest=manifest_digest,
                    index_digest=index_digest,
                    platform=platform,
                    media_type=manifest.media_type or MediaType.OCI_MANIFEST,
                    size=size,
                    created=previous.created
                    if previous is not None and previous.digest == manifest_digest
                    else now,
                    last_used=now,
                    pinned=(previous.pinned if previous is not None else False)
                    if pinned is None
                    else pinned,
                    source=source,
                    config_digest=manifest.config.digest,
                    chain_id=chain,
                )
                if credential_hash is not None:
                    from ocistore.store.pullcredentials import PullCredential

                    # In the same transaction: no reader (``ocistore serve``) may see the image
                    # without the credential that makes it private.
                    self.record_pull(
                        manifest_digest,
                        repository,
                        [
                            PullCredential.secret(
                                namespace="", name="", uid="", credential_hash=credential_hash
                            )
                        ],
                    )
                self._catalog.put_image(conn, record)
            self._write_layout_files()
        return record

    def _present_sizes(
        self, blobs: Iterable[tuple[str, str | None]]
    ) -> list[tuple[str, int, str | None]]:
        """``(digest, size on disk, media type)`` of each committed blob of ``blobs``."""
        found: dict[str, tuple[str, int, str | None]] = {}
        for digest, media_type in blobs:
            try:
                found[digest] = (digest, self._blobs.path(digest).stat().st_size, media_type)
            except FileNotFoundError:
                continue
        return list(found.values())

    def _read_committed(self, digest: str, limit: int) -> bytes:
        try:
            return self._blobs.read(digest, max_size=limit)
        except BlobNotFoundError:
            raise BlobNotFoundError(f"blob {digest} is not in the store") from None

    @staticmethod
    def _record_key(
        reference: Reference | str, manifest_digest: str
    ) -> tuple[str, str, str | None]:
        """The normalised key, repository and tag an image is recorded under."""
        if isinstance(reference, str) and _is_digest(reference):
            return reference, "", None  # a nameless image, known by its digest only
        ref = reference if isinstance(reference, Reference) else Reference.parse(reference)
        if ref.tag is not None:
            return f"{ref.name}:{ref.tag}", ref.name, ref.tag
        if ref.digest is not None:
            return f"{ref.name}@{ref.digest}", ref.name, None
        ref = ref.with_default_tag()
        return f"{ref.name}:{ref.tag}", ref.name, ref.tag

    def find_image(self, ref: Reference | str) -> ImageRecord | None:
        """The record a reference (tag, digest or bare digest) names, or None."""
        if isinstance(ref, str) and _is_digest(ref):
            matches = self._catalog.images_by_digest(ref)
            return matches[0] if matches else None
        parsed = ref if isinstance(ref, Reference) else Reference.parse(ref)
        if parsed.tag is not None or parsed.digest is None:
            key, _, _ = self._record_key(parsed, "")
            record = self._catalog.image(key)
            if record is not None and (
                parsed.digest is None
                or parsed.digest
                in (
                    record.digest,
                    record.index_digest,
                )
            ):
                return record
            if parsed.digest is None:
                return None
        assert parsed.digest is not None
        for record in self._catalog.images_by_digest(parsed.digest):
            if record.repository == parsed.name:
                return record
        return None

    def image(self, ref: Reference | str) -> ImageRecord:
        """The record a reference names (``ImageNotFoundError`` if none)."""
        record = self.find_image(ref)
        if record is None:
            raise ImageNotFoundError(f"image {ref} is not in the store")
        return record

    def images(self) -> list[ImageRecord]:
        """Every image record, sorted by reference."""
        return self._catalog.images()

    def resolve(self, ref: Reference | str) -> str:
        """The manifest digest a tag or digest reference stands for."""
        return self.image(ref).digest

    def touch(self, ref: Reference | str, when: datetime | None = None) -> None:
        """Marks an image as used now (kubelet's last-used time for image GC)."""
        record = self.image(ref)
        stamp = (when or datetime.now(UTC)).timestamp()
        self._catalog.touch_image(record.reference, stamp)

    def pin(self, ref: Reference | str, pinned: bool = True) -> None:
        """Pins an image (kubelet's image GC must not evict it) or unpins it."""
        record = self.image(ref)
        self._catalog.set_image_pinned(record.reference, pinned)

    def remove(self, ref: Reference | str) -> None:
        """Forgets an image name; its blobs go at the next :meth:`gc` if nothing else uses them."""
        record = self.image(ref)
        with self._layout_lock():
            with self._catalog.write() as conn:
                self._catalog.remove_image(conn, record.reference)
            self._write_layout_files()

    # The root doubles as an OCI image layout (skopeo and umoci read it): index.json follows
    # the image records. Whoever changes the records holds this lock from before the index
    # transaction until index.json is rewritten, so a reader holding it sees the two agree;
    # a crash in between leaves index.json stale, which fsck repairs.
    def _layout_lock(self) -> FileLock:
        return FileLock(self._blobs.locks_dir / "layout-index.lock")

    def _write_layout_files(self) -> None:
        from ocistore.store.rootlayout import write_store_layout_files

        write_store_layout_files(self)

    def _refresh_layout(self) -> None:
        with self._layout_lock():
            self._write_layout_files()

    def manifest(self, ref_or_digest: Reference | str) -> Manifest:
        """The image manifest of a reference (or of a manifest digest)."""
        if isinstance(ref_or_digest, str) and _is_digest(ref_or_digest):
            digest = ref_or_digest
        else:
            digest = self.resolve(ref_or_digest)
        return content.verified_manifest(self._read_committed(digest, MAX_MANIFEST_SIZE), digest)

    def config(self, ref: Reference | str) -> ImageConfig:
        """The image configuration of a reference."""
        manifest = self.manifest(ref)
        digest = manifest.config.digest
        return content.verified_config(self._read_committed(digest, MAX_CONFIG_SIZE), digest)

    def index_document(self, digest: str) -> Index:
        """A stored image index (manifest list)."""
        return content.verified_index(self._read_committed(digest, MAX_MANIFEST_SIZE), digest)

    # --- pull records (KEP-2535) --------------------------------------------------------

    def record_pull(
        self,
        image_ref: str,
        image_name: str,
        credentials: Iterable[PullCredential] | PullCredential,
    ) -> None:
        """Merges the credentials that pulled ``image_ref`` under ``image_name`` (no tag/digest).

        A secret is stored by its hash only: a ``credential_hash`` that does not look like a
        hash is refused so that a secret cannot be recorded by mistake.
        """
        from ocistore.store.pullcredentials import PullCredential

        creds = [credentials] if isinstance(credentials, PullCredential) else list(credentials)
        for cred in creds:
            if cred.credential_hash and not content.looks_like_hash(cred.credential_hash):
                raise ValueError("credential_hash must be a hex hash, never the secret itself")
        self._catalog.add_pull_credentials(image_ref, image_name, creds)

    def pull_records(self, image_ref: str | None = None) -> list[PullRecord]:
        """KEP-2535 pulled records, all or for one image."""
        return self._catalog.pull_records(image_ref)

    def pull_record(self, image_ref: str) -> PullRecord | None:
        """The pulled record of one image, if any."""
        records = self._catalog.pull_records(image_ref)
        return records[0] if records else None

    def remove_pull_records(self, image_ref: str) -> None:
        """Deletes the pulled record of an image."""
        self._catalog.remove_pull_records(image_ref)

    def prune_pull_records(self, until: datetime) -> list[str]:
        """Drops pulled records of images no longer stored, last updated before ``until``."""
        keep = {r.digest for r in self.images()}
        return self._catalog.prune_pull_records(keep, until.timestamp())

    # --- unpack, GC, fsck, layouts ------------------------------------------------------

    def unpack(
        self,
        ref: Reference | str,
        dest: str | os.PathLike[str] | None = None,
        *,
        limits: UnpackLimits | None = None,
    ) -> Path:
        """The root filesystem of an image: its layers applied in order, diff_ids verified.

        Without ``dest`` the tree is cached under ``unpacked/<chain id>`` (shared by images with
        the same layers, removed by :meth:`gc` when no image uses it); with ``dest`` it is
        built there (the directory must not exist or be empty).
        """
        from ocistore.store.unpack import unpack_image

        dest_path = None if dest is None else Path(dest)
        return unpack_image(self, self.image(ref), dest_path, limits)

    def gc(self, *, dry_run: bool = False, ingest_max_age: float = INGEST_MAX_AGE) -> GcReport:
        """Deletes blobs and unpacked trees no image, pin or live lease references."""
        from ocistore.store.blobgc import collect_garbage

        return collect_garbage(self, dry_run=dry_run, ingest_max_age=ingest_max_age)

    def fsck(self, *, repair: bool = False, ingest_max_age: float = INGEST_MAX_AGE) -> FsckReport:
        """Re-hashes every blob and cross-checks the index (``repair`` fixes what it can).

        Partial downloads younger than ``ingest_max_age`` are resumable state, listed in
        ``resumable_ingests``; older ones are problems (as :meth:`gc` would delete them).
        """
        from ocistore.store.fsck import check_store

        return check_store(self, repair=repair, ingest_max_age=ingest_max_age)

    def export_layout(
        self,
        refs: Iterable[Reference | str] | Reference | str,
        path: str | os.PathLike[str],
        *,
        platforms: Iterable[str] | None = None,
        all_platforms: bool = False,
    ) -> None:
        """Writes images into an OCI image layout directory (created or extended).

        A multi-arch image keeps its index (and digest) with the manifests of ``platforms``
        (default: the platform the store holds), or of every platform with ``all_platforms``.
        """
        from ocistore.store.layout import export_layout

        if isinstance(refs, (str, Reference)):
            refs = [refs]
        export_layout(
            self,
            list(refs),
            Path(path),
            platforms=list(platforms) if platforms else None,
            all_platforms=all_platforms,
        )

    def export_archive(
        self,
        refs: Iterable[Reference | str] | Reference | str,
        stream: BinaryIO,
        *,
        platforms: Iterable[str] | None = None,
        all_platforms: bool = False,
    ) -> None:
        """Writes images as an OCI archive (a tar of a layout) to a binary stream.

        What ``ctr images import``, ``podman load`` and ``skopeo copy oci-archive:`` read; the
        platform rules are :meth:`export_layout`'s.
        """
        from ocistore.store.archive import export_archive

        if isinstance(refs, (str, Reference)):
            refs = [refs]
        export_archive(
            self,
            list(refs),
            stream,
            platforms=list(platforms) if platforms else None,
            all_platforms=all_platforms,
        )

    def import_layout(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        *,
        platform: str | None = None,
        all_platforms: bool = False,
    ) -> list[ImageRecord]:
        """Reads an OCI image layout (verifying every blob); returns the records it added.

        ``name`` (ctr's ``--base-name``) qualifies a ref.name that is only a tag. An index
        brings the manifest for ``platform`` (default: this host), or all with
        ``all_platforms``. On any error no image is added or changed.
        """
        from ocistore.store.layout import import_layout

        return import_layout(self, Path(path), name, platform=platform, all_platforms=all_platforms)

    def import_archive(
        self,
        source: str | os.PathLike[str] | BinaryIO,
        name: str | None = None,
        *,
        platform: str | None = None,
        all_platforms: bool = False,
    ) -> list[ImageRecord]:
        """Imports an OCI archive or a ``docker save`` tarball (a path or a binary stream).

        Legacy ``manifest.json`` archives are named from their ``RepoTags`` as containerd
        names them; the other rules are :meth:`import_layout`'s.
        """
        from ocistore.store.archive import import_archive

        return import_archive(self, source, name, platform=platform, all_platforms=all_platforms)
