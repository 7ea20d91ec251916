"""The OCI distribution protocol: transport, auth, a registry client, mirrors, sessions.

It knows nothing of the store; ``ocistore.transfer`` (pull, push, copy) uses both.
"""

from __future__ import annotations

import sys

# httpx imports its own command line (click, rich, pygments) whenever those are installed, which
# is half of its import time; ocistore never runs it. (``httpx.main`` then only says so.) Every
# module that imports httpx is in this package, so this runs first.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

from typing import TYPE_CHECKING

from ocistore._lazy import lazy_attributes

if TYPE_CHECKING:
    from ocistore.registry.auth import Authenticator, Challenge, StaticCredential, parse_challenges
    from ocistore.registry.client import FetchedManifest, ManifestHead, RegistryClient
    from ocistore.registry.connections import Connections, shared_connections
    from ocistore.registry.mirrors import RegistryHost, load_hosts
    from ocistore.registry.options import RegistryOptions
    from ocistore.registry.ranges import ParallelFetch
    from ocistore.registry.session import RegistrySession
    from ocistore.registry.transport import RetryPolicy, Transport

# Each name loads its module on first use: the image manager needs ``RegistryOptions`` to be
# built, not the client, its transport and its auth (a check of a present image with policy
# IfNotPresent talks to no registry at all).
_LAZY: dict[str, str] = {
    "Authenticator": "ocistore.registry.auth",
    "Challenge": "ocistore.registry.auth",
    "StaticCredential": "ocistore.registry.auth",
    "parse_challenges": "ocistore.registry.auth",
    "FetchedManifest": "ocistore.registry.client",
    "ManifestHead": "ocistore.registry.client",
    "RegistryClient": "ocistore.registry.client",
    "Connections": "ocistore.registry.connections",
    "shared_connections": "ocistore.registry.connections",
    "RegistryHost": "ocistore.registry.mirrors",
    "load_hosts": "ocistore.registry.mirrors",
    "RegistryOptions": "ocistore.registry.options",
    "ParallelFetch": "ocistore.registry.ranges",
    "RegistrySession": "ocistore.registry.session",
    "RetryPolicy": "ocistore.registry.transport",
    "Transport": "ocistore.registry.transport",
}

__all__ = [
    "Authenticator",
    "Challenge",
    "Connections",
    "FetchedManifest",
    "ManifestHead",
    "ParallelFetch",
    "RegistryClient",
    "RegistryHost",
    "RegistryOptions",
    "RegistrySession",
    "RetryPolicy",
    "StaticCredential",
    "Transport",
    "load_hosts",
    "parse_challenges",
    "shared_connections",
]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
