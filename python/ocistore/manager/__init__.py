"""kubelet's image manager: ``EnsureImageExists``, back-off, pull records and image GC.

"Image GC" here is kubelet's (remove whole images by disk usage and age); blob GC is
``Store.gc``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocistore._lazy import lazy_attributes

if TYPE_CHECKING:
    from ocistore.manager.backoff import IMAGE_BACKOFF_INITIAL, IMAGE_BACKOFF_MAX, Backoff
    from ocistore.manager.events import ImageEvent
    from ocistore.manager.imagegc import ImageGCManager, ImageGCPolicy, ImageGCReport
    from ocistore.manager.interfaces import ImageStore, Pulled, Puller
    from ocistore.manager.manager import ImageManager, ImageResult, store_puller
    from ocistore.manager.pods import (
        ContainerImage,
        ContainerResult,
        PodImages,
        PodSpecError,
        load_documents,
        pod_images,
    )
    from ocistore.manager.pullrecords import PullRecords, VerificationPolicy

# Each name loads its module on first use: ``ocistore pull`` needs the manager, not image GC.
_LAZY: dict[str, str] = {
    "Backoff": "ocistore.manager.backoff",
    "ContainerImage": "ocistore.manager.pods",
    "ContainerResult": "ocistore.manager.pods",
    "IMAGE_BACKOFF_INITIAL": "ocistore.manager.backoff",
    "IMAGE_BACKOFF_MAX": "ocistore.manager.backoff",
    "ImageEvent": "ocistore.manager.events",
    "ImageGCManager": "ocistore.manager.imagegc",
    "ImageGCPolicy": "ocistore.manager.imagegc",
    "ImageGCReport": "ocistore.manager.imagegc",
    "ImageManager": "ocistore.manager.manager",
    "ImageResult": "ocistore.manager.manager",
    "ImageStore": "ocistore.manager.interfaces",
    "PodImages": "ocistore.manager.pods",
    "PodSpecError": "ocistore.manager.pods",
    "PullRecords": "ocistore.manager.pullrecords",
    "Pulled": "ocistore.manager.interfaces",
    "Puller": "ocistore.manager.interfaces",
    "VerificationPolicy": "ocistore.manager.pullrecords",
    "load_documents": "ocistore.manager.pods",
    "pod_images": "ocistore.manager.pods",
    "store_puller": "ocistore.manager.manager",
}

__all__ = [
    "IMAGE_BACKOFF_INITIAL",
    "IMAGE_BACKOFF_MAX",
    "Backoff",
    "ContainerImage",
    "ContainerResult",
    "ImageEvent",
    "ImageGCManager",
    "ImageGCPolicy",
    "ImageGCReport",
    "ImageManager",
    "ImageResult",
    "ImageStore",
    "PodImages",
    "PodSpecError",
    "PullRecords",
    "Pulled",
    "Puller",
    "VerificationPolicy",
    "load_documents",
    "pod_images",
    "store_puller",
]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
