"""kubelet image credential provider plugins (``--image-credential-provider-config``).

A ``CredentialProviderConfig`` (``kubelet.config.k8s.io/v1``, also v1beta1/v1alpha1; YAML or
JSON; a file or a directory of ``*.json``/``*.yaml``/``*.yml`` merged in name order) lists
plugins. For an image that one of a plugin's ``matchImages`` patterns matches (the keyring's
matcher), kubelet runs ``<bin_dir>/<name> <args>`` with a ``CredentialProviderRequest`` on stdin
(environment: its own plus the configured ``env``), waits at most a minute, strictly decodes the
``CredentialProviderResponse`` (same apiVersion as configured) and caches it by ``cacheKeyType``
(``Image``, ``Registry`` or ``Global``) for ``cacheDuration`` or the configured
``defaultCacheDuration`` (0 = do not cache). A failing plugin yields no credentials; ocistore
keeps the error so ``ocistore auth which`` can show it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ocistore._core import url_match_problem, url_matches
from ocistore._log import get_logger
from ocistore._valueclass import field, valueclass
from ocistore.credentials._gojson import go_json_dumps
from ocistore.credentials.dockerconfig import DockerConfigEntry
from ocistore.errors import CredentialProviderError

__all__ = [
    "CredentialProvider",
    "CredentialProviderConfig",
    "CredentialProviderResponse",
    "ProviderPlugin",
    "parse_go_duration",
]

log = get_logger(__name__)

CONFIG_GROUP = "kubelet.config.k8s.io"
CONFIG_VERSIONS = ("v1", "v1beta1", "v1alpha1")
PLUGIN_API_VERSIONS = (
    "credentialprovider.kubelet.k8s.io/v1",
    "credentialprovider.kubelet.k8s.io/v1beta1",
    "credentialprovider.kubelet.k8s.io/v1alpha1",
)
CACHE_KEY_TYPES = ("Image", "Registry", "Global")
GLOBAL_CACHE_KEY = "global"
CACHE_PURGE_INTERVAL = 15 * 60.0
DEFAULT_PLUGIN_TIMEOUT = 60.0
_MAX_RESPONSE = 10 * 1024 * 1024

_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string (``"1m30s"``, ``"0"``, ``"-1.5h"``); ValueError if bad."""
    if not isinstance(text, str):
        raise ValueError("a duration must be a string like '5m'")
    rest = text
    sign = 1.0
    if rest[:1] in ("+", "-"):
        sign = -1.0 if rest[0] == "-" else 1.0
        rest = rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise ValueError(f"invalid duration {text!r}")
    total = 0.0
    position = 0
    while position < len(rest):
        part = _DURATION_PART.match(rest, position)
        if part is None:
            raise ValueError(f"invalid duration {text!r}")
        total += float(part.group(1)) * _DURATION_UNITS[part.group(2)]
        position = part.end()
    return sign * total


@valueclass
class CredentialProvider:
    """One plugin of a ``CredentialProviderConfig``."""

    name: str
    match_images: tuple[str, ...]
    default_cache_duration: float
    api_version: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    require_service_account: bool | None = None


