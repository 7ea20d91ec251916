"""kubelet's credential keyring: which credentials a pull tries, in which order, and from where.

A :class:`Keyring` is an ordered union of parts, exactly like kubelet's ``UnionDockerKeyring``:
for a pod kubelet tries the pull secrets' credentials (all secrets in one keyring), then the
node's docker config file, then the exec plugins' (``Keyring.merge(secrets, node, plugins)``).
Within a part, every key matching the image contributes, keys in reverse byte order (so
``quay.io/coreos`` before ``quay.io``), and an ``index.docker.io`` key serves Docker Hub images
when nothing else matched. Matching is the Rust :class:`~ocistore.credentials.CredentialMatcher`.

``lookup`` takes what kubelet passes: the normalized repository name without tag or digest
(``docker.io/library/nginx``); :func:`normalize_repository` turns a user's reference into it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal, Protocol

from ocistore._core import CredentialMatcher, url_matches
from ocistore._log import get_logger
from ocistore._valueclass import field, valueclass
from ocistore.credentials._gojson import go_json_dumps
from ocistore.credentials.dockerconfig import (
    DockerConfig,
    DockerConfigEntry,
    read_docker_config,
)
from ocistore.credentials.helpers import helper_server_url, run_credential_helper
from ocistore.credentials.nodepaths import DEFAULT_KUBELET_ROOT, node_docker_config_paths
from ocistore.credentials.provider import (
    DEFAULT_PLUGIN_TIMEOUT,
    CredentialProviderConfig,
    ProviderPlugin,
)
from ocistore.credentials.secrets import PullSecret, parse_pull_secret
from ocistore.errors import CredentialError
from ocistore.reference import Reference

__all__ = [
    "Credential",
    "CredentialReport",
    "CredentialSource",
    "Keyring",
    "hash_auth_config",
    "node_docker_config_paths",
    "normalize_repository",
]

log = get_logger(__name__)

SourceKind = Literal["docker-config", "secret", "plugin", "helper", "static"]


@valueclass
class CredentialSource:
    """Where a credential came from: a file, a pull secret, a plugin or a docker helper."""

    kind: SourceKind
    name: str
    namespace: str = ""
    uid: str = ""

    @property
    def used_by_kubelet(self) -> bool:
        """False for Docker credential helpers, which kubelet never runs."""
        return self.kind != "helper"

    @property
    def node_wide(self) -> bool:
        """Whether kubelet treats it as node-wide (no Source), i.e. not a pod's secret."""
        return self.kind != "secret"

    def __str__(self) -> str:
        if self.kind == "secret":
            where = f"{self.namespace}/{self.name}" if self.namespace else self.name
            return f"secret {where}"
        label = {"docker-config": "file", "plugin": "plugin", "helper": "helper"}
        return f"{label.get(self.kind, self.kind)} {self.name}"


def hash_auth_config(username: str, password: str, email: str = "") -> str:
    """kubelet's ``hashAuthConfig``: hex SHA-256 of the Go JSON of the AuthConfig it built."""
    fields = {"username": username, "password": password, "email": email}
    return hashlib.sha256(
        go_json_dumps({k: v for k, v in fields.items() if v}).encode("utf-8")
    ).hexdigest()


@valueclass(repr=False)
class Credential:
    """A registry credential and its origin; ``repr``/``str`` never show the secret."""

    username: str
    password: str = field(repr=False)
    source: CredentialSource
    key: str
    location: str
    email: str = ""
    identity_token: str = field(default="", repr=False)
    registry_token: str = field(default="", repr=False)

    @property
    def hash(self) -> str:
        """kubelet's AuthConfigHash for this credential (stable across runs, for pull records)."""
        return hash_auth_config(self.username, self.password, self.email)

    def __repr__(self) -> str:
        return (
            f"Credential(username={self.username!r}, key={self.key!r}, source={str(self.source)!r})"
        )

    def __str__(self) -> str:
        who = f"user {self.username!r}" if self.username else "token"
        return f"{who} from {self.source} (key {self.key!r})"


