"""The requests of a cold pull from a plain-HTTP registry, over raw sockets instead of httpx.

A fresh process that pulls from a plain-HTTP host (a loopback registry, a node-local mirror, an
in-cluster registry) sends a handful of requests: the HEAD that resolves the tag, the manifest
GETs, the config and layer GETs. ``ocistore pull --policy Always`` of a present image sends
only the HEAD. Importing httpx for them (and httpcore, h11, ssl, email, http.client and
urllib.request with it) costs more than the requests of a small image. So while a client has
not built its httpx client, each of these requests goes over ``socket.create_connection``
instead: the headers the full path sends, ``Connection: close``, one connection per request,
the response head read up to :data:`MAX_HEAD` bytes and parsed in Rust by ``httparse``
(:func:`ocistore._core.parse_response_head`). A body is then received from the socket by
:func:`ocistore.registry.bodies.read_body`, exactly ``Content-Length`` bytes.

It decides nothing on its own: :func:`request` returns the status, the headers and the open
socket, or raises for any failure (connection refused, time-out, garbage, an oversized head,
HTTP/1.0), and the caller accepts only the happy path (see :meth:`LightResponse.plain_length`).
Everything else is asked again the full way, which retries, authenticates, follows redirects
and reports errors exactly as it always did.
"""

from __future__ import annotations

import functools
import os
import socket
import time
from collections.abc import Mapping
from urllib.parse import SplitResult, urlsplit

from ocistore import _core
from ocistore._lazy import pattern
from ocistore._log import get_logger
from ocistore.errors import MalformedResponseError
from ocistore.registry.auth import HTTP_TOKEN
from ocistore.registry.transport import redact_url

__all__ = ["MAX_HEAD", "LightResponse", "plain_length", "request", "usable"]

log = get_logger("ocistore.registry")

# A registry's response head is well under 1 KiB; a longer one is not worth waiting for.
MAX_HEAD = 64 * 1024
_HTTP_PROXIES = frozenset({"http_proxy", "all_proxy"})
# The headers the light request writes itself.
_OWN_HEADERS = frozenset({"host", "connection", "content-length", "transfer-encoding"})
# A request target sent as is: what the client builds from a repository, a tag or digest and a
# mirror's ``ns`` query. Anything else (which httpx would percent-encode) goes the full way.
_PLAIN_TARGET = r"(?:[A-Za-z0-9\-._~/:@?=&+]|%[0-9A-Fa-f]{2})*"


def usable(url: str, headers: Mapping[str, str], timeout: object) -> bool:
    """Whether ``url`` may be fetched the light way: plain HTTP, no proxy configured, no
    credentials in the URL, a plain request target, printable headers, a timeout in seconds."""
    if not url.startswith("http://") or not isinstance(timeout, int | float):
        return False
    if not all(_is_token(name) and _printable(value) for name, value in headers.items()):
        return False  # httpx refuses such a header: let it say so
    if any(name.lower() in _OWN_HEADERS for name in headers):
        return False  # e.g. a hosts.toml Host header: httpx decides how it goes with its own
    # httpx sends http:// requests through the proxy HTTP_PROXY or ALL_PROXY (any case) names,
    # unless NO_PROXY exempts the host: with either set at all, the full path decides.
    if any(value and name.lower() in _HTTP_PROXIES for name, value in os.environ.items()):
        return False
    parts = urlsplit(url)
    return (
        parts.hostname is not None
        and parts.username is None
        and parts.hostname.isascii()
        and pattern(_PLAIN_TARGET).fullmatch(_target(parts)) is not None
    )


def plain_length(headers: Mapping[str, str]) -> int | None:
    """The length of a body that comes as is: a ``Content-Length`` of ASCII digits, no
    ``Transfer-Encoding``, no content coding; else None. (Header names in lower case.)"""
    length = headers.get("content-length", "")
    if (
        not (length.isascii() and length.isdigit())  # "²" is a digit to isdigit, not to int
        or "transfer-encoding" in headers
        or headers.get("content-encoding", "identity").strip().lower() != "identity"
    ):
        return None
    return int(length)