def _strict_keys(obj: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown field {unknown[0]!r}")


def _provider(raw: Any, index: int) -> CredentialProvider:
    where = f"providers[{index}]"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be an object")
    _strict_keys(
        raw,
        (
            "name",
            "matchImages",
            "defaultCacheDuration",
            "apiVersion",
            "args",
            "env",
            "tokenAttributes",
        ),
        where,
    )
    name = raw.get("name") or ""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}.name is required")
    if "/" in name or " " in name or name in (".", ".."):
        raise ValueError(f"{where}.name {name!r} is invalid (no '/', no spaces, not . or ..)")
    api_version = raw.get("apiVersion") or ""
    if not api_version:
        raise ValueError(f"{where}.apiVersion is required")
    if api_version not in PLUGIN_API_VERSIONS:
        raise ValueError(
            f"{where}.apiVersion {api_version!r} is not supported "
            f"(supported: {', '.join(sorted(PLUGIN_API_VERSIONS))})"
        )
    match_images = raw.get("matchImages") or []
    if not isinstance(match_images, list) or not match_images:
        raise ValueError(f"{where}.matchImages: at least 1 item in matchImages is required")
    for pattern in match_images:
        if not isinstance(pattern, str):
            raise ValueError(f"{where}.matchImages entries must be strings")
        problem = url_match_problem(pattern)
        # Only URL parse errors invalidate the config; kubelet does not pre-check glob syntax.
        if problem is not None and problem != "syntax error in pattern":
            raise ValueError(f"{where}.matchImages {pattern!r}: match image is invalid: {problem}")
    if "defaultCacheDuration" not in raw or raw["defaultCacheDuration"] is None:
        raise ValueError(f"{where}.defaultCacheDuration is required")
    duration = parse_go_duration(raw["defaultCacheDuration"])
    if duration < 0:
        raise ValueError(f"{where}.defaultCacheDuration must be greater than or equal to 0")
    args = raw.get("args") or []
    if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
        raise ValueError(f"{where}.args must be a list of strings")
    env_items: list[tuple[str, str]] = []
    for item in raw.get("env") or []:
        if not isinstance(item, Mapping):
            raise ValueError(f"{where}.env entries must be objects")
        _strict_keys(item, ("name", "value"), f"{where}.env")
        env_name, env_value = item.get("name"), item.get("value", "")
        if not isinstance(env_name, str) or not env_name or not isinstance(env_value, str):
            raise ValueError(f"{where}.env entries need a name and a string value")
        env_items.append((env_name, env_value))
    require_sa: bool | None = None
    token_attributes = raw.get("tokenAttributes")
    if token_attributes is not None:
        if not isinstance(token_attributes, Mapping):
            raise ValueError(f"{where}.tokenAttributes must be an object")
        if api_version != PLUGIN_API_VERSIONS[0]:
            raise ValueError(
                f"{where}.tokenAttributes is only supported for {PLUGIN_API_VERSIONS[0]}"
            )
        if not token_attributes.get("serviceAccountTokenAudience"):
            raise ValueError(f"{where}.tokenAttributes.serviceAccountTokenAudience is required")
        require = token_attributes.get("requireServiceAccount")
        if not isinstance(require, bool):
            raise ValueError(f"{where}.tokenAttributes.requireServiceAccount is required")
        require_sa = require
    return CredentialProvider(
        name=name,
        match_images=tuple(match_images),
        default_cache_duration=duration,
        api_version=api_version,
        args=tuple(args),
        env=tuple(env_items),
        require_service_account=require_sa,
    )


@valueclass
class CredentialProviderConfig:
    """The plugins of a kubelet ``CredentialProviderConfig``, in configuration order."""

    providers: tuple[CredentialProvider, ...]

    @classmethod
    def parse(cls, data: str | bytes, *, origin: str = "<config>") -> CredentialProviderConfig:
        """Decodes and validates one config document (YAML or JSON), strictly like kubelet."""
        import yaml  # only here: most runs never parse YAML

        try:
            document = yaml.safe_load(data)
        except yaml.YAMLError:
            raise CredentialProviderError(f"{origin}: not valid YAML or JSON") from None
        try:
            if not isinstance(document, Mapping):
                raise ValueError("the config must be an object")
            api_version = document.get("apiVersion")
            group, _, version = str(api_version or "").partition("/")
            if group != CONFIG_GROUP or version not in CONFIG_VERSIONS:
                raise ValueError(f"apiVersion {api_version!r} is not {CONFIG_GROUP}/v1")
            if document.get("kind") != "CredentialProviderConfig":
                raise ValueError(f"kind {document.get('kind')!r} is not CredentialProviderConfig")
            _strict_keys(document, ("apiVersion", "kind", "providers"), "config")
            raw = document.get("providers") or []
            if not isinstance(raw, list) or not raw:
                raise ValueError("providers: at least 1 item in plugins is required")
            providers = tuple(_provider(item, i) for i, item in enumerate(raw))
        except ValueError as err:
            raise CredentialProviderError(f"{origin}: {err}") from None
        cls._check_unique(providers, origin)
        return cls(providers)

    @staticmethod
    def _check_unique(providers: Sequence[CredentialProvider], origin: str) -> None:
        seen: set[str] = set()
        for provider in providers:
            if provider.name in seen:
                raise CredentialProviderError(
                    f"{origin}: duplicate provider name {provider.name!r}"
                )
            seen.add(provider.name)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CredentialProviderConfig:
        """Reads a config file, or every ``*.json``/``*.yaml``/``*.yml`` of a directory."""
        location = Path(path)
        try:
            if location.is_dir():
                files = sorted(
                    str(p)
                    for p in location.iterdir()
                    if not p.is_dir() and p.suffix in (".json", ".yaml", ".yml")
                )
                if not files:
                    raise CredentialProviderError(
                        f"no configuration files found in directory {location}"
                    )
            else:
                files = [str(location)]
            providers: list[CredentialProvider] = []
            for name in files:
                providers.extend(cls.parse(Path(name).read_bytes(), origin=name).providers)
        except OSError as err:
            raise CredentialProviderError(
                f"{location}: cannot read: {err.strerror or err}"
            ) from None
        cls._check_unique(providers, str(location))
        return cls(tuple(providers))


