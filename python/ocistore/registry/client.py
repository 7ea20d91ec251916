"""The OCI distribution API against one registry host: manifests, blobs, uploads."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol
from urllib.parse import quote, urlencode, urljoin, urlsplit

from ocistore import mediatypes
from ocistore._log import get_logger
from ocistore._valueclass import valueclass
from ocistore.digest import digest_bytes, validate_digest
from ocistore.errors import (
    DigestMismatchError,
    MalformedResponseError,
    ManifestTooLargeError,
    RegistryError,
    RegistryUnavailableError,
    SizeMismatchError,
    UnsupportedManifestError,
)
from ocistore.mediatypes import MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, MediaType
from ocistore.registry import lighthttp
from ocistore.registry.auth import Authenticator, CredentialLike
from ocistore.registry.bodies import BUFFER_SIZE, BodyInterruptedError, Response, read_body
from ocistore.registry.connections import Connections, shared_connections
from ocistore.registry.errors import read_limited, registry_error
from ocistore.registry.lighthttp import LightResponse
from ocistore.registry.mirrors import RegistryHost, is_loopback
from ocistore.registry.ranges import (
    ParallelFetch,
    RangeIgnoredError,
    content_range_matches,
    fetch_in_ranges,
)
from ocistore.registry.transport import (
    RetryPolicy,
    TlsCertificateError,
    TlsHandshakeError,
    Transport,
    default_headers,
)
from ocistore.registry.writebehind import writes_for

if TYPE_CHECKING:
    import httpx

log = get_logger("ocistore.registry")

MANIFEST_ACCEPT = ", ".join(mediatypes.ACCEPT_MANIFEST)
# Content-Types that do not say which document a body is: the body itself is looked at.
_UNSPECIFIC_TYPES = frozenset({"application/json", "application/octet-stream", "text/plain"})
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
# Blobs up to this size are uploaded in one PUT; larger ones in PATCH chunks.
MONOLITHIC_UPLOAD_LIMIT = 64 * 1024 * 1024


class BlobSink(Protocol):
    """Where downloaded blob bytes go (``ocistore.store.Ingest`` is one)."""

    @property
    def offset(self) -> int: ...
    def write(self, data: bytes | memoryview) -> None: ...
    def truncate(self) -> None: ...


@valueclass
class ManifestHead:
    """What a HEAD (or GET) says about a manifest."""

    digest: str | None
    media_type: str | None
    size: int | None


@valueclass
class FetchedManifest:
    """A manifest body, its media type and its verified digest."""

    data: bytes
    media_type: str
    digest: str


def repository_scope(repository: str, actions: str = "pull") -> str:
    """The token scope for a repository, e.g. ``repository:library/nginx:pull``."""
    return f"repository:{repository}:{actions}"


def _media_type(header: str | None) -> str | None:
    return mediatypes.base(header) or None if header else None


def _check_not_schema1(media_type: str | None, what: str) -> None:
    if mediatypes.is_schema1(media_type):
        raise UnsupportedManifestError(
            f"{what} is a Docker schema 1 manifest ({media_type}); schema 1 is a legacy format "
            "that ocistore does not support — rebuild and push the image with a current tool"
        )


class RegistryClient:
    """Speaks the distribution API to one host (a registry or one of its mirrors)."""

    def __init__(
        self,
        host: RegistryHost,
        *,
        credentials: Sequence[CredentialLike] = (),
        ca_file: str | None = None,
        timeout: float | httpx.Timeout = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        connections: Connections | None = None,
        parallel: ParallelFetch | None = None,
    ) -> None:
        self._credentials = list(credentials)
        self._parallel = parallel if parallel is not None else ParallelFetch(max_per_layer=1)
        self._ca_file = ca_file
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._connections = connections if connections is not None else shared_connections()
        self._fallback_lock = threading.Lock()
        self._built_lock = threading.Lock()
        self._built: tuple[Transport, Authenticator] | None = None
        # Whether every request goes the full way: once this client built its httpx client
        # (pooled connections, maybe tokens) or a light request was not answered plainly.
        self._went_full = False
        # Whether every request so far was answered the light way (no authenticator asked yet).
        self._answered_light = False
        if self._connections.speaks_plain_http(host):
            host = host.with_scheme("http")  # found out by an earlier session: no new probe
        self._setup(host)

    def _setup(self, host: RegistryHost) -> None:
        # The httpx client (pooled in ``Connections``) is fetched on first use: a process
        # whose requests all go the light way (``lighthttp``) never imports httpx.
        with self._built_lock:
            self.host = host
            self._built = None

    def _transport_and_auth(self) -> tuple[Transport, Authenticator]:
        with self._built_lock:
            if self._built is None:
                self._built = self._connections.client_for(
                    self.host, self._credentials, **self._pool_settings()
                )
                self._went_full = True
            return self._built

    def _pool_settings(self) -> dict[str, Any]:
        """What, besides the host, names this client's transport in ``Connections``."""
        return {
            "ca_file": self._ca_file,
            "timeout": self._timeout,
            "retry": self._retry,
            "sleep": self._sleep,
        }

    @property
    def transport(self) -> Transport:
        """The host's pooled transport (made on first use)."""
        return self._transport_and_auth()[0]

    @property
    def auth(self) -> Authenticator:
        """The host's authenticator with its token cache (made on first use)."""
        return self._transport_and_auth()[1]

    def __repr__(self) -> str:
        return f"RegistryClient({self.host.url!r})"

    def close(self) -> None:
        """Nothing to release: connections stay pooled in ``Connections`` for the next call."""

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def credential(self) -> CredentialLike | None:
        """The credential the registry accepted (None: anonymous)."""
        with self._built_lock:
            light_only = self._built is None and self._answered_light
        if light_only:
            # What a new authenticator says after an anonymous request was answered.
            return self._credentials[0] if self._credentials else None
        return self.auth.credential

    # --- plumbing ---------------------------------------------------------------------

    def _url(self, path: str, *, pull: bool = False) -> str:
        url = self.host.url + path
        if pull and not self.host.is_upstream:
            # Tell a mirror which registry the image is from (containerd does the same).
            url += ("&" if "?" in url else "?") + urlencode({"ns": self.host.namespace})
        return url

    def _send(
        self,
        method: str,
        url: str,
        *,
        scopes: Sequence[str],
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        stream: bool = False,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        def send(target: str) -> httpx.Response:
            return self.auth.send(
                method,
                target,
                scopes=scopes,
                headers=headers,
                content=content,
                stream=stream,
                idempotent=idempotent,
            )

        try:
            return send(url)
        except TlsHandshakeError as error:
            if not self.host.http_fallback or isinstance(error, TlsCertificateError):
                raise
            # A loopback registry without TLS: containerd falls back to plain HTTP the same way.
            with self._fallback_lock:
                if self.host.url.startswith("https://"):
                    log.info("%s does not speak TLS; using plain HTTP", self.host.netloc)
                    self._connections.remember_plain_http(self.host)
                    self._setup(self.host.with_scheme("http"))
            return send("http://" + url.split("://", 1)[1])

    # --- manifests --------------------------------------------------------------------

    def head_manifest(self, repository: str, reference: str) -> ManifestHead:
        """HEAD a manifest by tag or digest."""
        url = self._url(f"/{repository}/manifests/{quote(reference, safe=':@')}", pull=True)
        headers = {"Accept": MANIFEST_ACCEPT}
        what = f"manifest {repository}:{reference}"
        light = self._light_head(url, headers, what)
        if light is not None:
            return light
        response = self._send("HEAD", url, scopes=[repository_scope(repository)], headers=headers)
        if response.status_code != 200:
            raise registry_error(response, what, default_code="MANIFEST_UNKNOWN")
        response.close()
        return _manifest_head(response.headers, what)

    def _light_head(self, url: str, headers: dict[str, str], what: str) -> ManifestHead | None:
        """The manifest HEAD over a raw socket, if the light way applies and the answer is a
        complete 200 with a digest (see :meth:`_light_request`); else None."""
        answer = self._light_request("HEAD", url, headers, what)
        if answer is None:
            return None
        with contextlib.closing(answer):
            try:
                if answer.status_code != 200 or not answer.headers.get("docker-content-digest"):
                    raise ValueError(f"HTTP {answer.status_code}, not a 200 with a digest")
                head = _manifest_head(answer.headers, what)
            except (ValueError, RegistryError) as error:
                self._leave_the_light_way(what, error)
                return None
        self._answered_light = True
        return head

    def _light_request(
        self, method: str, url: str, headers: Mapping[str, str], what: str
    ) -> LightResponse | None:
        """The request over a raw socket (``lighthttp``) while this client has built no httpx
        client and the process pooled none for the host (so no token is held either), to a
        plain-HTTP URL ``lighthttp.usable`` accepts; None when the full path must send it
        instead (and for any failure to get a response head: the full path reports it)."""
        with self._built_lock:
            went_full = self._went_full
        if went_full or self._connections.pooled(self.host, **self._pool_settings()):
            return None  # pooled keep-alive connections (and maybe tokens) are there to use
        sent = {k.lower(): v for k, v in default_headers(dict(self.host.headers)).items()}
        sent |= {k.lower(): v for k, v in headers.items()}
        if not lighthttp.usable(url, sent, self._timeout):
            return None
        assert isinstance(self._timeout, int | float)
        try:
            return lighthttp.request(method, url, sent, self._timeout)
        except (OSError, ValueError) as error:  # MalformedResponseError is a ValueError
            self._leave_the_light_way(what, error)
            return None

    def _light_get(
        self, url: str, headers: Mapping[str, str], what: str, offset: int | None = None
    ) -> LightResponse | None:
        """A light GET answered with a plain body the full path would take as is: a 200, or
        for a blob GET from ``offset`` what :func:`_resume_skip` accepts; else None."""
        answer = self._light_request("GET", url, headers, what)
        if answer is None:
            return None
        status = answer.status_code
        accepted = (
            status == 200
            if offset is None
            else _resume_skip(status, answer.headers.get("content-range", ""), offset) is not None
        )
        if not accepted or answer.plain_length() is None:
            answer.close()
            self._leave_the_light_way(what, f"HTTP {status}, not a plain answer to take as is")
            return None
        self._answered_light = True
        return answer

    def _leave_the_light_way(self, what: str, reason: object) -> None:
        """The light way failed for ``what``: it is asked again, and from now on every request
        of this client goes, the full way (which reports errors as it always did)."""
        log.debug("%s: asking again the full way (%s)", what, reason)
        with self._built_lock:
            self._went_full = True

    def get_manifest(
        self,
        repository: str,
        reference: str,
        *,
        max_size: int = MAX_MANIFEST_SIZE,
    ) -> FetchedManifest:
        """GET a manifest, enforcing the size limit and verifying its digest.

        The body must hash to ``reference`` when that is a digest, and to
        ``Docker-Content-Digest`` when the registry sends one.
        """
        what = (
            f"manifest {repository}@{reference}"
            if ":" in reference
            else (f"manifest {repository}:{reference}")
        )
        url = self._url(f"/{repository}/manifests/{quote(reference, safe=':@')}", pull=True)
        headers = {"Accept": MANIFEST_ACCEPT}
        answer = self._light_manifest(url, headers, what, max_size)
        if answer is None:
            answer = self._full_manifest(url, repository, headers, what, max_size)
        media_type, header_digest, data = answer
        algorithm = "sha256"
        if reference.count(":") == 1 and reference.split(":")[0] in ("sha256", "sha512"):
            algorithm = reference.split(":")[0]
        actual = digest_bytes(data, algorithm)
        if ":" in reference and actual != reference:
            raise DigestMismatchError(
                f"{what}: the body does not match the digest asked for",
                expected=reference,
                actual=actual,
            )
        if header_digest is not None:
            check = actual
            if header_digest.split(":", 1)[0] != algorithm:
                try:
                    check = digest_bytes(data, header_digest.split(":", 1)[0])
                except ValueError:
                    raise RegistryError(f"{what}: invalid Docker-Content-Digest") from None
            if check != header_digest:
                raise DigestMismatchError(
                    f"{what}: the body does not match Docker-Content-Digest",
                    expected=header_digest,
                    actual=check,
                )
        if media_type is None or media_type in _UNSPECIFIC_TYPES:
            media_type = _sniff_media_type(data)
        _check_not_schema1(media_type, what)
        return FetchedManifest(data, media_type or MediaType.OCI_MANIFEST, actual)

    def _light_manifest(
        self, url: str, headers: dict[str, str], what: str, max_size: int
    ) -> tuple[str | None, str | None, bytes] | None:
        """The manifest GET the light way: its media type, ``Docker-Content-Digest`` and body,
        if it came whole and within ``max_size``; else None (the full path asks again)."""
        answer = self._light_get(url, headers, what)
        if answer is None:
            return None
        with contextlib.closing(answer):
            length = answer.plain_length()
            if length is None or length > max_size:
                self._leave_the_light_way(what, f"{length} bytes, over {max_size}")
                return None
            try:
                buffer = bytearray(min(length, BUFFER_SIZE))  # reused: each piece is copied
                data = b"".join([bytes(piece) for piece in read_body(answer, buffer)])
            except BodyInterruptedError as error:
                self._leave_the_light_way(what, error)
                return None
        media_type = _media_type(answer.headers.get("content-type"))
        return media_type, answer.headers.get("docker-content-digest") or None, data

    def _full_manifest(
        self, url: str, repository: str, headers: dict[str, str], what: str, max_size: int
    ) -> tuple[str | None, str | None, bytes]:
        """The manifest GET through httpx: its media type, ``Docker-Content-Digest`` and body."""
        response = self._send(
            "GET", url, scopes=[repository_scope(repository)], headers=headers, stream=True
        )
        if response.status_code != 200:
            raise registry_error(response, what, default_code="MANIFEST_UNKNOWN")
        try:
            media_type = _media_type(response.headers.get("content-type"))
            _check_not_schema1(media_type, what)
            length = response.headers.get("content-length")
            if length and length.isdigit() and int(length) > max_size:
                raise ManifestTooLargeError(f"{what} is {length} bytes, over the {max_size} limit")
            import httpx  # loaded with the response already

            try:
                data, too_big = read_limited(response, max_size)
            except httpx.TransportError as error:
                raise RegistryUnavailableError(f"{what}: connection failed: {error}") from error
            except httpx.DecodingError as error:  # a content coding the body does not follow
                raise MalformedResponseError(f"{what}: undecodable body: {error}") from error
            if too_big:
                raise ManifestTooLargeError(f"{what} is over the {max_size} byte limit")
            return media_type, response.headers.get("docker-content-digest") or None, data
        finally:
            response.close()

    def resolve(self, repository: str, reference: str) -> ManifestHead:
        """The digest a tag points to: HEAD, or GET and hash when HEAD gives no digest."""
        try:
            head = self.head_manifest(repository, reference)
        except RegistryError as error:
            if error.status not in (405, 403):
                raise
            head = ManifestHead(None, None, None)
        if head.digest is not None:
            return head
        fetched = self.get_manifest(repository, reference)
        return ManifestHead(fetched.digest, fetched.media_type, len(fetched.data))

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        """PUT a manifest under a tag or its digest; returns its digest."""
        digest = digest_bytes(data)
        url = self._url(f"/{repository}/manifests/{quote(reference, safe=':@')}")
        response = self._send(
            "PUT",
            url,
            scopes=[repository_scope(repository, "pull,push")],
            headers={"Content-Type": media_type},
            content=data,
        )
        if response.status_code not in (200, 201, 202):
            raise registry_error(response, f"pushing manifest {repository}:{reference}")
        response.close()
        returned = response.headers.get("docker-content-digest")
        if returned and returned != digest:
            raise DigestMismatchError(
                f"registry stored manifest {repository}:{reference} as {returned}",
                expected=digest,
                actual=returned,
            )
        return digest

    # --- blobs ------------------------------------------------------------------------

    def blob_exists(self, repository: str, digest: str) -> int | None:
        """The blob's size if the repository has it, else None."""
        url = self._url(f"/{repository}/blobs/{digest}", pull=True)
        response = self._send("HEAD", url, scopes=[repository_scope(repository)])
        response.close()
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise registry_error(response, f"blob {repository}@{digest}")
        length = response.headers.get("content-length")
        return int(length) if length and length.isdigit() else 0

    def read_blob(self, repository: str, digest: str, *, max_size: int = MAX_CONFIG_SIZE) -> bytes:
        """A small blob (a config) in memory, size-limited and verified."""
        sink = _BytesSink(max_size)
        self.download_blob(repository, digest, None, sink)
        data = bytes(sink.buffer)
        actual = digest_bytes(data, digest.split(":", 1)[0])
        if actual != digest:
            raise DigestMismatchError(
                f"blob {repository}@{digest} does not match its digest",
                expected=digest,
                actual=actual,
            )
        return data

    def _blob_request(
        self, repository: str, digest: str, offset: int, end: int | None
    ) -> tuple[str, dict[str, str]]:
        """The URL and headers of a blob GET from ``offset`` (to ``end``)."""
        headers = {"Accept-Encoding": "identity"}
        if end is not None:
            headers["Range"] = f"bytes={offset}-{end - 1}"  # bounded: one chunk, no more
        elif offset:
            headers["Range"] = f"bytes={offset}-"
        return self._url(f"/{repository}/blobs/{digest}", pull=True), headers

    @contextlib.contextmanager
    def _open_blob(
        self, repository: str, digest: str, offset: int, end: int | None = None
    ) -> Iterator[Response]:
        """The blob GET from ``offset`` (to ``end``): the light way when it applies."""
        url, headers = self._blob_request(repository, digest, offset, end)
        light = self._light_get(url, headers, f"blob {repository}@{digest}", offset)
        if light is None:
            with self._full_blob(repository, url, headers) as response:
                yield response
        else:
            with contextlib.closing(light):
                yield light

    @contextlib.contextmanager
    def _full_blob(
        self, repository: str, url: str, headers: dict[str, str]
    ) -> Iterator[httpx.Response]:
        """A blob GET (``url`` and ``headers`` from :meth:`_blob_request`) through httpx."""
        response = self._send(
            "GET", url, scopes=[repository_scope(repository)], headers=headers, stream=True
        )
        try:
            yield response
        finally:
            response.close()

    def download_blob(
        self,
        repository: str,
        digest: str,
        size: int | None,
        sink: BlobSink,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Stream a blob into ``sink``, resuming from ``sink.offset`` with ``Range``.

        A dropped or stalled connection resumes where it stopped; only a 206 whose
        ``Content-Range`` starts at the offset is accepted, and a server that ignores ``Range``
        may make us re-read and discard the prefix only a bounded number of times. Returns
        the number of bytes received over the network. The caller verifies the digest.

        A large blob may come in parallel ranges instead, as the client's
        :class:`ParallelFetch` says; ``sink`` still gets its bytes in order (and one stream is
        used when the registry ignores ``Range``).
        """
        what = f"blob {repository}@{digest}"
        parallel = self._parallel
        if size is not None and parallel.from_start(size - sink.offset):
            try:
                return self._download_ranges(repository, digest, size, sink, progress)
            except RangeIgnoredError:
                log.info("%s: the registry ignores Range; using one stream", what)
                parallel = ParallelFetch(max_per_layer=1)
        return self._stream_blob(repository, digest, size, sink, parallel, progress)

    def _stream_blob(
        self,
        repository: str,
        digest: str,
        size: int | None,
        sink: BlobSink,
        parallel: ParallelFetch,
        progress: Callable[[int], None] | None,
    ) -> int:
        what = f"blob {repository}@{digest}"
        received = 0
        failures = 0
        restarts = 0
        # A large blob's first chunk is asked for alone: how fast it comes decides whether the
        # rest is one stream or parallel ranges, and no byte is sent twice either way.
        probe_end = parallel.probe_until(sink.offset, size)
        buffer = bytearray(BUFFER_SIZE)
        while True:
            offset = sink.offset
            if size is not None and offset > size:
                sink.truncate()
                offset = 0
            if size is not None and offset == size:
                return received
            end = probe_end if probe_end is not None and offset < probe_end else None
            progressed = False
            try:
                with self._open_blob(repository, digest, offset, end) as response:
                    skip = self._check_blob_response(response, offset, what)
                    if skip:
                        restarts += 1
                        if restarts > self._retry.max_range_restarts:
                            raise RegistryError(
                                f"{what}: the server keeps ignoring Range; giving up after "
                                f"{restarts - 1} full re-downloads"
                            )
                    if end is not None and not (
                        response.status_code == 206
                        and size is not None
                        and content_range_matches(
                            response.headers.get("content-range", ""), offset, end, size
                        )
                    ):
                        end = probe_end = None  # the whole rest comes: take it as one stream
                    limit = end if end is not None else size
                    written = offset
                    started = time.monotonic()
                    # Leaving ``writes`` waits until every piece handed on is in the sink.
                    with writes_for(sink, response, buffer) as writes:
                        for chunk in read_body(response, writes.buffer):
                            received += len(chunk)
                            if skip:
                                if len(chunk) <= skip:
                                    skip -= len(chunk)
                                    writes.release(chunk)
                                    continue
                                chunk = chunk[skip:]
                                skip = 0
                            if limit is not None and written + len(chunk) > limit:
                                raise SizeMismatchError(
                                    f"{what}: the registry sent more than the {limit - offset} "
                                    "bytes asked for"
                                )
                            writes.write(chunk)
                            written += len(chunk)
                            progressed = True
                            if progress is not None:
                                progress(len(chunk))
                    if skip:
                        raise RegistryError(f"{what}: the body ended before the resume offset")
                    if end is not None and written == end and size is not None:
                        probe_end = None
                        if parallel.too_slow(end - offset, time.monotonic() - started):
                            try:
                                return received + self._download_ranges(
                                    repository, digest, size, sink, progress
                                )
                            except RangeIgnoredError:
                                log.info("%s: the registry ignores Range; one stream", what)
                        continue  # fast enough (or ranges refused): the rest as one stream
                    if size is None or written == size:
                        return received
                    raise SizeMismatchError(
                        f"{what}: the registry sent {written} of the declared {size} bytes"
                    )
            except BodyInterruptedError as error:
                # The body broke off mid-way (reset, truncation, read time-out): resume (the
                # full way, if it came the light way).
                if isinstance(response, LightResponse):
                    self._leave_the_light_way(what, error)
                failures = 0 if progressed else failures + 1
                if failures >= self._retry.attempts:
                    raise RegistryUnavailableError(f"{what}: download failed: {error}") from error
                delay = self._retry.backoff(failures)
                log.info("%s: %s; resuming at %d in %.2fs", what, error, sink.offset, delay)
                self._wait(delay)

    def _download_ranges(
        self,
        repository: str,
        digest: str,
        size: int,
        sink: BlobSink,
        progress: Callable[[int], None] | None,
    ) -> int:
        # Parallel ranges (only when configured) go the full way, on pooled connections.
        return fetch_in_ranges(
            lambda start, end: self._full_blob(
                repository, *self._blob_request(repository, digest, start, end)
            ),
            what=f"blob {repository}@{digest}",
            size=size,
            sink=sink,
            settings=self._parallel,
            attempts=self._retry.attempts,
            backoff=self._retry.backoff,
            sleep=self._wait,
            progress=progress,
        )

    def _wait(self, seconds: float) -> None:
        """Waits before a retry, as the transport does (without building it to ask it)."""
        (self._sleep or time.sleep)(seconds)

    def _check_blob_response(self, response: Response, offset: int, what: str) -> int:
        """Validate the answer to a (ranged) blob GET; returns how many bytes to discard."""
        status = response.status_code
        content_range = response.headers.get("content-range", "")
        skip = _resume_skip(status, content_range, offset)
        if skip is not None:
            return skip
        if status == 206:
            raise RegistryError(
                f"{what}: asked for bytes from {offset}, got Content-Range {content_range!r}"
            )
        if status == 416 and offset:
            raise RegistryError(f"{what}: the registry refused to resume at byte {offset}")
        assert not isinstance(response, LightResponse), "the light way takes only what skips"
        raise registry_error(response, what, default_code="BLOB_UNKNOWN")

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Cross-repository mount; True if the registry mounted the blob."""
        query = urlencode({"mount": digest, "from": from_repository})
        url = self._url(f"/{repository}/blobs/uploads/?{query}")
        scopes = [repository_scope(repository, "pull,push"), repository_scope(from_repository)]
        response = self._send("POST", url, scopes=scopes, idempotent=False)
        response.close()
        if response.status_code == 201:
            return True
        if response.status_code == 202:
            location = response.headers.get("location")
            if location:  # an upload session was opened instead: cancel it
                self._send("DELETE", urljoin(url, location), scopes=scopes, idempotent=True).close()
            return False
        raise registry_error(response, f"mounting {digest} into {repository}")

    def upload_blob(
        self,
        repository: str,
        digest: str,
        source: BinaryIO,
        size: int,
        *,
        chunk_size: int | None = None,
    ) -> None:
        """Upload a blob from a file object: one PUT, or PATCH chunks when ``chunk_size`` is set
        (or the blob is large)."""
        scopes = [repository_scope(repository, "pull,push")]
        start_url = self._url(f"/{repository}/blobs/uploads/")
        response = self._send("POST", start_url, scopes=scopes, idempotent=False)
        response.close()
        if response.status_code != 202 or "location" not in response.headers:
            raise registry_error(response, f"starting upload of {digest} to {repository}")
        location = urljoin(start_url, response.headers["location"])
        if chunk_size is None and size > MONOLITHIC_UPLOAD_LIMIT:
            chunk_size = DEFAULT_CHUNK_SIZE
        if chunk_size is None:
            data = source.read(size + 1)
            if len(data) != size:
                raise SizeMismatchError(f"blob {digest}: expected {size} bytes, read {len(data)}")
            self._finish_upload(location, digest, data, scopes)
            return
        offset = 0
        while offset < size:
            chunk = source.read(min(chunk_size, size - offset))
            if not chunk:
                raise SizeMismatchError(f"blob {digest}: source ended at {offset} of {size} bytes")
            response = self._send(
                "PATCH",
                location,
                scopes=scopes,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                },
                content=chunk,
                idempotent=False,
            )
            response.close()
            if response.status_code != 202 or "location" not in response.headers:
                raise registry_error(response, f"uploading {digest} to {repository}")
            location = urljoin(location, response.headers["location"])
            offset += len(chunk)
        self._finish_upload(location, digest, b"", scopes)

    def _finish_upload(self, location: str, digest: str, data: bytes, scopes: list[str]) -> None:
        separator = "&" if urlsplit(location).query else "?"
        url = f"{location}{separator}{urlencode({'digest': digest})}"
        response = self._send(
            "PUT",
            url,
            scopes=scopes,
            headers={"Content-Type": "application/octet-stream"},
            content=data,
        )
        response.close()
        if response.status_code != 201:
            raise registry_error(response, f"completing upload of {digest}")


def _resume_skip(status: int, content_range: str, offset: int) -> int | None:
    """How many bytes of a blob GET's answer come before ``offset``: none for a 206 whose
    ``Content-Range`` starts there, ``offset`` for a 200 (``Range`` ignored: the prefix held
    already comes again); None for any other answer."""
    if status == 206:
        unit, _, spec = content_range.partition(" ")
        start = spec.split("-", 1)[0]
        number = start.isascii() and start.isdigit()  # "²" is a digit to isdigit, not to int
        return 0 if unit.strip() == "bytes" and number and int(start) == offset else None
    return offset if status == 200 else None


def _manifest_head(headers: Mapping[str, str], what: str) -> ManifestHead:
    """What a 200 answer's headers (names in lower case) say about a manifest."""
    media_type = _media_type(headers.get("content-type"))
    _check_not_schema1(media_type, what)
    digest = headers.get("docker-content-digest") or None
    if digest is not None:
        try:
            validate_digest(digest)
        except ValueError:
            raise RegistryError(f"{what}: invalid Docker-Content-Digest") from None
    length = headers.get("content-length")
    size = int(length) if length and length.isdigit() else None
    return ManifestHead(digest, media_type, size)


def _sniff_media_type(data: bytes) -> str | None:
    import json

    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(document, dict):
        return None
    media_type = document.get("mediaType")
    if isinstance(media_type, str):
        return media_type
    if document.get("schemaVersion") == 1:
        return MediaType.DOCKER_SCHEMA1_MANIFEST
    if "manifests" in document:
        return MediaType.OCI_INDEX
    if "layers" in document:
        return MediaType.OCI_MANIFEST
    return None


class _BytesSink:
    def __init__(self, limit: int) -> None:
        self.buffer = bytearray()
        self.limit = limit

    @property
    def offset(self) -> int:
        return len(self.buffer)

    def write(self, data: bytes | memoryview) -> None:
        if len(self.buffer) + len(data) > self.limit:
            raise SizeMismatchError(f"blob is over the {self.limit} byte limit")
        self.buffer += data

    def truncate(self) -> None:
        self.buffer.clear()


__all__ = [
    "MANIFEST_ACCEPT",
    "BlobSink",
    "FetchedManifest",
    "ManifestHead",
    "RegistryClient",
    "is_loopback",
]
