"""A registry namespace as pulls see it: its mirrors and upstream, tried in order."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from ocistore._log import get_logger
from ocistore.errors import RegistryError, RegistryUnavailableError
from ocistore.reference import Reference
from ocistore.registry.auth import CredentialLike, KeyringLike, credentials_for
from ocistore.registry.client import BlobSink, FetchedManifest, ManifestHead, RegistryClient
from ocistore.registry.mirrors import RegistryHost, load_hosts
from ocistore.registry.options import RegistryOptions

log = get_logger("ocistore.registry")
T = TypeVar("T")


class RegistrySession:
    """Clients for every host of one registry, used with containerd's fallback rules.

    Mirrors come first, the upstream last. Only hosts with the ``resolve`` capability turn
    tags into digests; content (always addressed by digest and verified) may come from any
    ``pull`` host. A host that fails (unreachable, 5xx, 404, refused) hands over to the next.
    """

    def __init__(
        self,
        registry: str,
        repository: str,
        options: RegistryOptions | None = None,
        *,
        hosts: Sequence[RegistryHost] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.registry = registry
        self.repository = repository
        self.options = options if options is not None else RegistryOptions()
        self.hosts = (
            list(hosts)
            if hosts is not None
            else load_hosts(registry, self.options.hosts_dir, plain_http=self.options.plain_http)
        )
        self._auth = self.options.auth
        self._sleep = sleep
        self._clients: dict[str, RegistryClient] = {}
        self._dead: set[str] = set()
        self._lock = threading.Lock()
        self.last_host: RegistryHost | None = None

    def __enter__(self) -> RegistrySession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every client."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def _credentials(self, host: RegistryHost) -> list[CredentialLike]:
        image = f"{self.registry}/{self.repository}"
        if host.is_upstream:
            return credentials_for(self._auth, image)
        # Credentials for the upstream are not handed to a mirror; a keyring may know the mirror.
        if isinstance(self._auth, KeyringLike):
            return credentials_for(self._auth, f"{host.netloc}/{self.repository}")
        return []

    def client(self, host: RegistryHost) -> RegistryClient:
        """The (cached) client of one host."""
        with self._lock:
            client = self._clients.get(host.url)
            if client is None:
                client = RegistryClient(
                    host,
                    credentials=self._credentials(host),
                    ca_file=self.options.ca_file,
                    timeout=self.options.timeout,
                    retry=self.options.retry,
                    sleep=self._sleep,
                    connections=self.options.connections,
                    parallel=self.options.parallel,
                )
                self._clients[host.url] = client
            return client

    @property
    def credential(self) -> CredentialLike | None:
        """The credential the last successful host accepted (None: anonymous)."""
        if self.last_host is None:
            return None
        return self.client(self.last_host).credential

    def _each(self, capability: str, action: Callable[[RegistryClient], T], what: str) -> T:
        candidates = [h for h in self.hosts if h.can(capability)]
        if not candidates:
            raise RegistryError(f"no host of {self.registry} is allowed to {capability}")
        live = [h for h in candidates if h.url not in self._dead] or candidates
        last_error: RegistryError | None = None
        for host in live:
            try:
                result = action(self.client(host))
            except RegistryError as error:
                if not _falls_through(error):
                    raise
                if isinstance(error, RegistryUnavailableError) and error.status is None:
                    with self._lock:
                        self._dead.add(host.url)  # unreachable: do not wait on it again
                if host is not live[-1]:
                    log.info("%s via %s failed (%s); trying the next host", what, host.url, error)
                last_error = error
                continue
            self.last_host = host
            return result
        assert last_error is not None
        raise last_error

    def resolve(self, reference: str) -> ManifestHead:
        """Tag (or digest) to digest, by HEAD with a GET fallback, on ``resolve`` hosts."""
        return self._each(
            "resolve", lambda c: c.resolve(self.repository, reference), f"resolving {reference}"
        )

    def get_manifest(self, digest: str) -> FetchedManifest:
        """A manifest by digest (verified), from the first ``pull`` host that has it."""
        return self._each(
            "pull", lambda c: c.get_manifest(self.repository, digest), f"manifest {digest}"
        )

    def read_blob(self, digest: str, max_size: int) -> bytes:
        """A small verified blob in memory (a config)."""
        return self._each(
            "pull",
            lambda c: c.read_blob(self.repository, digest, max_size=max_size),
            f"blob {digest}",
        )

    def download_blob(
        self,
        digest: str,
        size: int | None,
        sink: BlobSink,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Stream a blob into ``sink`` (resuming at its offset) from the first host that works."""
        received = 0

        def attempt(client: RegistryClient) -> int:
            nonlocal received
            got = client.download_blob(self.repository, digest, size, sink, progress=progress)
            received += got
            return got

        self._each("pull", attempt, f"blob {digest}")
        return received


def _falls_through(error: RegistryError) -> bool:
    """Whether a failure on one host should hand over to the next host."""
    if isinstance(error, RegistryUnavailableError):
        return True
    status = error.status
    return status is None or status in (401, 403, 404) or status >= 500


def session_for(reference: Reference, options: RegistryOptions | None = None) -> RegistrySession:
    """The session for a reference's registry and repository (resolve, pull, push and copy).

    The session is short-lived; what is worth keeping (connections, TLS contexts, tokens, the
    plain-HTTP decision) lives on in ``options.connections`` or the process-wide pool.
    """
    return RegistrySession(reference.registry, reference.repository, options)
