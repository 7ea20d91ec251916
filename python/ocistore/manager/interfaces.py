"""What the image manager needs from its collaborators, as Protocols (the seams tests replace).

``ocistore.store.Store`` is an :class:`ImageStore`; ``ocistore.pull`` bound to a store is a
:class:`Puller`. Like kubelet's ``ImageService`` and ``imagePuller``, they keep the manager's
decisions apart from how images are stored and fetched.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ocistore.reference import Reference
    from ocistore.registry.options import RegistryOptions
    from ocistore.store.pullcredentials import PullCredential, PullRecord
    from ocistore.store.records import ImageRecord
    from ocistore.transfer.pull import PullEvent

__all__ = ["ImageStore", "Pulled", "Puller"]


class ImageStore(Protocol):
    """The images on this node and their pull records."""

    @property
    def root(self) -> Path:
        """The store's directory (the manager keeps its pull intents beneath it)."""
        ...

    def find_image(self, ref: Reference | str) -> ImageRecord | None:
        """The image a reference names, or None."""
        ...

    def touch(self, ref: Reference | str) -> None:
        """Marks an image as used now (image GC removes the least recently used first)."""
        ...

    def unpack(self, ref: Reference | str, dest: str | os.PathLike[str] | None = None) -> Path:
        """Writes an image's root filesystem."""
        ...

    def record_pull(
        self, image_ref: str, image_name: str, credentials: list[PullCredential]
    ) -> None:
        """Remembers that these credentials pulled ``image_ref`` (KEP-2535)."""
        ...

    def pull_record(self, image_ref: str) -> PullRecord | None:
        """What is remembered about pulls of ``image_ref``."""
        ...

    def prune_pull_records(self, until: datetime) -> list[str]:
        """Forgets pull intents older than ``until``."""
        ...


class Pulled(Protocol):
    """What a pull reports back."""

    @property
    def digest(self) -> str: ...
    @property
    def bytes_downloaded(self) -> int: ...


class Puller(Protocol):
    """Pulls one image into the manager's store."""

    def __call__(
        self,
        reference: str,
        *,
        options: RegistryOptions,
        platform: str | None,
        unpack: str | os.PathLike[str] | None,
        progress: Callable[[PullEvent], None] | None,
    ) -> Pulled: ...
