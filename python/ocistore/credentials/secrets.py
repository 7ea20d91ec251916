"""Kubernetes image pull secrets: reading them as kubelet does, and writing them as kubectl does.

kubelet (``pkg/credentialprovider/secrets``) uses a Secret of type
``kubernetes.io/dockerconfigjson`` through its ``.dockerconfigjson`` key and one of type
``kubernetes.io/dockercfg`` through ``.dockercfg``; other secrets are silently skipped, while
malformed content fails the pull. ocistore reports a wrong type or a missing key as a
:class:`~ocistore.errors.SecretFormatError` naming the secret (``strict=False`` skips them as
kubelet does). ``data`` values are base64; ``stringData`` values are plain and win, as the API
server merges them.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ocistore._valueclass import valueclass
from ocistore.credentials._gojson import go_json_dumps
from ocistore.credentials.dockerconfig import (
    MAX_CONFIG_BYTES,
    ConfigFormat,
    DockerConfig,
    encode_auth_field,
    parse_docker_config,
)
from ocistore.errors import CredentialError, SecretFormatError

__all__ = [
    "DOCKERCFG_KEY",
    "DOCKERCFG_TYPE",
    "DOCKERCONFIGJSON_KEY",
    "DOCKERCONFIGJSON_TYPE",
    "PullSecret",
    "docker_registry_secret",
    "load_secrets",
    "parse_pull_secret",
    "parse_secrets",
    "secret_from_docker_config",
]

DOCKERCONFIGJSON_TYPE = "kubernetes.io/dockerconfigjson"
DOCKERCONFIGJSON_KEY = ".dockerconfigjson"
DOCKERCFG_TYPE = "kubernetes.io/dockercfg"
DOCKERCFG_KEY = ".dockercfg"
DEFAULT_DOCKER_SERVER = "https://index.docker.io/v1/"


@valueclass
class PullSecret:
    """A usable image pull secret: its coordinates and its parsed docker config."""

    name: str
    namespace: str
    uid: str
    type: str
    config: DockerConfig

    @property
    def display_name(self) -> str:
        """``namespace/name`` (or just the name when there is no namespace)."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


def _describe(document: Mapping[str, Any]) -> str:
    metadata = document.get("metadata")
    if isinstance(metadata, Mapping):
        name = metadata.get("name")
        namespace = metadata.get("namespace")
        if isinstance(name, str) and name:
            return f"{namespace}/{name}" if isinstance(namespace, str) and namespace else name
    return "<unnamed secret>"


def _secret_value(document: Mapping[str, Any], key: str, label: str) -> bytes | None:
    string_data = document.get("stringData")
    if isinstance(string_data, Mapping) and key in string_data:
        value = string_data[key]
        if not isinstance(value, str):
            raise SecretFormatError(f"secret {label}: stringData[{key!r}] is not a string")
        return value.encode("utf-8")
    data = document.get("data")
    if isinstance(data, Mapping) and key in data:
        value = data[key]
        if value is None:
            return b""
        if not isinstance(value, str):
            raise SecretFormatError(f"secret {label}: data[{key!r}] is not a string")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise SecretFormatError(f"secret {label}: data[{key!r}] is not valid base64") from None
    return None


def parse_pull_secret(document: Mapping[str, Any], *, strict: bool = True) -> PullSecret | None:
    """Reads one Secret object; None for a secret kubelet would skip (only when not strict)."""
    if not isinstance(document, Mapping):
        raise SecretFormatError("a secret must be a mapping (a Kubernetes Secret object)")
    label = _describe(document)
    kind = document.get("kind", "Secret")
    if kind != "Secret":
        raise SecretFormatError(f"{label}: kind is {kind!r}, not 'Secret'")
    secret_type = document.get("type", "Opaque")
    config_format: ConfigFormat
    if secret_type == DOCKERCONFIGJSON_TYPE:
        key, config_format = DOCKERCONFIGJSON_KEY, "config.json"
    elif secret_type == DOCKERCFG_TYPE:
        key, config_format = DOCKERCFG_KEY, ".dockercfg"
    else:
        if not strict:
            return None
        raise SecretFormatError(
            f"secret {label}: type {secret_type!r} is not an image pull secret "
            f"(expected {DOCKERCONFIGJSON_TYPE} or {DOCKERCFG_TYPE})"
        )
    raw = _secret_value(document, key, label)
    if not raw:
        if not strict:
            return None
        raise SecretFormatError(f"secret {label}: type {secret_type} but no {key!r} key (or empty)")
    try:
        config = parse_docker_config(raw, origin=f"secret {label} key {key}", format=config_format)
    except CredentialError as err:
        raise SecretFormatError(str(err)) from None
    metadata = document.get("metadata") if isinstance(document.get("metadata"), Mapping) else {}
    assert isinstance(metadata, Mapping)
    return PullSecret(
        name=str(metadata.get("name") or ""),
        namespace=str(metadata.get("namespace") or ""),
        uid=str(metadata.get("uid") or ""),
        type=str(secret_type),
        config=config,
    )


