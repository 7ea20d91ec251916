"""What survives between registry calls in one process: connections, TLS contexts, tokens,
and whether a loopback host speaks plain HTTP.

A resolve, pull, push or copy builds a short-lived ``RegistrySession`` per repository; the
expensive parts are kept here instead, per host, and shared by every session of the process
(and its threads): one pooled keep-alive ``Transport`` per host and connection settings, one
``ssl.SSLContext`` per CA configuration (loading the system CA bundle costs tens of
milliseconds), one ``Authenticator`` per host and credential list (its bearer tokens are
reused per scope until shortly before ``expires_in``), and the plain-HTTP decision of a
loopback host that does not speak TLS, so that it is not probed again. This is what
containerd's long-lived resolver and go-containerregistry's shared ``http.Transport`` do.

``shared_connections()`` is the process-wide instance, closed at exit; pass your own
``Connections`` to a session to keep its state apart (and ``close()`` it when done).
"""

from __future__ import annotations

import atexit
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ocistore.registry.auth import Authenticator, CredentialLike
from ocistore.registry.mirrors import RegistryHost
from ocistore.registry.transport import RetryPolicy, Transport

if TYPE_CHECKING:
    import ssl

    import httpx

_TransportKey = tuple[object, ...]
# Hosts kept at once; the least recently used beyond this are dropped (not closed: a thread may
# still be reading from one; the garbage collector closes its sockets).
MAX_HOSTS = 64


def _credential_fingerprint(credentials: Sequence[CredentialLike]) -> str:
    """A digest naming a credential list, so that secrets are not dictionary keys."""
    import hashlib  # loads OpenSSL: not before the first full request

    hasher = hashlib.sha256()
    for credential in credentials:
        for part in (
            credential.username,
            credential.password,
            credential.identity_token,
            getattr(credential, "registry_token", None),
        ):
            hasher.update(repr(part).encode() + b"\0")
        hasher.update(b"\1")
    return hasher.hexdigest()


def _transport_key(
    host: RegistryHost,
    *,
    ca_file: str | None,
    timeout: float | httpx.Timeout,
    retry: RetryPolicy,
    sleep: Callable[[float], None] | None,
) -> _TransportKey:
    # An httpx.Timeout is not hashable; its repr names all its parts.
    timeout_key = timeout if isinstance(timeout, int | float) else repr(timeout)
    return (
        host.url,
        host.ca_files,
        host.skip_verify,
        host.headers,
        ca_file,
        timeout_key,
        retry,
        sleep,
    )


class Connections:
    """Per-host registry state shared by the sessions of a process; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._contexts: dict[tuple[tuple[str, ...], bool], ssl.SSLContext | bool] = {}
        self._transports: OrderedDict[_TransportKey, Transport] = OrderedDict()
        self._authenticators: dict[tuple[_TransportKey, str], Authenticator] = {}
        self._plain_http: set[str] = set()

    def __enter__(self) -> Connections:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes every pooled connection and forgets tokens and scheme decisions; later calls
        start afresh."""
        with self._lock:
            transports = list(self._transports.values())
            self._transports.clear()
            self._authenticators.clear()
            self._plain_http.clear()
        for transport in transports:
            transport.close()

    def ssl_context(self, host: RegistryHost, extra_ca: str | None = None) -> ssl.SSLContext | bool:
        """The TLS verification settings for ``host``: built once per CA configuration."""
        cafiles = (*host.ca_files, *([extra_ca] if extra_ca else []))
        key = (cafiles, host.skip_verify)
        with self._lock:
            context = self._contexts.get(key)
        if context is not None:
            return context
        if host.skip_verify:
            context = False
        else:
            import ssl

            context = ssl.create_default_context()
            for cafile in cafiles:
                context.load_verify_locations(cafile=cafile)
        with self._lock:
            return self._contexts.setdefault(key, context)

    def client_for(
        self,
        host: RegistryHost,
        credentials: Sequence[CredentialLike],
        *,
        ca_file: str | None,
        timeout: float | httpx.Timeout,
        retry: RetryPolicy,
        sleep: Callable[[float], None] | None,
    ) -> tuple[Transport, Authenticator]:
        """The pooled transport and the authenticator (with its token cache) for ``host``."""
        key = _transport_key(host, ca_file=ca_file, timeout=timeout, retry=retry, sleep=sleep)
        auth_key = (key, _credential_fingerprint(credentials))
        with self._lock:
            transport = self._transports.get(key)
            if transport is not None:
                self._transports.move_to_end(key)
            authenticator = self._authenticators.get(auth_key)
        if transport is None:
            built = Transport(
                verify=lambda: self.ssl_context(host, ca_file),
                timeout=timeout,
                retry=retry,
                headers=dict(host.headers),
                **({"sleep": sleep} if sleep is not None else {}),  # type: ignore[arg-type]
            )
            with self._lock:
                transport = self._transports.setdefault(key, built)
                while len(self._transports) > MAX_HOSTS:
                    dropped, _ = self._transports.popitem(last=False)
                    for stale in [k for k in self._authenticators if k[0] == dropped]:
                        del self._authenticators[stale]
            if transport is not built:
                built.close()  # another thread won the race
        if authenticator is None:
            fresh = Authenticator(host.netloc, credentials, transport)
            with self._lock:
                authenticator = self._authenticators.setdefault(auth_key, fresh)
        return transport, authenticator

    def pooled(
        self,
        host: RegistryHost,
        *,
        ca_file: str | None,
        timeout: float | httpx.Timeout,
        retry: RetryPolicy,
        sleep: Callable[[float], None] | None,
    ) -> bool:
        """Whether :meth:`client_for` already holds a transport (and so maybe tokens) for
        these settings."""
        key = _transport_key(host, ca_file=ca_file, timeout=timeout, retry=retry, sleep=sleep)
        with self._lock:
            return key in self._transports

    def speaks_plain_http(self, host: RegistryHost) -> bool:
        """True once ``host`` (a loopback host with the fallback) was found not to speak TLS."""
        with self._lock:
            return host.http_fallback and host.netloc in self._plain_http

    def remember_plain_http(self, host: RegistryHost) -> None:
        """Records that ``host`` failed the TLS handshake: later sessions go straight to HTTP."""
        with self._lock:
            self._plain_http.add(host.netloc)


_shared: Connections | None = None
_shared_lock = threading.Lock()


def shared_connections() -> Connections:
    """The process-wide :class:`Connections` (closed when the interpreter exits)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Connections()
            atexit.register(_shared.close)
        return _shared


def _forget_in_child() -> None:
    # A forked child must not talk on its parent's sockets: it starts its own pool.
    global _shared, _shared_lock
    _shared, _shared_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)
