"""A fleet's mirror list: peers found in DNS (a headless Service's A records) into hosts.toml.

Each node lists its peers' ``ocistore serve`` endpoints before the upstream registry, in the
``certs.d/<registry>/hosts.toml`` that containerd and ``ocistore pull --hosts-dir`` both read.
The node's own addresses are left out (it would only ask itself for what it lacks).
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path

from ocistore.errors import OciStoreError
from ocistore.reference import Reference

__all__ = ["discover_peers", "hosts_toml", "is_local_address", "write_hosts_toml"]

Resolver = Callable[[str], list[str]]


class PeerDiscoveryError(OciStoreError):
    """The peers' DNS name could not be resolved."""


def _resolve_ipv4(name: str) -> list[str]:
    try:
        answers = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise PeerDiscoveryError(f"cannot resolve peers from {name!r}: {error}") from None
    return [str(answer[4][0]) for answer in answers]


def is_local_address(address: str) -> bool:
    """Whether ``address`` belongs to this host (binding to it succeeds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError as error:
            if error.errno == errno.EADDRNOTAVAIL:
                return False
            raise
    return True


def discover_peers(
    name: str, port: int, *, resolve: Resolver = _resolve_ipv4, scheme: str = "http"
) -> list[str]:
    """The mirror URLs of every peer ``name`` resolves to, this node's own addresses left out."""
    addresses = sorted({ipaddress.IPv4Address(a) for a in resolve(name)})
    return [f"{scheme}://{a}:{port}" for a in addresses if not is_local_address(str(a))]


def hosts_toml(
    upstream: str, mirrors: Sequence[str], capabilities: Sequence[str] = ("pull",)
) -> str:
    """A ``hosts.toml``: the mirrors in order, then ``upstream`` (a URL) as the server."""
    quoted = ", ".join(json.dumps(c) for c in capabilities)
    lines = [f"server = {json.dumps(upstream)}", ""]
    for mirror in mirrors:
        lines += [f"[host.{json.dumps(mirror)}]", f"  capabilities = [{quoted}]", ""]
    return "\n".join(lines)


def write_hosts_toml(hosts_dir: Path, registry: str, text: str) -> Path:
    """Writes ``hosts_dir/<registry>/hosts.toml`` atomically (readers never see half a file)."""
    Reference(registry, "mirror/hosts")  # a registry host, never a path
    directory = hosts_dir / registry
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "hosts.toml"
    temporary = directory / f".hosts.toml.{os.getpid()}"
    temporary.write_text(text)
    os.replace(temporary, target)
    return target