def _documents(loaded: Any) -> Iterable[Any]:
    if isinstance(loaded, Mapping) and isinstance(loaded.get("items"), list):
        yield from loaded["items"]  # a List / SecretList
    elif loaded is not None:
        yield loaded


def parse_secrets(
    text: str | bytes, *, origin: str = "<secrets>", strict: bool = True
) -> list[PullSecret]:
    """Reads Secret objects from YAML or JSON text: one, several documents, or a List."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    import yaml  # only here: most runs never parse YAML

    try:
        loaded = list(yaml.safe_load_all(text))  # JSON is YAML, too
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SecretFormatError(f"{origin}: not valid YAML or JSON{where}") from None
    secrets: list[PullSecret] = []
    for document in (doc for item in loaded for doc in _documents(item)):
        secret = parse_pull_secret(document, strict=strict)
        if secret is not None:
            secrets.append(secret)
    return secrets


def load_secrets(path: str | os.PathLike[str], *, strict: bool = True) -> list[PullSecret]:
    """Reads Secret objects from a YAML or JSON file: one, several documents, or a List."""
    location = Path(path)
    try:
        if location.stat().st_size > MAX_CONFIG_BYTES:
            raise SecretFormatError(f"{location}: larger than {MAX_CONFIG_BYTES} bytes")
        data = location.read_bytes()
    except OSError as err:
        raise SecretFormatError(f"{location}: cannot read: {err.strerror or err}") from None
    return parse_secrets(data, origin=str(location), strict=strict)


def _secret_object(name: str, namespace: str | None, key: str, payload: bytes) -> dict[str, Any]:
    # The field order of kubectl's JSON output (TypeMeta, ObjectMeta, data, type).
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    # kubectl up to 1.33 prints the zero creation time as null; newer releases drop the field.
    metadata["creationTimestamp"] = None
    return {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": metadata,
        "data": {key: base64.b64encode(payload).decode("ascii")},
        "type": DOCKERCONFIGJSON_TYPE,
    }


def docker_registry_secret(
    name: str,
    server: str,
    username: str,
    password: str,
    email: str | None = None,
    namespace: str | None = None,
) -> dict[str, Any]:
    """The Secret ``kubectl create secret docker-registry`` makes (same keys and content)."""
    if not name:
        raise SecretFormatError("name must be specified")
    if not (username and password and server):
        raise SecretFormatError("a username, a password and a server are required")
    entry: dict[str, str] = {"username": username, "password": password}
    if email:
        entry["email"] = email
    entry["auth"] = encode_auth_field(username, password)
    payload = go_json_dumps({"auths": {server: entry}}).encode("utf-8")
    return _secret_object(name, namespace, DOCKERCONFIGJSON_KEY, payload)


def secret_from_docker_config(
    name: str, path: str | os.PathLike[str], namespace: str | None = None
) -> dict[str, Any]:
    """The Secret ``kubectl create secret docker-registry --from-file=<config.json>`` makes."""
    location = Path(path)
    try:
        payload = location.read_bytes()
    except OSError as err:
        raise CredentialError(f"{location}: cannot read: {err.strerror or err}") from None
    # kubectl copies the bytes verbatim; checking them first saves a rejected secret later.
    parse_docker_config(payload, origin=str(location))
    return _secret_object(name, namespace, DOCKERCONFIGJSON_KEY, payload)
