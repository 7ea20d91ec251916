"""kubelet's image manager: ``EnsureImageExists``, back-off, pull records and image GC.

"Image GC" here is kubelet's (remove whole images by disk usage and age); blob GC is
``Store.gc``.
"""

from __future__ import annotations

from ocistore.manager.backoff import IMAGE_BACKOFF_INITIAL, IMAGE_BACKOFF_MAX, Backoff
from ocistore.manager.events import ImageEvent
from ocistore.manager.imagegc import ImageGCManager, ImageGCPolicy, ImageGCReport
from ocistore.manager.interfaces import ImageStore, Pulled, Puller
from ocistore.manager.manager import ContainerResult, ImageManager, ImageResult, store_puller
from ocistore.manager.pods import (
    ContainerImage,
    PodImages,
    PodSpecError,
    load_documents,
    pod_images,
)
from ocistore.manager.pullrecords import PullRecords, VerificationPolicy

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
