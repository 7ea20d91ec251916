"""The content store: crash-safe content-addressed blobs, an SQLite catalogue, GC, fsck, layouts.

Like containerd's content store it never touches the network: ``ocistore.transfer`` fills it
from registries. "GC" here is blob GC (``Store.gc``, ``blobgc.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocistore._lazy import lazy_attributes

if TYPE_CHECKING:
    from ocistore.store.blobs import Ingest
    from ocistore.store.leases import Lease
    from ocistore.store.locks import LockTimeoutError
    from ocistore.store.pullcredentials import PullCredential, PullCredentialKind, PullRecord
    from ocistore.store.records import BlobInfo, ImageRecord
    from ocistore.store.reports import FsckProblem, FsckReport, GcReport, ProblemKind
    from ocistore.store.store import Store, default_root

# Each name loads its module on first use: a pull needs the store, not fsck's reports.
_LAZY: dict[str, str] = {
    "BlobInfo": "ocistore.store.records",
    "FsckProblem": "ocistore.store.reports",
    "FsckReport": "ocistore.store.reports",
    "GcReport": "ocistore.store.reports",
    "ImageRecord": "ocistore.store.records",
    "Ingest": "ocistore.store.blobs",
    "Lease": "ocistore.store.leases",
    "LockTimeoutError": "ocistore.store.locks",
    "ProblemKind": "ocistore.store.reports",
    "PullCredential": "ocistore.store.pullcredentials",
    "PullCredentialKind": "ocistore.store.pullcredentials",
    "PullRecord": "ocistore.store.pullcredentials",
    "Store": "ocistore.store.store",
    "default_root": "ocistore.store.store",
}

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

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
