"""Applying layer blobs to a root filesystem: the Rust layer engine.

Which media types it accepts, and their compression, is ``ocistore.mediatypes``.
"""

from __future__ import annotations

from ocistore._core import LayerWriter, PreparedLayer, UnpackLimits, UnpackStats, unpack_layer

__all__ = ["LayerWriter", "PreparedLayer", "UnpackLimits", "UnpackStats", "unpack_layer"]
