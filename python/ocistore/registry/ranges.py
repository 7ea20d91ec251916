"""Parallel ``Range`` downloads of one large blob, reassembled in order (containerd 2.1's
multipart layer fetch).

A blob of at least two chunks is split into chunks of ``chunk_size`` bytes, each fetched with
a bounded ``Range: bytes=a-b`` request on its own pooled connection, at most ``max_per_layer``
at a time. Finished chunks are handed to the sink strictly in order, so the sink still sees
one sequential stream: the ingest hashes it as it writes (the digest covers the whole blob),
a streaming unpack still runs in the same pass (and checks the diff_id), and what is on disk
is always a verified-by-rehash prefix that a later pull resumes from. Memory is bounded by
``max_per_layer + 1`` chunks per blob (those in flight and the one being written). A registry
that answers a range with ``200`` (it ignores ``Range``) makes the caller fall back to one
stream; a ``206`` for other bytes than asked is a :class:`~ocistore.errors.RegistryError`;
wrong bytes fail the digest check at commit.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol, TypeAlias

from ocistore._valueclass import valueclass
from ocistore.errors import OciStoreError, RegistryError, RegistryUnavailableError
from ocistore.registry.errors import registry_error

if TYPE_CHECKING:
    from concurrent.futures import Future

    import httpx

__all__ = ["ParallelFetch", "RangeIgnoredError", "fetch_in_ranges"]

DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
# Off unless asked for, as in containerd: measured here, ranges cost ~40% more CPU on loopback
# and gained nothing on the emulated WAN (benches/peers.py --wan), where one stream fills the link.
DEFAULT_MAX_PER_LAYER = 1
# A stream slower than this (bytes/s) over its first chunk goes on in parallel ranges.
DEFAULT_SLOW_BELOW = 16_000_000


@valueclass
class ParallelFetch:
    """How one large blob is fetched in parallel ranges (containerd's
    ``concurrent_layer_fetch_buffer`` and ``max_concurrent_downloads_per_layer``).

    A blob with two chunks or more after its first one starts with that chunk alone (a bounded
    range). If it arrives slower than ``slow_below`` bytes per second (a long or lossy link, a
    server capping each connection), the rest comes in parallel ranges; otherwise as one more
    stream, which costs less CPU on a fast link (loopback, a LAN). No byte is fetched twice.
    ``slow_below=None`` uses ranges from the start; ``max_per_layer <= 1`` or
    ``chunk_size <= 0`` turns ranges off.
    """

    chunk_size: int = DEFAULT_CHUNK_SIZE
    max_per_layer: int = DEFAULT_MAX_PER_LAYER
    slow_below: float | None = DEFAULT_SLOW_BELOW

    def applies(self, remaining: int | None) -> bool:
        """Whether ``remaining`` bytes of a blob are worth fetching in parallel ranges."""
        if self.max_per_layer <= 1 or self.chunk_size <= 0 or remaining is None:
            return False
        return remaining >= 2 * self.chunk_size

    def from_start(self, remaining: int | None) -> bool:
        """Whether to use ranges right away (no single-stream probe first)."""
        return self.slow_below is None and self.applies(remaining)

    def probe_until(self, offset: int, size: int | None) -> int | None:
        """Where the first chunk, asked for alone, ends when its speed is to decide between one
        stream and ranges for the rest (None: no such decision)."""
        if self.slow_below is None or size is None:
            return None
        end = offset + self.chunk_size
        return end if self.applies(size - end) else None

    def too_slow(self, nbytes: int, seconds: float) -> bool:
        """Whether a stream that brought ``nbytes`` in ``seconds`` should switch to ranges."""
        return self.slow_below is not None and nbytes < self.slow_below * seconds


class RangeIgnoredError(RegistryError):
    """The registry answered a ranged GET with the whole blob: fetch it as one stream."""


class _Sink(Protocol):
    @property
    def offset(self) -> int: ...
    def write(self, data: bytes | memoryview) -> None: ...


OpenRange: TypeAlias = "Callable[[int, int], AbstractContextManager[httpx.Response]]"


class _Stopped(OciStoreError):
    """The download as a whole failed; this chunk stops."""


def _spans(start: int, size: int, chunk: int) -> Iterator[tuple[int, int]]:
    for begin in range(start, size, chunk):
        yield begin, min(begin + chunk, size)


def fetch_in_ranges(
    open_range: OpenRange,
    *,
    what: str,
    size: int,
    sink: _Sink,
    settings: ParallelFetch,
    attempts: int,
    backoff: Callable[[int], float],
    sleep: Callable[[float], None],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Fetch ``[sink.offset, size)`` in parallel ranges, writing them to ``sink`` in order.

    ``open_range(start, end)`` sends the GET for bytes ``start..end-1``. Returns the bytes
    received. Raises :class:`RangeIgnoredError` when a range comes back whole (200).
    """
    from concurrent.futures import ThreadPoolExecutor

    import httpx  # a blob download has built the client already

    stop = threading.Event()

    def fetch(span: tuple[int, int]) -> bytearray:
        failures = 0
        while True:
            try:
                return _read_range(open_range, span, size, what, stop)
            except httpx.TransportError as error:
                failures += 1
                if failures >= attempts:
                    raise RegistryUnavailableError(
                        f"{what}: bytes {span[0]}-{span[1] - 1} failed: {error}"
                    ) from error
                sleep(backoff(failures))

    received = 0
    spans = _spans(sink.offset, size, settings.chunk_size)
    pending: deque[Future[bytearray]] = deque()
    with ThreadPoolExecutor(settings.max_per_layer, thread_name_prefix="ocistore-range") as pool:

        def submit_next() -> None:
            span = next(spans, None)
            if span is not None:
                pending.append(pool.submit(fetch, span))

        try:
            for _ in range(settings.max_per_layer):
                submit_next()
            while pending:
                data = pending.popleft().result()
                submit_next()  # keep max_per_layer ranges in flight while this one is written
                sink.write(memoryview(data))
                received += len(data)
                if progress is not None:
                    progress(len(data))
        except BaseException:
            stop.set()
            for future in pending:
                future.cancel()
            raise
    return received


def content_range_matches(header: str, start: int, end: int, size: int) -> bool:
    """Whether a 206's ``Content-Range`` is exactly bytes ``start..end-1`` of a ``size``-byte
    blob (RFC 9110 14.4; the total may be ``*``)."""
    expected = f"bytes {start}-{end - 1}/"
    return header.startswith(expected) and header[len(expected) :] in ("*", str(size))


def _read_range(
    open_range: OpenRange, span: tuple[int, int], size: int, what: str, stop: threading.Event
) -> bytearray:
    import httpx

    start, end = span
    with open_range(start, end) as response:
        if response.status_code == 200:
            raise RangeIgnoredError(f"{what}: the registry ignored Range", status=200)
        if response.status_code != 206:
            raise registry_error(response, what, default_code="BLOB_UNKNOWN")
        content_range = response.headers.get("content-range", "")
        if not content_range_matches(content_range, start, end, size):
            raise RegistryError(
                f"{what}: asked for bytes {start}-{end - 1} of {size}, "
                f"got Content-Range {content_range!r}"
            )
        buffer = bytearray(end - start)
        view = memoryview(buffer)
        filled = 0
        for chunk in response.iter_raw():
            if stop.is_set():
                raise _Stopped("download stopped")
            if filled + len(chunk) > len(buffer):
                raise RegistryError(f"{what}: range {start}-{end - 1} sent more bytes than asked")
            view[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
        if filled != len(buffer):
            raise httpx.ReadError(f"range {start}-{end - 1} ended after {filled} bytes")
        return buffer
