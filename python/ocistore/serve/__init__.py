"""``ocistore serve``: the node's store as a read-only registry mirror for containerd and peers.

Needs the ``serve`` extra (``pip install ocistore[serve]``, which brings aiohttp).
"""

from __future__ import annotations

from ocistore.serve.content import BlobAnswer, ManifestAnswer, ServedContent, ServePolicy
from ocistore.serve.names import parse_mirror_path, repository_name

__all__ = [
    "BlobAnswer",
    "ManifestAnswer",
    "ServePolicy",
    "ServedContent",
    "parse_mirror_path",
    "repository_name",
]
