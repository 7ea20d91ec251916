"""Type stubs for the native module ``ocistore._core`` (checked with mypy.stubtest)."""

from collections.abc import Sequence
from os import PathLike
from types import TracebackType
from typing import Literal, Protocol, final

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

class _BinaryReader(Protocol):
    def read(self, size: int = ..., /) -> Buffer: ...

@final
class UnpackLimits:
    """Upper bounds for one layer; ``None`` means unlimited."""

    def __new__(
        cls,
        *,
        max_bytes: int | None = 68719476736,
        max_entries: int | None = 4000000,
        max_file_size: int | None = 34359738368,
        max_path_length: int | None = 4096,
    ) -> UnpackLimits: ...
    @property
    def max_bytes(self) -> int | None: ...
    @property
    def max_entries(self) -> int | None: ...
    @property
    def max_file_size(self) -> int | None: ...
    @property
    def max_path_length(self) -> int | None: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...

@final
class UnpackStats:
    """What unpacking a layer did."""

    @property
    def entries(self) -> int: ...
    @property
    def bytes_written(self) -> int: ...
    @property
    def whiteouts(self) -> int: ...
    @property
    def skipped(self) -> list[tuple[str, str]]: ...
    @property
    def digest(self) -> str | None: ...
    @property
    def diff_id(self) -> str: ...
    @property
    def compressed_size(self) -> int: ...
    @property
    def uncompressed_size(self) -> int: ...

def unpack_layer(
    source: str | PathLike[str] | _BinaryReader,
    dest: str | PathLike[str],
    media_type: str,
    *,
    digest: str | None = None,
    diff_id: str | None = None,
    limits: UnpackLimits | None = None,
    resolver: Literal["auto", "walk"] = "auto",
) -> UnpackStats:
    """Unpacks one layer blob (a path or a binary file object) into ``dest``, verifying digests."""

def default_unpack_writers() -> int:
    """The file-writing worker threads a layer gets by default here
    (``$OCISTORE_UNPACK_WRITERS``, else by CPU count)."""

@final
class LayerWriter:
    """Streams a layer into ``dest`` while it downloads: ``write`` chunks, then ``close``."""

    def __new__(
        cls,
        dest: str | PathLike[str],
        media_type: str,
        digest: str | None = None,
        diff_id: str | None = None,
        blob_path: str | PathLike[str] | None = None,
        limits: UnpackLimits | None = None,
        *,
        resolver: Literal["auto", "walk"] = "auto",
    ) -> LayerWriter: ...
    def write(self, data: Buffer) -> None:
        """Queues a bytes-like chunk of the compressed blob (blocks while the queue is full)."""
    def close(self) -> UnpackStats:
        """Ends the blob, waits until the layer is applied and verified, returns the statistics."""
    def abort(self) -> None:
        """Stops unpacking; entries already written to ``dest`` stay."""
    @property
    def closed(self) -> bool:
        """Whether the writer was closed or aborted (or a write failed)."""
    def __enter__(self) -> LayerWriter: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        _exc: BaseException | None = None,
        _tb: TracebackType | None = None,
    ) -> bool:
        """Closes on success (errors propagate), aborts when the block raised."""

@final
class PreparedLayer:
    """A layer blob being decompressed (and its diff_id hashed) ahead of ``apply``, with up to
    ``ahead_bytes`` of tar held in memory: the next layer decompresses on a second core while
    the current one is applied."""

    def __new__(
        cls,
        source: str | PathLike[str],
        media_type: str,
        *,
        digest: str | None = None,
        diff_id: str | None = None,
        limits: UnpackLimits | None = None,
        ahead_bytes: int = 16777216,
        resolver: Literal["auto", "walk"] = "auto",
    ) -> PreparedLayer: ...
    def apply(self, dest: str | PathLike[str]) -> UnpackStats:
        """Applies the layer into ``dest`` and verifies it (as ``unpack_layer``); only once."""
    def close(self) -> None:
        """Stops decompressing without applying anything (``apply`` then fails)."""
    @property
    def closed(self) -> bool:
        """Whether ``apply`` or ``close`` has run."""

# --- media types ---------------------------------------------------------------------------

def layer_media_types() -> list[tuple[str, str]]:
    """Every layer media type the engine applies, with its compression name."""

def detect_compression(head: bytes) -> str:
    """The compression the first bytes of a blob show (``none``, ``gzip`` or ``zstd``)."""

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

# --- HTTP response heads (registry) -----------------------------------------------------

def parse_response_head(data: bytes) -> tuple[int, int, list[tuple[str, str]], int] | None:
    """``(minor_version, status, headers, head_length)`` of the HTTP/1.x response head at the
    start of ``data``, or None while it is incomplete; MalformedResponseError if it is not."""
