"""A blob body read in large pieces into one reused buffer, straight from the socket when it can be.

httpx (through httpcore and h11) reads a body 64 KiB at a time and copies each piece through
Python several times (into h11's buffer, out of it, through httpx's decoders): at loopback speed
that costs more than the hashing. For a large body over HTTP/1.1 with a ``Content-Length`` and
no content coding, :func:`read_body` takes only the first piece from httpx — which empties
h11's buffer, as h11 hands out everything it holds up to the declared length — and receives the
rest with ``recv_into`` from the connection's own socket (httpcore's ``network_stream``
extension), exactly ``Content-Length`` bytes and not one more. The connection is then closed
instead of pooled (h11 never saw the body end); a fresh one costs nothing next to such a body.
Anything else (a small body, chunked encoding, a content coding, TLS inside a proxy's TLS, a
transport without a socket) goes through httpx's iterator, gathered into the same buffer. A
light response (:mod:`ocistore.registry.lighthttp`, accepted only with a plain body) is
received from its socket the same way, whatever its size.

Every path fails the same way, so the caller's resume logic is one: a body cut short, reset or
timed out is :class:`BodyInterruptedError` (its cause the socket's or httpx's error), raised
after the bytes gathered before the failure are yielded.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeAlias

from ocistore.errors import MalformedResponseError, RegistryUnavailableError
from ocistore.registry.lighthttp import LightResponse, plain_length

if TYPE_CHECKING:
    import httpx

__all__ = [
    "BUFFER_SIZE",
    "DIRECT_MIN",
    "DIRECT_MIN_TLS",
    "BodyInterruptedError",
    "Buffers",
    "Response",
    "body_socket",
    "direct_socket",
    "read_body",
]

# Bytes are handed on in pieces of up to this size: the ingest hashes on one core while it
# writes on the other, with few calls per byte.
BUFFER_SIZE = 1024 * 1024
# Bodies from this size on are received from the socket directly. Their connection is closed
# afterwards rather than reused, so small blobs keep their keep-alive connection; over TLS a new
# connection costs a handshake, worth it only for larger bodies. (Measured in one process, 6 MB
# layers: a quarter less CPU per pull from 1 MiB on, against every body through httpx.)
DIRECT_MIN = 1024 * 1024
DIRECT_MIN_TLS = 8 * 1024 * 1024
# httpcore's read size: a shorter piece means the socket had no more for now (the link is
# slower than we read), and what is gathered is handed on at once, so a stalled link keeps no
# bytes only in memory. (Reading the socket directly, a read that leaves it empty does the same.)
FULL_READ = 64 * 1024


# Where each piece is received: called for a buffer whenever the last one was handed on (a
# bytearray given instead is reused for every piece).
Buffers = Callable[[], memoryview]
# A streamed answer: httpx's, or one the light path received (with a plain body).
Response: TypeAlias = "httpx.Response | LightResponse"


class BodyInterruptedError(RegistryUnavailableError):
    """A body broke off mid-way (cut short, reset, read time-out): what arrived before it was
    handed on, and a download may resume from there."""


def read_body(
    response: Response,
    buffers: bytearray | Buffers,
    *,
    direct_min: int | None = None,
) -> Iterator[memoryview]:
    """Yields the body of a streamed ``response`` as views of the ``buffers``: a full buffer, or
    what arrived before the link paused. A view stays valid until its buffer is handed out
    again (a single reused ``bytearray``: until the next view is asked for).

    ``direct_min`` is the smallest body received from the socket directly (default
    :data:`DIRECT_MIN`, or :data:`DIRECT_MIN_TLS` over TLS)."""
    next_buffer = buffers if callable(buffers) else _reusing(memoryview(buffers))
    if isinstance(response, LightResponse):
        length = response.plain_length()
        assert length is not None, "the light path accepts only a plain body"
        first, remaining = response.early, length - len(response.early)
        yield from _receive_after(first, response.socket, next_buffer, remaining, response.timeout)
        return
    sock = direct_socket(response, direct_min)
    if sock is None:
        yield from _gather(response.iter_bytes(), next_buffer)
        return
    import httpx  # loaded with the response already

    pieces = response.iter_raw()
    try:
        first = next(pieces, b"")  # h11's buffer (the bytes that came with the head) is now empty
    except httpx.TransportError as error:
        raise BodyInterruptedError(str(error)) from error
    remaining = int(response.headers["content-length"]) - len(first)
    if remaining < 0:
        raise BodyInterruptedError("the body is longer than its Content-Length")
    try:
        yield from _receive_after(first, sock, next_buffer, remaining, _read_timeout(response))
    finally:
        response.close()  # h11 did not see the body end: the connection is not reusable


def body_socket(response: Response) -> socket.socket | None:
    """The socket :func:`read_body` receives this body from directly (None: through httpx)."""
    if isinstance(response, LightResponse):
        return response.socket
    return direct_socket(response)


def _reusing(view: memoryview) -> Buffers:
    return lambda: view


def _gather(pieces: Iterator[bytes], buffers: Buffers) -> Iterator[memoryview]:
    import httpx

    view = buffers()
    filled = 0
    try:
        for piece in pieces:
            size = len(piece)
            if filled + size > len(view):
                if filled:
                    yield view[:filled]
                    view, filled = buffers(), 0
                if size >= len(view):
                    yield memoryview(piece)
                    continue
            view[filled : filled + size] = piece
            filled += size
            if filled == len(view) or size < FULL_READ:
                yield view[:filled]
                view, filled = buffers(), 0
    except httpx.TransportError as error:
        if filled:
            yield view[:filled]  # a prefix to resume from
        raise BodyInterruptedError(str(error)) from error
    except httpx.DecodingError as error:  # a content coding the body does not follow
        raise MalformedResponseError(f"undecodable body: {error}") from error
    if filled:
        yield view[:filled]


def _receive_after(
    first: bytes,
    sock: socket.socket,
    buffers: Buffers,
    remaining: int,
    timeout: float | None,
) -> Iterator[memoryview]:
    """The ``first`` bytes (those that came with the head), then ``remaining`` more from
    ``sock``."""
    view = buffers()
    filled = len(first)
    if filled < len(view):
        view[:filled] = first
    else:
        yield memoryview(first)
        filled = 0
    yield from _receive(sock, buffers, view, filled, remaining, timeout)


def _receive(
    sock: socket.socket,
    buffers: Buffers,
    view: memoryview | None,
    filled: int,
    remaining: int,
    timeout: float | None,
) -> Iterator[memoryview]:
    sock.settimeout(timeout)
    readable = select.poll()
    readable.register(sock, select.POLLIN)
    while remaining:
        if view is None:  # the last buffer was handed on: the next one, asked for only now
            view, filled = buffers(), 0
        want = min(len(view) - filled, remaining)
        try:
            count = sock.recv_into(view[filled:], want)
        except OSError as error:
            if filled:
                yield view[:filled]  # a prefix to resume from
            raise BodyInterruptedError(str(error) or type(error).__name__) from error
        if not count:
            if filled:
                yield view[:filled]
            raise BodyInterruptedError(
                f"peer closed connection with {remaining} bytes of the body not sent"
            )
        filled += count
        remaining -= count
        if filled == len(view) or not remaining or (count < want and not readable.poll(0)):
            yield view[:filled]
            view = None
    if view is not None and filled:
        yield view[:filled]  # all came with the head


def direct_socket(response: httpx.Response, direct_min: int | None = None) -> socket.socket | None:
    """The connection's socket, if :func:`read_body` receives this body from it directly."""
    import ssl  # loaded by httpx already

    length = plain_length(response.headers)  # httpx's headers look names up in any case
    if (
        length is None
        or response.extensions.get("http_version") != b"HTTP/1.1"
        or response.is_stream_consumed
    ):
        return None
    stream = response.extensions.get("network_stream")
    get_extra_info = getattr(stream, "get_extra_info", None)
    if get_extra_info is None:
        return None
    sock = get_extra_info("socket")
    if not isinstance(sock, socket.socket) or isinstance(
        get_extra_info("ssl_object"), ssl.SSLObject
    ):
        return None  # TLS inside a proxy's TLS: the socket carries the outer layer
    if direct_min is None:
        direct_min = DIRECT_MIN_TLS if isinstance(sock, ssl.SSLSocket) else DIRECT_MIN
    return sock if length >= direct_min else None


def _read_timeout(response: httpx.Response) -> float | None:
    timeouts = response.request.extensions.get("timeout", {})
    read = timeouts.get("read") if isinstance(timeouts, dict) else None
    return float(read) if read is not None else None
