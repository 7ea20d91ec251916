"""Type stubs for the native module ``ocistore._core`` (checked with mypy.stubtest)."""

from os import PathLike
from typing import final

from typing_extensions import Buffer

__version__: str

# --- digest -----------------------------------------------------------------------------

@final
class Digester:
    """Incremental SHA-256/SHA-512 hasher producing ``algorithm:hex`` strings."""

    def __new__(cls, algorithm: str = "sha256") -> Digester: ...
    def update(self, data: Buffer) -> None:
        """Feeds a bytes-like object; large buffers are hashed with the GIL released."""
    def digest(self) -> str:
        """The digest of everything fed so far, e.g. ``"sha256:e3b0…"``."""
    def hexdigest(self) -> str:
        """The bare lowercase hex of the digest."""
    def copy(self) -> Digester:
        """A new Digester with the same state."""
    @property
    def algorithm(self) -> str: ...

def digest_file(path: str | PathLike[str], algorithm: str = "sha256") -> str:
    """Hashes a file (GIL released) and returns ``algorithm:hex``."""

def verify_file(path: str | PathLike[str], expected: str) -> None:
    """Raises DigestMismatchError unless the file hashes to ``expected``."""

def validate_digest(text: str) -> None:
    """Raises InvalidDigestError unless ``text`` is a well-formed ``algorithm:hex`` digest."""

# --- unpack (layer engine) --------------------------------------------------------------

# --- credmatch (credentials) ------------------------------------------------------------