def normalize_repository(image: str) -> str:
    """The repository kubelet looks credentials up for (``docker.io/library/nginx`` for nginx:1).

    This is ``ParseImageName``'s ``repoToPull``; InvalidReferenceError if ``image`` is invalid.
    """
    return Reference.parse(image.strip()).name


class _Part(Protocol):
    def lookup(self, image: str, notes: list[str]) -> list[Credential]: ...

    def describe(self) -> str: ...


class _StaticPart:
    """One of kubelet's BasicDockerKeyrings: fixed entries, compiled once."""

    def __init__(self, entries: Sequence[tuple[str, DockerConfigEntry, CredentialSource]]):
        self._entries = list(entries)
        self._matcher = CredentialMatcher(
            [location for location, _, _ in self._entries],
            config_keys=True,
            docker_hub_fallback=True,
        )
        self._credentials: list[Credential] = []
        for index, (location, entry, source) in enumerate(self._entries):
            key = self._matcher.key(index)
            self._credentials.append(
                Credential(
                    username=entry.username,
                    password=entry.password,
                    source=source,
                    key=key if key is not None else location,
                    location=location,
                    email=entry.email,
                    identity_token=entry.identity_token,
                    registry_token=entry.registry_token,
                )
            )

    def lookup(self, image: str, notes: list[str]) -> list[Credential]:
        return [self._credentials[i] for i in self._matcher.lookup(image)]

    def explain(self, image: str, notes: list[str]) -> None:
        host = image.split("/", 1)[0]
        found = self._matcher.lookup(image)
        if found and all(
            self._credentials[i].key == "index.docker.io"
            and not url_matches("index.docker.io", image)
            for i in found
        ):
            notes.append(
                "the index.docker.io entry applies through kubelet's Docker Hub fallback "
                "(used only when no other key of the same source matches)"
            )
        for index, credential in enumerate(self._credentials):
            problem = self._matcher.problem(index)
            if problem is not None:
                notes.append(
                    f"key '{credential.location}' in {credential.source} is never used by "
                    f"kubelet: {problem}"
                )
                continue
            key_host = credential.key.split("/", 1)[0]
            if (
                "*" in key_host
                and not url_matches(credential.key, image)
                and fnmatch.fnmatchcase(host, key_host)
            ):
                notes.append(
                    f"key '{credential.key}' in {credential.source} does not match {host}: "
                    "kubelet requires the same number of host labels ('*' never spans a dot), "
                    "unlike some versions of the Kubernetes Images page"
                )

    def describe(self) -> str:
        sources = {str(source) for _, _, source in self._entries}
        return ", ".join(sorted(sources)) or "no entries"

    def __len__(self) -> int:
        return len(self._entries)


class _PluginPart:
    """kubelet's plugin keyring: every allowed plugin asked, answers in one BasicDockerKeyring."""

    def __init__(self, plugins: Sequence[ProviderPlugin]):
        self.plugins = list(plugins)

    def lookup(self, image: str, notes: list[str]) -> list[Credential]:
        entries: list[tuple[str, DockerConfigEntry, CredentialSource]] = []
        for plugin in self.plugins:
            provided = plugin.provide(image)
            if plugin.last_error is not None and plugin.allows(image):
                notes.append(f"plugin {plugin.name} failed: {plugin.last_error}")
            source = CredentialSource("plugin", plugin.name)
            entries.extend((key, entry, source) for key, entry in provided.items())
        return _StaticPart(entries).lookup(image, notes) if entries else []

    def describe(self) -> str:
        return ", ".join(f"plugin {plugin.name}" for plugin in self.plugins)


