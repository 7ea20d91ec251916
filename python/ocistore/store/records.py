"""The records the store hands out: images and blobs (pull credentials: ``pullcredentials.py``,
reports: ``reports.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from ocistore._lazy import lazy_attributes
from ocistore._valueclass import valueclass

if TYPE_CHECKING:
    from ocistore.store.pullcredentials import PullCredential, PullCredentialKind, PullRecord

__all__ = [
    "BlobInfo",
    "ImageRecord",
    "PullCredential",
    "PullCredentialKind",
    "PullRecord",
]


@valueclass
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


@valueclass
class BlobInfo:
    """Index metadata of one committed blob."""

    digest: str
    size: int
    media_type: str | None
    created: datetime
    pinned: bool
    referenced_by: tuple[str, ...]
    """Digests of the manifests/indexes that reference this blob."""


# The KEP-2535 records moved to their own module, which a pull without pull secrets never
# imports; these names still resolve here.
__getattr__, __dir__ = lazy_attributes(
    __name__,
    dict.fromkeys(
        ("PullCredential", "PullCredentialKind", "PullRecord"), "ocistore.store.pullcredentials"
    ),
    __all__,
)
