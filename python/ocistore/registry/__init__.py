"""The OCI distribution protocol: a registry client, mirrors, pull, push and copy."""

from __future__ import annotations

from ocistore.registry.auth import Authenticator, Challenge, StaticCredential, parse_challenges
from ocistore.registry.client import FetchedManifest, ManifestHead, RegistryClient
from ocistore.registry.connections import Connections, shared_connections
from ocistore.registry.mirrors import RegistryHost, load_hosts
from ocistore.registry.session import RegistrySession
from ocistore.registry.transport import RetryPolicy, Transport

__all__ = [
    "Authenticator",
    "Challenge",
    "Connections",
    "FetchedManifest",
    "ManifestHead",
    "RegistryClient",
    "RegistryHost",
    "RegistrySession",
    "RetryPolicy",
    "StaticCredential",
    "Transport",
    "load_hosts",
    "parse_challenges",
    "shared_connections",
]
