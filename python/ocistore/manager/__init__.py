"""kubelet's image manager: ``EnsureImageExists``, back-off, pull records and image GC."""

from __future__ import annotations

from ocistore.manager.backoff import IMAGE_BACKOFF_INITIAL, IMAGE_BACKOFF_MAX, Backoff
from ocistore.manager.events import ImageEvent
from ocistore.manager.imagegc import ImageGCManager, ImageGCPolicy, ImageGCReport
from ocistore.manager.manager import ContainerResult, ImageManager, ImageResult
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
    "PodImages",
    "PodSpecError",
    "PullRecords",
    "VerificationPolicy",
    "load_documents",
    "pod_images",
]
