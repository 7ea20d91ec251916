"""The records the store hands out: images, blobs, pull credentials, GC and fsck reports."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "BlobInfo",
    "FsckProblem",
    "FsckReport",
    "GcReport",
    "ImageRecord",
    "ProblemKind",
    "PullCredential",
    "PullCredentialKind",
    "PullRecord",
]


@dataclass(frozen=True)
class ImageRecord:
    """An image the store knows: a normalised reference resolved to a manifest digest."""

    reference: str
    """Normalised reference (``docker.io/library/nginx:1.25``, or ``name@sha256:…``)."""
    repository: str
    """Full repository name (``docker.io/library/nginx``); empty for a nameless import."""
    tag: str | None
    digest: str
    """Digest of the image manifest chosen for this node's platform."""
    index_digest: str | None
    """Digest of the index (manifest list) the reference resolved to, if any."""
    platform: str | None
    media_type: str
    """Media type of the manifest."""
    size: int
    """Bytes of manifest + config + layers (what kubelet reports as the image size)."""
    created: datetime
    last_used: datetime
    pinned: bool
    source: str
    """How it got here: ``pull``, ``import``, ``build``, ..."""
    config_digest: str | None = None
    chain_id: str | None = None
    """ChainID of the top layer: the key of the unpacked root filesystem."""


@dataclass(frozen=True)
class BlobInfo:
    """Index metadata of one committed blob."""

    digest: str
    size: int
    media_type: str | None
    created: datetime
    pinned: bool
    referenced_by: tuple[str, ...]
    """Digests of the manifests/indexes that reference this blob."""


class PullCredentialKind(enum.StrEnum):
    """Which kind of credential pulled an image (KEP-2535)."""

    SECRET = "secret"
    SERVICE_ACCOUNT = "service-account"
    NODE = "node"
    """No credentials, or node-wide ones: any pod on the node may use the image."""
    PRELOADED = "preloaded"
    """Not pulled by the kubelet (pre-loaded onto the node)."""


@dataclass(frozen=True)
class PullCredential:
    """One credential that pulled an image: a secret by hash (never its value), an SA, or none."""

    kind: PullCredentialKind
    namespace: str = ""
    name: str = ""
    uid: str = ""
    credential_hash: str = ""
    """Hash of the auth config (kubelet's ``AuthConfigHash``): never the secret itself."""

    @classmethod
    def secret(cls, *, namespace: str, name: str, uid: str, credential_hash: str) -> PullCredential:
        """A Kubernetes pull secret identified by its coordinates and credential hash."""
        return cls(PullCredentialKind.SECRET, namespace, name, uid, credential_hash)

    @classmethod
    def service_account(cls, *, namespace: str, name: str, uid: str) -> PullCredential:
        """A service account whose token pulled the image."""
        return cls(PullCredentialKind.SERVICE_ACCOUNT, namespace, name, uid)

    @classmethod
    def node(cls) -> PullCredential:
        """No credentials, or node-wide ones (``nodePodsAccessible``)."""
        return cls(PullCredentialKind.NODE)

    @classmethod
    def preloaded(cls) -> PullCredential:
        """The image was not pulled by the kubelet."""
        return cls(PullCredentialKind.PRELOADED)


@dataclass(frozen=True)
class PullRecord:
    """KEP-2535 "pulled record": which credentials pulled an image, per image name."""

    image_ref: str
    """The image the runtime reports (its manifest digest here)."""
    last_updated: datetime
    credentials: dict[str, tuple[PullCredential, ...]]
    """Image name without tag or digest (as the pod wrote it) -> credentials that pulled it."""

    def node_pods_accessible(self, image_name: str) -> bool:
        """Whether any pod may use the image under this name without presenting credentials."""
        return any(c.kind is PullCredentialKind.NODE for c in self.credentials.get(image_name, ()))


class ProblemKind(enum.StrEnum):
    """What fsck can find wrong with a store."""

    CORRUPT_BLOB = "corrupt-blob"
    """A blob's bytes do not hash to its name."""
    STRAY_FILE = "stray-file"
    """A file under ``blobs/`` that is not a well-named blob."""
    UNINDEXED_BLOB = "unindexed-blob"
    """A verified blob the index does not know (crash between rename and index update)."""
    MISSING_BLOB = "missing-blob"
    """The index lists a blob that is not on disk."""
    SIZE_MISMATCH = "size-mismatch"
    """The index records a different size than the blob has."""
    WRITABLE_BLOB = "writable-blob"
    """A committed blob has write permission bits."""
    DANGLING_REFERENCE = "dangling-reference"
    """An image or manifest points at content that is missing."""
    LEFTOVER_INGEST = "leftover-ingest"
    """A partial download no process is writing that cannot be resumed: older than the
    ingest age limit, or not named by a digest."""
    LEFTOVER_UNPACK = "leftover-unpack"
    """A half-built root filesystem no process is writing."""
    STALE_LEASE = "stale-lease"
    """A lease whose owning process is gone."""
    STALE_LAYOUT_INDEX = "stale-layout-index"
    """The root ``index.json`` does not list exactly the recorded images."""
    INDEX_CORRUPT = "index-corrupt"
    """SQLite's integrity check failed."""


@dataclass(frozen=True)
class FsckProblem:
    """One thing fsck found, and whether ``repair=True`` fixed it."""

    kind: ProblemKind
    subject: str
    detail: str
    repaired: bool = False


@dataclass
class FsckReport:
    """The result of :meth:`Store.fsck`."""

    problems: list[FsckProblem] = field(default_factory=list)
    blobs_checked: int = 0
    bytes_checked: int = 0
    unreferenced_blobs: int = 0
    """Blobs no image references (not a problem: ``gc`` reclaims them)."""
    resumable_ingests: list[str] = field(default_factory=list)
    """Partial downloads a later pull continues (not a problem: an interrupted pull leaves
    them on purpose; ``gc`` removes them once older than its ``ingest_max_age``)."""

    @property
    def ok(self) -> bool:
        """True when nothing is wrong (or every problem found was repaired)."""
        return all(p.repaired for p in self.problems)

    @property
    def unrepaired(self) -> list[FsckProblem]:
        """Problems still present."""
        return [p for p in self.problems if not p.repaired]


@dataclass
class GcReport:
    """The result of :meth:`Store.gc` (with ``dry_run`` nothing was deleted)."""

    dry_run: bool
    removed_blobs: list[str] = field(default_factory=list)
    removed_unpacked: list[str] = field(default_factory=list)
    removed_ingests: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    kept_locked: list[str] = field(default_factory=list)
    """Unreferenced blobs kept because an ingest in progress holds their lock."""
