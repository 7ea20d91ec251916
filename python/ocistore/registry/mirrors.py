"""Registry hosts and mirrors from containerd's ``certs.d/<registry>/hosts.toml`` directories."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import urlsplit

from ocistore._valueclass import valueclass
from ocistore.errors import RegistryError

ALL_CAPABILITIES = frozenset({"pull", "resolve", "push"})
DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"


@valueclass
class RegistryHost:
    """One place to talk to for a registry namespace: a mirror, or the upstream itself."""

    url: str  # the API root, e.g. "https://mirror.example.com/v2"
    namespace: str  # the registry the images belong to, e.g. "docker.io"
    capabilities: frozenset[str] = ALL_CAPABILITIES
    ca_files: tuple[str, ...] = ()
    skip_verify: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    is_upstream: bool = True
    # Whether a failed TLS handshake may retry over plain HTTP (loopback hosts given no scheme).
    http_fallback: bool = False

    @property
    def netloc(self) -> str:
        """``host[:port]`` of the API root."""
        return urlsplit(self.url).netloc

    def can(self, capability: str) -> bool:
        """True if this host may be used for ``pull``, ``resolve`` or ``push``."""
        return capability in self.capabilities

    def with_scheme(self, scheme: str) -> RegistryHost:
        """The same host over another scheme (the loopback plain-HTTP fallback)."""
        parts = urlsplit(self.url)
        url = f"{scheme}://{parts.netloc}{parts.path}"
        return RegistryHost(
            url, self.namespace, self.capabilities, self.ca_files, self.skip_verify,
            self.headers, self.is_upstream, False,
        )  # fmt: skip


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (which may speak plain HTTP)."""
    name = urlsplit(f"//{host}").hostname or host
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def upstream_host(registry: str, *, plain_http: bool | None = None) -> RegistryHost:
    """The registry's own API host (``registry-1.docker.io`` for Docker Hub)."""
    api = DOCKER_HUB_API if registry == DOCKER_HUB else registry
    if plain_http:
        return RegistryHost(f"http://{api}/v2", registry)
    fallback = plain_http is None and is_loopback(api)
    return RegistryHost(f"https://{api}/v2", registry, http_fallback=fallback)


def _host_dirs(config_path: Path, registry: str) -> list[Path]:
    names = []
    if ":" in registry:
        host, _, port = registry.rpartition(":")
        names += [f"{host}_{port}_", registry]
    else:
        names.append(registry)
    names.append("_default")
    return [config_path / name for name in names]


def _api_url(server: str, override_path: bool) -> str:
    if "://" not in server:
        server = "https://" + server
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RegistryError(f"hosts.toml: unusable host URL {server!r}")
    path = parts.path.rstrip("/")
    if not override_path:
        path += "/v2"
    return f"{parts.scheme}://{parts.netloc}{path}"


def _as_list(value: object, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise RegistryError(f"hosts.toml: {what} must be a string or a list of strings")


def _resolve_path(directory: Path, path: str) -> str:
    return path if os.path.isabs(path) else str(directory / path)


def _host_entry(
    directory: Path, url: str, namespace: str, table: dict[str, object], *, upstream: bool
) -> RegistryHost:
    capabilities = table.get("capabilities")
    caps = frozenset(_as_list(capabilities, "capabilities")) if capabilities is not None else None
    if caps is not None and not caps <= ALL_CAPABILITIES:
        raise RegistryError(f"hosts.toml: unknown capabilities {sorted(caps - ALL_CAPABILITIES)}")
    headers: list[tuple[str, str]] = []
    header_table = table.get("header") or {}
    if not isinstance(header_table, dict):
        raise RegistryError("hosts.toml: header must be a table")
    for name, value in header_table.items():
        headers += [(name, v) for v in _as_list(value, f"header {name}")]
    skip_verify = table.get("skip_verify", False)
    if not isinstance(skip_verify, bool):
        raise RegistryError("hosts.toml: skip_verify must be true or false")
    override_path = table.get("override_path", False)
    if not isinstance(override_path, bool):
        raise RegistryError("hosts.toml: override_path must be true or false")
    ca_files = tuple(_resolve_path(directory, p) for p in _as_list(table.get("ca"), "ca"))
    return RegistryHost(
        url=_api_url(url, override_path),
        namespace=namespace,
        capabilities=caps if caps is not None else ALL_CAPABILITIES,
        ca_files=ca_files,
        skip_verify=skip_verify,
        headers=tuple(headers),
        is_upstream=upstream,
    )


def load_hosts(
    registry: str,
    config_path: str | os.PathLike[str] | None = None,
    *,
    plain_http: bool | None = None,
) -> list[RegistryHost]:
    """The hosts to try for ``registry``, mirrors first, upstream (``server``) last.

    Reads ``config_path/<registry>/hosts.toml`` (or ``host_port_``, or ``_default``) as containerd
    does; without one, Docker-style ``*.crt`` files in that directory are trusted as CAs.
    """
    default = upstream_host(registry, plain_http=plain_http)
    if config_path is None:
        return [default]
    for directory in _host_dirs(Path(config_path), registry):
        hosts_file = directory / "hosts.toml"
        if hosts_file.is_file():
            return _parse_hosts_file(hosts_file, registry, default)
        if directory.is_dir() and directory.name != "_default":
            cas = tuple(sorted(str(p) for p in directory.glob("*.crt")))
            if cas:
                return [RegistryHost(default.url, registry, ca_files=cas, http_fallback=False)]
    return [default]


def _parse_hosts_file(path: Path, registry: str, default: RegistryHost) -> list[RegistryHost]:
    import tomllib  # only with a hosts.toml (--hosts-dir)

    try:
        document = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise RegistryError(f"{path}: cannot read hosts.toml: {error}") from None
    hosts: list[RegistryHost] = []
    host_tables = document.get("host") or {}
    if not isinstance(host_tables, dict):
        raise RegistryError(f"{path}: [host] must be a table of hosts")
    for url, table in host_tables.items():
        if not isinstance(table, dict):
            raise RegistryError(f"{path}: host {url!r} must be a table")
        hosts.append(_host_entry(path.parent, url, registry, table, upstream=False))
    server = document.get("server")
    if server is not None:
        if not isinstance(server, str):
            raise RegistryError(f"{path}: server must be a string")
        top = {k: v for k, v in document.items() if k not in ("server", "host")}
        entry = _host_entry(path.parent, server, registry, top, upstream=True)
        hosts.append(entry)
    else:
        hosts.append(default)
    return hosts
