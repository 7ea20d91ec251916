"""Type stubs for the native module ``ocistore._core`` (checked with mypy.stubtest)."""

from collections.abc import Sequence
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

@final
class CredentialMatcher:
    """Compiled keys answering "which entries match this image?" in kubelet's order."""

    def __new__(
        cls,
        patterns: Sequence[str],
        *,
        config_keys: bool = False,
        docker_hub_fallback: bool = False,
    ) -> CredentialMatcher: ...
    def lookup(self, image: str) -> list[int]:
        """Indices of the entries matching ``image``, in the order kubelet tries them."""
    def lookup_many(self, images: Sequence[str]) -> list[list[int]]:
        """``lookup`` for many images at once, with the GIL released."""
    def key(self, index: int) -> str | None:
        """The key entry ``index`` is matched under (normalized for config keys), or None."""
    def problem(self, index: int) -> str | None:
        """Why entry ``index`` can never match, or None."""
    def __len__(self) -> int: ...

def url_matches(pattern: str, image: str) -> bool:
    """Whether kubelet would use credentials keyed ``pattern`` for ``image`` (``URLsMatchStr``)."""

def url_match_problem(pattern: str) -> str | None:
    """Why kubelet can never match with ``pattern`` (Go URL parse error or malformed glob)."""

def normalize_config_key(location: str) -> str | None:
    """The key kubelet files a docker-config entry under, or None when kubelet ignores it."""

def is_default_registry_match(image: str) -> bool:
    """kubelet's ``isDefaultRegistryMatch``: whether an image name means Docker Hub."""
