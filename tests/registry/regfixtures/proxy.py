"""A fault-injecting HTTP proxy in front of a real registry, on 127.0.0.1.

It forwards every request to the upstream registry and records what it saw. A test adds
:class:`Fault` rules: the first matching rule (while it has uses left) changes the exchange —
a canned answer, a truncated or corrupted body, a stall, a trickle, rewritten headers, a redirect.
Only behaviour a real registry or network can produce is injected here.
"""

from __future__ import annotations

import http.client
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host"}


@dataclass
class Seen:
    """One request the proxy received."""

    method: str
    path: str
    headers: dict[str, str]
    status: int | None = None


@dataclass
class Fault:
    """A rule: requests matching ``method``/``path`` (a regex searched in the path) get changed.

    ``times`` is how many requests it applies to (None: every one).
    """

    path: str = ""
    method: str | None = None
    header: tuple[str, str] | None = None  # (lower-case name, regex searched in its value)
    times: int | None = 1
    # a canned answer instead of forwarding
    status: int | None = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # changes to the forwarded answer
    set_headers: dict[str, str] = field(default_factory=dict)
    drop_headers: tuple[str, ...] = ()
    truncate_after: int | None = None  # send this many body bytes, then close the connection
    corrupt_at: int | None = None  # flip one byte at this body offset
    stall: float = 0.0  # pause this long after the headers (and after truncate_after bytes)
    trickle: tuple[int, float] | None = None  # (chunk size, pause between chunks)
    chunked: bool = False  # send the body with Transfer-Encoding: chunked, no Content-Length
    ignore_range: bool = False  # drop the client's Range header (a server that ignores it)
    range_shift: int = 0  # ask upstream for a Range starting this many bytes later (bad 206)
    redirect_to: Callable[[Seen], str] | None = None
    transform: Callable[[bytes], bytes] | None = None  # rewrite the whole upstream body
    used: int = 0

    def matches(self, seen: Seen) -> bool:
        """True if this rule applies to the request and has uses left."""
        if self.times is not None and self.used >= self.times:
            return False
        if self.method is not None and seen.method != self.method:
            return False
        if self.header is not None:
            name, pattern = self.header
            if re.search(pattern, seen.headers.get(name, "")) is None:
                return False
        return re.search(self.path, seen.path) is not None


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that give up mid-exchange (the point of many faults) are not errors here.
        pass


class FaultProxy:
    """An HTTP proxy that forwards to ``upstream`` and injects :class:`Fault` rules."""

    def __init__(self, upstream: str, *, ssl_context: ssl.SSLContext | None = None) -> None:
        parsed = urlparse(upstream)
        self.upstream_scheme = parsed.scheme
        self.upstream_host = parsed.hostname or "127.0.0.1"
        self.upstream_port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self.ssl_context = ssl_context
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.host = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def add(self, fault: Fault) -> Fault:
        """Add a rule (rules are tried in the order added)."""
        with self.lock:
            self.faults.append(fault)
        return fault

    def reset(self) -> None:
        """Forget rules and recorded requests."""
        with self.lock:
            self.faults.clear()
            self.seen.clear()

    def requests(self, method: str | None = None, path: str = "") -> list[Seen]:
        """Recorded requests, filtered by method and a path regex."""
        with self.lock:
            return [
                s
                for s in self.seen
                if (method is None or s.method == method) and re.search(path, s.path)
            ]

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def _connection(self) -> http.client.HTTPConnection:
        if self.upstream_scheme == "https":
            return http.client.HTTPSConnection(
                self.upstream_host, self.upstream_port, context=self.ssl_context, timeout=30
            )
        return http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=30)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _rule(self, seen: Seen) -> Fault | None:
                with proxy.lock:
                    proxy.seen.append(seen)
                    for fault in proxy.faults:
                        if fault.matches(seen):
                            fault.used += 1
                            return fault
                return None

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request_body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                seen = Seen(self.command, self.path, headers)
                fault = self._rule(seen)
                if fault is not None and fault.redirect_to is not None:
                    seen.status = 307
                    self._send_head(307, {"Location": fault.redirect_to(seen)}, 0)
                    return
                if fault is not None and fault.status is not None:
                    seen.status = fault.status
                    self._send_head(fault.status, fault.headers, len(fault.body))
                    if self.command != "HEAD":
                        self.wfile.write(fault.body)
                    return
                upstream_headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS
                }
                if fault is not None and fault.ignore_range:
                    upstream_headers.pop("Range", None)
                    upstream_headers.pop("range", None)
                if fault is not None and fault.range_shift and "range" in headers:
                    start = int(headers["range"].split("=")[1].split("-")[0]) + fault.range_shift
                    for key in ("Range", "range"):
                        upstream_headers.pop(key, None)
                    upstream_headers["Range"] = f"bytes={start}-"
                upstream_headers["Host"] = f"{proxy.upstream_host}:{proxy.upstream_port}"
                connection = proxy._connection()
                try:
                    connection.request(
                        self.command, self.path, body=request_body or None, headers=upstream_headers
                    )
                    response = connection.getresponse()
                    body = response.read()
                finally:
                    connection.close()
                seen.status = response.status
                out_headers = {
                    k: v for k, v in response.getheaders() if k.lower() not in HOP_HEADERS
                }
                if fault is not None:
                    for name in fault.drop_headers:
                        out_headers = {
                            k: v for k, v in out_headers.items() if k.lower() != name.lower()
                        }
                    for key, value in fault.set_headers.items():
                        out_headers = {
                            k: v for k, v in out_headers.items() if k.lower() != key.lower()
                        }
                        out_headers[key] = value
                    if fault.transform is not None:
                        body = fault.transform(body)
                    if fault.corrupt_at is not None and fault.corrupt_at < len(body):
                        i = fault.corrupt_at
                        body = body[:i] + bytes([body[i] ^ 0xFF]) + body[i + 1 :]
                declared = len(body)
                if self.command == "HEAD":
                    declared = int(out_headers.pop("Content-Length", 0) or 0)
                    out_headers = {
                        k: v for k, v in out_headers.items() if k.lower() != "content-length"
                    }
                else:
                    out_headers = {
                        k: v for k, v in out_headers.items() if k.lower() != "content-length"
                    }
                if fault is not None and fault.chunked and self.command != "HEAD":
                    self._send_chunked(response.status, out_headers, body)
                    return
                self._send_head(response.status, out_headers, declared)
                if self.command == "HEAD":
                    return
                if fault is None:
                    self.wfile.write(body)
                    return
                if fault.stall and fault.truncate_after is None:
                    self.wfile.flush()
                    time.sleep(fault.stall)
                if fault.truncate_after is not None:
                    self.wfile.write(body[: fault.truncate_after])
                    self.wfile.flush()
                    if fault.stall:
                        time.sleep(fault.stall)
                    self.close_connection = True
                    return
                if fault.trickle is not None:
                    size, pause = fault.trickle
                    for i in range(0, len(body), size):
                        self.wfile.write(body[i : i + size])
                        self.wfile.flush()
                        time.sleep(pause)
                    return
                self.wfile.write(body)

            def _send_head(self, status: int, headers: dict[str, str], length: int) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(length))
                self.end_headers()

            def _send_chunked(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i in range(0, len(body), 64 * 1024):
                    piece = body[i : i + 64 * 1024]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")

            def _safe(self) -> None:
                try:
                    self._handle()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _safe

        return Handler
