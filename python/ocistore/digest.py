"""Content digests (``algorithm:hex``), computed in Rust with the CPU's SHA extensions."""

from __future__ import annotations

from ocistore._core import Digester, digest_file, validate_digest, verify_file

__all__ = ["Digester", "digest_bytes", "digest_file", "validate_digest", "verify_file"]


def digest_bytes(data: bytes | bytearray | memoryview, algorithm: str = "sha256") -> str:
    """The digest of an in-memory buffer."""
    digester = Digester(algorithm)
    digester.update(data)
    return digester.digest()
