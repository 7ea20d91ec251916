"""How to reach registries: one frozen value that pull, push, copy and the manager all take.

It plays the part of go-containerregistry's ``remote.Option`` list: credentials, mirror
configuration, TLS, timeouts and retries travel together, so a new connection setting is added
here once instead of to every signature. ``ocistore.registry.session.session_for`` turns it
into a :class:`~ocistore.registry.session.RegistrySession` for one repository.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ocistore._valueclass import field, replace, valueclass
from ocistore.registry.ranges import ParallelFetch

if TYPE_CHECKING:
    import httpx

    from ocistore.registry.auth import AuthSpec
    from ocistore.registry.connections import Connections
    from ocistore.registry.transport import RetryPolicy

__all__ = ["RegistryOptions"]


@valueclass
class RegistryOptions:
    """Credentials, mirrors (a containerd ``certs.d`` directory), TLS, timeout and retries.

    ``plain_http=None`` means "plain HTTP for loopback registries only", as containerd does.
    ``connections=None`` shares the process's pooled connections, TLS contexts, tokens and
    scheme decisions (:func:`~ocistore.registry.connections.shared_connections`); pass a
    :class:`~ocistore.registry.connections.Connections` to keep them apart.
    ``parallel`` says how a large blob is fetched in parallel ``Range`` requests
    (:class:`~ocistore.registry.ranges.ParallelFetch`; ``ParallelFetch(max_per_layer=1)``: one
    stream per blob).
    """

    auth: AuthSpec = None
    hosts_dir: str | os.PathLike[str] | None = None
    ca_file: str | None = None
    plain_http: bool | None = None
    timeout: float | httpx.Timeout = 30.0
    retry: RetryPolicy | None = None
    connections: Connections | None = None
    parallel: ParallelFetch = field(default_factory=ParallelFetch)

    def with_auth(self, auth: AuthSpec) -> RegistryOptions:
        """The same options with other credentials."""
        return replace(self, auth=auth)

    def __repr__(self) -> str:
        # Credentials never appear in a repr (they end up in logs and tracebacks).
        auth = "None" if self.auth is None else "<redacted>"
        return (
            f"RegistryOptions(auth={auth}, hosts_dir={self.hosts_dir!r}, ca_file={self.ca_file!r}, "
            f"plain_http={self.plain_http!r}, timeout={self.timeout!r}, retry={self.retry!r}, "
            f"parallel={self.parallel!r})"
        )