class LightResponse:
    """A response head received over a raw socket; its body (if any) is still to be read from
    :attr:`socket`, after the :attr:`early` bytes that came with the head."""

    def __init__(
        self,
        sock: socket.socket,
        status: int,
        headers: dict[str, str],
        early: bytes,
        timeout: float,
    ) -> None:
        self.socket = sock
        self.status_code = status
        #: Names in lower case, repeated ones joined by ``", "`` as httpx does.
        self.headers = headers
        self.early = early
        self.timeout = timeout

    def plain_length(self) -> int | None:
        """The body's length if it comes as is (:func:`plain_length`) and no more than that came
        with the head (else None: the full path reads such a body)."""
        length = plain_length(self.headers)
        return None if length is None or len(self.early) > length else length

    def close(self) -> None:
        """Closes the connection (it is never reused: the request said ``Connection: close``)."""
        self.socket.close()


def request(method: str, url: str, headers: Mapping[str, str], timeout: float) -> LightResponse:
    """Sends ``method url`` with ``headers`` (and httpx's default ``Accept`` and
    ``Accept-Encoding`` where they are not given) on a new connection; the response head.

    Raises :class:`OSError` (refused, reset, timed out, closed early, head over
    :data:`MAX_HEAD`) or :class:`~ocistore.errors.MalformedResponseError`; the socket is then
    closed.
    """
    parts = urlsplit(url)
    hostname = parts.hostname or ""
    port = parts.port or 80
    authority = f"[{hostname}]" if ":" in hostname else hostname
    fields = {"accept": "*/*", "accept-encoding": _httpx_accept_encoding()}
    fields |= {name.lower(): value for name, value in headers.items()}
    lines = [
        f"{method} {_target(parts)} HTTP/1.1",
        f"Host: {authority}" if port == 80 else f"Host: {authority}:{port}",
        *(f"{name}: {value}" for name, value in fields.items()),
        "Connection: close",
    ]
    message = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    deadline = time.monotonic() + timeout
    log.debug("%s %s", method, redact_url(url))
    # ASCII (checked by usable) as bytes: a str host would load the idna codec to encode it.
    address = (hostname.encode("ascii"), port)  # getaddrinfo takes bytes; typeshed says str
    sock = socket.create_connection(address, timeout=timeout)  # type: ignore[arg-type]
    try:
        sock.sendall(message)
        received = b""
        while True:
            head = _core.parse_response_head(received)
            if head is not None:
                break
            if len(received) >= MAX_HEAD:
                raise OSError(f"response head over {MAX_HEAD} bytes")
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            piece = sock.recv(MAX_HEAD - len(received))
            if not piece:
                raise OSError("connection closed before the response head ended")
            received += piece
        minor_version, status, pairs, head_length = head
        if minor_version != 1:
            raise MalformedResponseError(f"HTTP/1.{minor_version} response")
    except BaseException:
        sock.close()
        raise
    joined: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    early = b"" if method == "HEAD" else received[head_length:]
    return LightResponse(sock, status, joined, early, timeout)


def _is_token(name: str) -> bool:
    return pattern(HTTP_TOKEN).fullmatch(name) is not None


def _printable(text: str) -> bool:
    return text.isascii() and text.isprintable()


def _target(parts: SplitResult) -> str:
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


@functools.cache
def _httpx_accept_encoding() -> str:
    """The ``Accept-Encoding`` httpx sends by default: its decoders for the packages present."""
    from importlib.util import find_spec

    codings = ["gzip", "deflate"]
    if find_spec("brotli") is not None or find_spec("brotlicffi") is not None:
        codings.append("br")
    if find_spec("zstandard") is not None:
        codings.append("zstd")
    return ", ".join(codings)