class _HelperPart:
    """Docker's credential helpers for one config file (Docker behaviour; kubelet has none)."""

    def __init__(self, config: DockerConfig, env: Mapping[str, str] | None = None):
        self._config = config
        self._env = env

    def lookup(self, image: str, notes: list[str]) -> list[Credential]:
        registry = image.split("/", 1)[0]
        server = helper_server_url(registry)
        helpers = self._config.cred_helpers
        name = helpers.get(server) or helpers.get(registry) or self._config.creds_store
        if not name:
            return []
        try:
            answer = run_credential_helper(name, server, env=self._env)
        except CredentialError as err:
            notes.append(str(err))
            log.warning("%s", err)
            return []
        if answer is None:
            return []
        token = answer.secret if answer.is_identity_token else ""
        return [
            Credential(
                username="" if answer.is_identity_token else answer.username,
                password="" if answer.is_identity_token else answer.secret,
                source=CredentialSource("helper", f"docker-credential-{name}"),
                key=server,
                location=server,
                identity_token=token,
            )
        ]

    def describe(self) -> str:
        return f"credential helpers of {self._config.origin}"


@valueclass
class CredentialReport:
    """What ``ocistore auth which IMAGE`` shows: credentials in try order, and why not others."""

    image: str
    repository: str
    credentials: tuple[Credential, ...]
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        lines = [f"image {self.image} (credentials looked up for {self.repository})"]
        if not self.credentials:
            lines.append("  no credential matches: the pull is anonymous")
        for number, credential in enumerate(self.credentials, 1):
            extra = "" if credential.source.used_by_kubelet else " [not used by kubelet]"
            lines.append(f"  {number}. {credential}{extra}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def _config_entries(
    config: DockerConfig, source: CredentialSource
) -> list[tuple[str, DockerConfigEntry, CredentialSource]]:
    return [(key, entry, source) for key, entry in config.auths.items()]