@valueclass(repr=False)
class CredentialProviderResponse:
    """A decoded plugin answer; ``auth`` maps matchImages-style keys to credentials."""

    cache_key_type: str
    cache_duration: float | None
    auth: Mapping[str, DockerConfigEntry] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"CredentialProviderResponse(cache_key_type={self.cache_key_type!r}, "
            f"keys={list(self.auth)!r})"
        )


def _decode_response(data: bytes, api_version: str) -> CredentialProviderResponse:
    """Strict decoding; errors never quote the body (it may hold credentials)."""
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CredentialProviderError("error reading GVK from response: not valid JSON") from None
    if not isinstance(document, dict):
        raise CredentialProviderError("error reading GVK from response: not an object")
    actual = document.get("apiVersion")
    if actual != api_version:
        shown = actual if isinstance(actual, str) else ""
        raise CredentialProviderError(
            "apiVersion from credential plugin response did not match expected apiVersion:"
            f"{api_version}, actual apiVersion:{shown}"
        )
    undecodable = CredentialProviderError(
        "error decoding credential provider plugin response from stdout"
    )
    if set(document) - {"kind", "apiVersion", "cacheKeyType", "cacheDuration", "auth"}:
        raise undecodable
    if document.get("kind") != "CredentialProviderResponse":
        raise undecodable
    cache_key_type = document.get("cacheKeyType")
    duration: float | None = None
    if document.get("cacheDuration") is not None:
        try:
            duration = parse_go_duration(document["cacheDuration"])
        except ValueError:
            raise undecodable from None
    auth_raw = document.get("auth") or {}
    if not isinstance(auth_raw, dict):
        raise undecodable
    auth: dict[str, DockerConfigEntry] = {}
    for key, value in auth_raw.items():
        if not isinstance(value, dict) or set(value) - {"username", "password"}:
            raise undecodable
        username, password = value.get("username") or "", value.get("password") or ""
        if not isinstance(username, str) or not isinstance(password, str):
            raise undecodable
        auth[key] = DockerConfigEntry(username=username, password=password)
    if cache_key_type not in CACHE_KEY_TYPES:
        raise CredentialProviderError(
            f"credential provider plugin did not return a valid cacheKeyType: {cache_key_type!r}"
        )
    return CredentialProviderResponse(str(cache_key_type), duration, auth)


