"""The client-side view of the test registries (shared by the registry tests)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocistore.registry import RegistryClient, RetryPolicy, StaticCredential
from ocistore.registry.mirrors import upstream_host
from regfixtures.registry import TEST_PASSWORD, TEST_USER, Registry, TlsFiles, TokenIssuer


@dataclass
class Registries:
    """The four setups; they share one storage directory, so what one holds all serve."""

    plain: Registry
    basic: Registry
    tls: Registry
    token: Registry
    tls_files: TlsFiles
    issuer: TokenIssuer
    storage: Path


@dataclass
class Setup:
    """One registry setup as a client sees it: where, which CA, which credentials."""

    name: str
    registry: Registry
    ca_file: str | None
    credentials: list[StaticCredential]

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` (the registry part of references)."""
        return self.registry.host

    def client(self, **kwargs: Any) -> RegistryClient:
        """A client for this setup with the right CA and credentials."""
        kwargs.setdefault("credentials", self.credentials)
        kwargs.setdefault("ca_file", self.ca_file)
        kwargs.setdefault("retry", FAST_RETRY)
        return RegistryClient(upstream_host(self.host), **kwargs)


FAST_RETRY = RetryPolicy(attempts=4, backoff_initial=0.01, backoff_max=0.05, retry_after_max=2.0)
SETUP_NAMES = ["plain", "basic", "tls", "token"]


def make_setup(registries: Registries, name: str) -> Setup:
    """The client-side view of one of the registries."""
    registry = getattr(registries, name)
    credentials = [StaticCredential(TEST_USER, TEST_PASSWORD)] if name in ("basic", "token") else []
    ca_file = str(registries.tls_files.ca_cert) if name == "tls" else None
    return Setup(name, registry, ca_file, credentials)


def unique_repository(prefix: str = "test") -> str:
    """A repository name no other test uses (the registries share storage)."""
    return f"{prefix}/{uuid.uuid4().hex[:12]}"


class ListSink:
    """A BlobSink in memory, as the store's Ingest would behave."""

    def __init__(self, prefix: bytes = b"") -> None:
        self.data = bytearray(prefix)

    @property
    def offset(self) -> int:
        return len(self.data)

    def write(self, data: bytes | memoryview) -> None:
        self.data += data

    def truncate(self) -> None:
        self.data.clear()
