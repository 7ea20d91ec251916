"""The HTTPS side of a registry transport, built on its first request.

Its TLS settings load the CA bundle (tens of milliseconds), which a plain-HTTP registry never
needs; a redirect from one to an HTTPS object store is still verified. It lives apart from
``transport`` because it subclasses an httpx class, and ``transport`` must import without httpx.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable

import httpx


class DeferredTls(httpx.BaseTransport):
    """The HTTPS transport, made on its first request (its TLS settings load the CA bundle)."""

    def __init__(self, verify: Callable[[], ssl.SSLContext | bool], limits: httpx.Limits) -> None:
        self._verify = verify
        self._limits = limits
        self._lock = threading.Lock()
        self._transport: httpx.HTTPTransport | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            if self._transport is None:
                self._transport = httpx.HTTPTransport(verify=self._verify(), limits=self._limits)
            transport = self._transport
        return transport.handle_request(request)

    def close(self) -> None:
        with self._lock:
            if self._transport is not None:
                self._transport.close()