class _Flight:
    """One running plugin call that later callers for the same image wait for."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.waiters = 0
        self.response: CredentialProviderResponse | None = None
        self.error: CredentialProviderError | None = None


def _parse_registry(image: str) -> str:
    return image.split("/", 1)[0]


class ProviderPlugin:
    """One configured plugin: runs it for allowed images and caches its answers like kubelet."""

    def __init__(
        self,
        provider: CredentialProvider,
        bin_dir: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = DEFAULT_PLUGIN_TIMEOUT,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.provider = provider
        self.executable = Path(bin_dir) / provider.name
        if not (self.executable.is_file() and os.access(self.executable, os.X_OK)):
            raise CredentialProviderError(
                f"plugin binary executable {self.executable} did not exist"
            )
        self._clock = clock
        self._timeout = timeout
        self._environ = environ
        self._cache: dict[str, tuple[float, dict[str, DockerConfigEntry]]] = {}
        self._lock = threading.Lock()
        self._inflight: dict[str, _Flight] = {}
        self._last_purge = clock()
        self.last_error: CredentialProviderError | None = None
        self.exec_count = 0

    @property
    def name(self) -> str:
        """The plugin's name (its executable's name)."""
        return self.provider.name

    def allows(self, image: str) -> bool:
        """Whether any ``matchImages`` pattern matches ``image`` (kubelet's ``isImageAllowed``)."""
        return any(url_matches(pattern, image) for pattern in self.provider.match_images)

    def _cached(self, image: str) -> dict[str, DockerConfigEntry] | None:
        now = self._clock()
        with self._lock:
            if now > self._last_purge + CACHE_PURGE_INTERVAL:
                self._cache = {k: v for k, v in self._cache.items() if not now > v[0]}
                self._last_purge = now
            for key in (image, _parse_registry(image), GLOBAL_CACHE_KEY):
                hit = self._cache.get(key)
                if hit is None:
                    continue
                if now > hit[0]:  # expired entries are dropped when looked at
                    del self._cache[key]
                    continue
                return hit[1]
        return None

    def request(self, image: str) -> CredentialProviderResponse:
        """Runs the plugin for ``image`` (no cache); CredentialProviderError if it fails."""
        request = go_json_dumps(
            {
                "kind": "CredentialProviderRequest",
                "apiVersion": self.provider.api_version,
                "image": image,
            }
        )
        environment = dict(os.environ if self._environ is None else self._environ)
        environment.update(self.provider.env)  # configured variables override inherited ones
        self.exec_count += 1
        log.debug("running credential provider plugin %s for %s", self.name, image)
        try:
            result = subprocess.run(
                [str(self.executable), *self.provider.args],
                input=(request + "\n").encode("utf-8"),
                capture_output=True,
                timeout=self._timeout,
                env=environment,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise CredentialProviderError(
                f"error execing credential provider plugin {self.name} for image {image}: "
                f"timed out after {self._timeout:g}s"
            ) from None
        except OSError as err:
            raise CredentialProviderError(
                f"error execing credential provider plugin {self.name} for image {image}: {err}"
            ) from None
        if result.returncode != 0:
            stderr = result.stderr.decode("utf-8", errors="replace").strip()[:500]
            raise CredentialProviderError(
                f"error execing credential provider plugin {self.name} for image {image}: "
                f"exit status {result.returncode}: {stderr}"
            )
        if len(result.stdout) > _MAX_RESPONSE:
            raise CredentialProviderError(
                f"credential provider plugin {self.name}: answer too large"
            )
        try:
            return _decode_response(result.stdout, self.provider.api_version)
        except CredentialProviderError as err:
            raise CredentialProviderError(f"plugin {self.name}: {err}") from None

    def _request_once(self, image: str) -> CredentialProviderResponse:
        """``request``, with concurrent calls for one image sharing one run (singleflight)."""
        with self._lock:
            flight = self._inflight.get(image)
            leader = flight is None
            if flight is None:
                flight = self._inflight[image] = _Flight()
            else:
                flight.waiters += 1
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            assert flight.response is not None
            return flight.response
        try:
            flight.response = self.request(image)
            return flight.response
        except CredentialProviderError as err:
            flight.error = err
            raise
        finally:
            with self._lock:
                del self._inflight[image]
            flight.done.set()

    def provide(self, image: str) -> dict[str, DockerConfigEntry]:
        """kubelet's ``provide``: cached or fresh credentials, {} when not allowed or failing."""
        if not self.allows(image):
            return {}
        if self.provider.require_service_account:
            return {}  # service-account mode without a pod service account: kubelet skips it
        cached = self._cached(image)
        if cached is not None:
            return cached
        try:
            response = self._request_once(image)
        except CredentialProviderError as err:
            self.last_error = err
            log.warning("%s", err)
            return {}
        self.last_error = None
        credentials = dict(response.auth)
        if response.cache_duration is not None and response.cache_duration == 0:
            return credentials
        duration = response.cache_duration
        if duration is None:
            if self.provider.default_cache_duration == 0:
                return credentials
            duration = self.provider.default_cache_duration
        key = {
            "Image": image,
            "Registry": _parse_registry(image),
            "Global": GLOBAL_CACHE_KEY,
        }[response.cache_key_type]
        with self._lock:
            self._cache[key] = (self._clock() + duration, credentials)
        return credentials
