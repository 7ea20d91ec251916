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

from ocistore.registry.auth import Authenticator, Challenge, StaticCredential, parse_challenges
from ocistore.registry.client import FetchedManifest, ManifestHead, RegistryClient
from ocistore.registry.connections import Connections, shared_connections
from ocistore.registry.mirrors import RegistryHost, load_hosts
from ocistore.registry.options import RegistryOptions
from ocistore.registry.ranges import ParallelFetch
from ocistore.registry.session import RegistrySession
from ocistore.registry.transport import RetryPolicy, Transport

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
