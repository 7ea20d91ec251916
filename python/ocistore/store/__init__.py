"""The content store: crash-safe content-addressed blobs, an SQLite catalogue, GC, fsck, layouts.

Like containerd's content store it never touches the network: ``ocistore.transfer`` fills it
from registries. "GC" here is blob GC (``Store.gc``, ``blobgc.py``).
"""

from __future__ import annotations

from ocistore.store.blobs import Ingest
from ocistore.store.leases import Lease
from ocistore.store.locks import LockTimeoutError
from ocistore.store.records import (
    BlobInfo,
    FsckProblem,
    FsckReport,
    GcReport,
    ImageRecord,
    ProblemKind,
    PullCredential,
    PullCredentialKind,
    PullRecord,
)
from ocistore.store.store import Store, default_root

__all__ = [
    "BlobInfo",
    "FsckProblem",
    "FsckReport",
    "GcReport",
    "ImageRecord",
    "Ingest",
    "Lease",
    "LockTimeoutError",
    "ProblemKind",
    "PullCredential",
    "PullCredentialKind",
    "PullRecord",
    "Store",
    "default_root",
]
