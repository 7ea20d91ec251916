"""HTTP transport for registries: bounded retries with back-off, safe manual redirects."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from ocistore._log import get_logger
from ocistore._valueclass import valueclass
from ocistore.errors import RegistryError, RegistryUnavailableError

# httpx (and ssl, which it loads) is imported where a client is built or its errors are
# caught: a process whose requests all go the light way (``lighthttp``) never loads it.
if TYPE_CHECKING:
    import ssl

    import httpx

log = get_logger("ocistore.registry")

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Statuses worth retrying even for a request that may have had effects (the server refused it).
REFUSED_STATUSES = frozenset({429, 503})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Headers that carry the registry's credentials: never sent to another host on a redirect.
SENSITIVE_HEADERS = ("authorization", "cookie", "proxy-authorization")


@valueclass
class RetryPolicy:
    """How hard to retry: attempts per request, back-off bounds, the cap on ``Retry-After``."""

    attempts: int = 5
    backoff_initial: float = 0.25
    backoff_max: float = 8.0
    retry_after_max: float = 60.0
    max_redirects: int = 10
    # A server that ignores Range makes a resume download the blob again from the start;
    # bound how often, so a flaky link cannot cost O(n^2) bytes.
    max_range_restarts: int = 2

    def backoff(self, attempt: int) -> float:
        """Jittered exponential back-off before retry number ``attempt`` (0-based)."""
        ceiling = min(self.backoff_max, self.backoff_initial * (2**attempt))
        import random  # only when a retry waits

        return random.uniform(ceiling / 2, ceiling)


class TlsHandshakeError(RegistryUnavailableError):
    """The TLS handshake failed (bad certificate, or the server does not speak TLS)."""


def redact_url(url: str | httpx.URL) -> str:
    """The URL with every query value replaced (pre-signed URLs carry secrets there)."""
    parts = urlsplit(str(url))
    if not parts.query:
        return str(url)
    query = urlencode([(k, "REDACTED") for k, _ in parse_qsl(parts.query, keep_blank_values=True)])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def origin(url: str | httpx.URL) -> tuple[str, str]:
    """(scheme, host:port) — the boundary credentials must not cross."""
    import httpx

    parsed = httpx.URL(str(url))
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed.scheme, f"{parsed.host}:{port}"


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The ``Retry-After`` delay in seconds (delta or HTTP-date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class TlsCertificateError(TlsHandshakeError):
    """The server's certificate is not trusted (or not valid for its name)."""


def _ssl_cause(error: BaseException) -> ssl.SSLError | None:
    import ssl

    seen: BaseException | None = error
    for _ in range(6):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _https_proxy_configured() -> bool:
    """Whether the environment routes HTTPS through a proxy (httpx then mounts its own)."""
    from urllib.request import getproxies

    return any(scheme in getproxies() for scheme in ("https", "all"))


def default_headers(host_headers: Mapping[str, str]) -> dict[str, str]:
    """The headers every request to a host carries: ours, then its ``hosts.toml`` ones."""
    from ocistore import __version__

    return {"User-Agent": f"ocistore/{__version__}", **host_headers}


class Transport:
    """An ``httpx.Client`` with the retry, redirect and logging rules registries need."""

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | bool | Callable[[], ssl.SSLContext | bool] = True,
        timeout: float | httpx.Timeout = 30.0,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_connections: int = 16,
    ) -> None:
        """``verify`` may be a function that makes the TLS settings: it is then called only
        when a request first goes to an ``https://`` URL (a plain-HTTP registry never pays for
        loading the CA bundle, yet a redirect to an HTTPS object store is still verified)."""
        import httpx

        from ocistore.registry.deferredtls import DeferredTls

        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        mounts: dict[str, httpx.BaseTransport] | None = None
        if callable(verify):
            if _https_proxy_configured():
                verify = verify()  # keep httpx's own proxy routing for HTTPS
            else:
                mounts = {"https://": DeferredTls(verify, limits)}
                verify = False  # the remaining (plain-HTTP) transport never does TLS
        self.client = httpx.Client(
            verify=verify,
            timeout=timeout,
            follow_redirects=False,
            headers=default_headers(headers or {}),
            limits=limits,
            mounts=mounts,
        )

    def close(self) -> None:
        """Close pooled connections."""
        self.client.close()

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | Iterable[bytes] | None = None,
        stream: bool = False,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send a request, retrying transient failures and following redirects.

        Retries connect errors, 408, 429 (honouring a capped ``Retry-After``) and 500/502/503/504
        with jittered exponential back-off. Non-idempotent requests, and requests whose body is a
        one-shot iterator, retry only when the request cannot have been processed.
        """
        import ssl

        import httpx

        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "PUT", "DELETE")
        resendable = content is None or isinstance(content, bytes)
        policy = self.retry
        attempt = 0
        while True:
            try:
                response = self._follow(method, url, dict(headers or {}), content, stream)
            except httpx.TransportError as error:
                cause = _ssl_cause(error)
                if isinstance(cause, ssl.SSLCertVerificationError):
                    raise TlsCertificateError(
                        f"TLS certificate of {redact_url(url)} not trusted: {cause.verify_message}"
                    ) from error
                if cause is not None:
                    raise TlsHandshakeError(
                        f"TLS handshake with {redact_url(url)} failed: {error}"
                    ) from error
                connect_only = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
                can_retry = resendable and (idempotent or connect_only)
                if not can_retry or attempt + 1 >= policy.attempts:
                    raise RegistryUnavailableError(
                        f"{method} {redact_url(url)} failed: {type(error).__name__}: {error}"
                    ) from error
                delay = policy.backoff(attempt)
                log.info("%s %s: %s; retrying in %.2fs", method, redact_url(url), error, delay)
                attempt += 1
                self.sleep(delay)
                continue
            status = response.status_code
            retryable = status in RETRYABLE_STATUSES and resendable
            if retryable and not idempotent:
                retryable = status in REFUSED_STATUSES
            if not retryable or attempt + 1 >= policy.attempts:
                return response
            after = retry_after_seconds(response) if status in (429, 503) else None
            if after is not None:
                delay = min(after, policy.retry_after_max)
            else:
                delay = policy.backoff(attempt)
            response.close()
            log.info("%s %s: HTTP %d; retrying in %.2fs", method, redact_url(url), status, delay)
            attempt += 1
            self.sleep(delay)

    def _follow(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | Iterable[bytes] | None,
        stream: bool,
    ) -> httpx.Response:
        start = origin(url)
        for _ in range(self.retry.max_redirects + 1):
            request = self.client.build_request(method, url, headers=headers, content=content)
            log.debug("%s %s", method, redact_url(url))
            response = self.client.send(request, stream=stream)
            location = response.headers.get("location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                return response
            response.close()
            url = urljoin(url, location)
            if origin(url) != start:
                # The registry's credentials stay with the registry: object stores and CDNs get
                # a pre-signed URL instead, and a stray header can even make them refuse it.
                headers = {k: v for k, v in headers.items() if k.lower() not in SENSITIVE_HEADERS}
            if response.status_code == 303 or (
                response.status_code in (301, 302) and method not in ("GET", "HEAD")
            ):
                method, content = "GET", None
            log.debug("redirected to %s", redact_url(url))
        raise RegistryError(f"too many redirects from {redact_url(url)}")