class Keyring:
    """Every credential source kubelet would consult, in kubelet's order."""

    def __init__(self, parts: Iterable[_Part] = ()) -> None:
        self._parts: tuple[_Part, ...] = tuple(parts)
        self.notes: list[str] = []

    @classmethod
    def empty(cls) -> Keyring:
        """A keyring without credentials (every pull anonymous)."""
        return cls()

    @classmethod
    def from_entries(
        cls, entries: Mapping[str, DockerConfigEntry], *, source: str = "static"
    ) -> Keyring:
        """A keyring of explicit ``{key: entry}`` pairs (one BasicDockerKeyring)."""
        origin = CredentialSource("static", source)
        return cls([_StaticPart([(k, e, origin) for k, e in entries.items()])])

    @classmethod
    def from_docker_config(
        cls,
        path: str | os.PathLike[str],
        *,
        helpers: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> Keyring:
        """The entries of one docker config file (plus, if asked, its Docker credential helpers)."""
        config = read_docker_config(path)
        source = CredentialSource("docker-config", config.origin)
        parts: list[_Part] = [_StaticPart(_config_entries(config, source))]
        if helpers and (config.cred_helpers or config.creds_store):
            parts.append(_HelperPart(config, env))
        return cls(parts)

    @classmethod
    def from_node_defaults(
        cls,
        preferred_dir: str | os.PathLike[str] | None = DEFAULT_KUBELET_ROOT,
        *,
        working_dir: str | os.PathLike[str] | None = None,
        home: str | os.PathLike[str] | None = None,
        root: str | os.PathLike[str] = "/",
    ) -> Keyring:
        """The node's docker config as kubelet finds it: the first file that exists and parses."""
        candidates = node_docker_config_paths(
            preferred_dir, working_dir=working_dir, home=home, root=root
        )
        skipped: list[str] = []
        for path in candidates:
            if not path.exists():
                continue
            try:
                config = read_docker_config(path)
            except CredentialError as err:
                skipped.append(f"skipped {err}")  # kubelet moves on to the next candidate
                continue
            source = CredentialSource("docker-config", str(path))
            keyring = cls([_StaticPart(_config_entries(config, source))])
            keyring.notes.extend(skipped)
            return keyring
        keyring = cls()
        keyring.notes.extend(skipped)
        keyring.notes.append(
            "no valid docker config found (checked " + ", ".join(map(str, candidates)) + ")"
        )
        return keyring

    @classmethod
    def from_docker_client_defaults(cls, *, env: Mapping[str, str] | None = None) -> Keyring:
        """What the Docker CLI uses: ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``."""
        environment = os.environ if env is None else env
        directory = environment.get("DOCKER_CONFIG") or os.path.join(
            environment.get("HOME", os.path.expanduser("~")), ".docker"
        )
        path = Path(directory) / "config.json"
        if not path.exists():
            return cls()
        return cls.from_docker_config(path, helpers=True, env=env)

    @classmethod
    def from_secrets(
        cls, secrets: Iterable[PullSecret | Mapping[str, object]], *, strict: bool = True
    ) -> Keyring:
        """A pod's ``imagePullSecrets`` in order, as one keyring (``MakeDockerKeyring``)."""
        entries: list[tuple[str, DockerConfigEntry, CredentialSource]] = []
        for item in secrets:
            secret = (
                item if isinstance(item, PullSecret) else parse_pull_secret(item, strict=strict)
            )
            if secret is None:
                continue
            source = CredentialSource("secret", secret.name, secret.namespace, secret.uid)
            entries.extend(_config_entries(secret.config, source))
        return cls([_StaticPart(entries)]) if entries else cls()

    @classmethod
    def from_provider_config(
        cls,
        config: CredentialProviderConfig | str | os.PathLike[str],
        bin_dir: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = DEFAULT_PLUGIN_TIMEOUT,
        environ: Mapping[str, str] | None = None,
    ) -> Keyring:
        """kubelet's exec plugins (``--image-credential-provider-config`` and ``-bin-dir``)."""
        if not isinstance(config, CredentialProviderConfig):
            config = CredentialProviderConfig.load(config)
        plugins = [
            ProviderPlugin(provider, bin_dir, clock=clock, timeout=timeout, environ=environ)
            for provider in config.providers
        ]
        return cls([_PluginPart(plugins)])

    @classmethod
    def merge(cls, *keyrings: Keyring | None) -> Keyring:
        """A union tried in order, as kubelet unions secrets, node config and plugins."""
        present = [keyring for keyring in keyrings if keyring is not None]
        merged = cls([part for keyring in present for part in keyring._parts])
        for keyring in present:
            merged.notes.extend(keyring.notes)
        return merged

    def lookup(self, image: str) -> list[Credential]:
        """Every credential kubelet would try for the repository ``image``, in its order."""
        found: list[Credential] = []
        notes: list[str] = []
        for part in self._parts:
            found.extend(part.lookup(image, notes))
        for credential in found:
            log.debug("credential candidate for %s: %s", image, credential)
        return found

    def attempts(self, image: str) -> list[Credential | None]:
        """What a pull tries in order: each matching credential, or anonymous (None) if none.

        kubelet pulls anonymously only when no credential matches; when some match and all of
        them fail, the pull fails (it does not fall back to anonymous).
        """
        found: list[Credential | None] = list(self.lookup(image))
        return found or [None]

    def which(self, image: str) -> CredentialReport:
        """The credentials a pull of ``image`` would try, their sources, and notes on the rest."""
        repository = normalize_repository(image)
        notes: list[str] = list(self.notes)
        found: list[Credential] = []
        for part in self._parts:
            found.extend(part.lookup(repository, notes))
            if isinstance(part, _StaticPart):
                part.explain(repository, notes)
        return CredentialReport(image, repository, tuple(found), tuple(notes))

    def __repr__(self) -> str:
        return f"Keyring({'; '.join(part.describe() for part in self._parts) or 'empty'})"
