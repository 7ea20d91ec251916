"""Docker config files (``config.json`` and the legacy ``.dockercfg``) read the way kubelet does.

kubelet (``pkg/credentialprovider/config.go``) reads ``username``, ``password``, ``email`` and
``auth`` from each entry (JSON keys matched case-insensitively, as Go does); a non-empty ``auth``
(base64 of ``user:password``, padded or not) overrides username and password. ``identitytoken``
and ``registrytoken`` are kept here for ocistore's own registry client but kubelet ignores them,
as it ignores ``credHelpers`` and ``credsStore``. Any malformed part fails the whole file with a
:class:`~ocistore.errors.CredentialError` naming the file and never quoting its content.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from ocistore._valueclass import field, valueclass
from ocistore.credentials._gojson import go_json_dumps
from ocistore.credentials.secretfile import write_secret_file
from ocistore.errors import CredentialError

__all__ = [
    "DockerConfig",
    "DockerConfigEntry",
    "decode_auth_field",
    "encode_auth_field",
    "parse_docker_config",
    "read_docker_config",
    "write_docker_config",
]

ConfigFormat = Literal["config.json", ".dockercfg"]

# Refuse absurd files before parsing them (kubelet's own HTTP limit is the same 10 MiB).
MAX_CONFIG_BYTES = 10 * 1024 * 1024


@valueclass(repr=False)
class DockerConfigEntry:
    """One registry entry of a docker config file; never shows its secrets."""

    username: str = ""
    password: str = field(default="", repr=False)
    email: str = ""
    identity_token: str = field(default="", repr=False)
    registry_token: str = field(default="", repr=False)

    def __repr__(self) -> str:
        return f"DockerConfigEntry(username={self.username!r}, password=<redacted>)"


@valueclass
class DockerConfig:
    """A parsed docker config file: its entries in file order, plus Docker-only helper settings."""

    auths: Mapping[str, DockerConfigEntry]
    origin: str
    format: ConfigFormat = "config.json"
    cred_helpers: Mapping[str, str] = field(default_factory=dict)
    creds_store: str | None = None


def encode_auth_field(username: str, password: str) -> str:
    """``base64(username:password)``, as kubectl and kubelet write the ``auth`` field."""
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def decode_auth_field(field_value: str) -> tuple[str, str]:
    """Splits an ``auth`` field into (username, password) by kubelet's rules (ValueError)."""
    # Go's decoder skips CR and LF; padded input must be padded correctly, unpadded must not be.
    text = field_value.replace("\r", "").replace("\n", "")
    try:
        if field_value.strip().endswith("="):
            raw = base64.b64decode(text, validate=True)
        else:
            if "=" in text or len(text) % 4 == 1:
                raise ValueError("bad base64 length")
            raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the auth field is not valid base64") from None
    decoded = raw.decode("utf-8", errors="replace")
    username, sep, password = decoded.partition(":")
    if not sep:
        raise ValueError(
            "unable to parse auth field, must be formatted as base64(username:password)"
        )
    return username, password


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its key/value pairs in order (so duplicates and case can be handled)."""


def _fold(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Go matches JSON keys to struct fields case-insensitively; the last duplicate wins."""
    folded: dict[str, Any] = {}
    for key, value in pairs:
        folded[key.lower()] = value
    return folded


def _string(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string")
    return value


def _entry(key: str, value: Any) -> DockerConfigEntry:
    if value is None:
        return DockerConfigEntry()
    if not isinstance(value, _Pairs):
        raise ValueError(f"entry {key!r} must be an object")
    fields = _fold(value)
    username = _string(fields.get("username"), f"entry {key!r}: username")
    password = _string(fields.get("password"), f"entry {key!r}: password")
    email = _string(fields.get("email"), f"entry {key!r}: email")
    auth = _string(fields.get("auth"), f"entry {key!r}: auth")
    identity_token = _string(fields.get("identitytoken"), f"entry {key!r}: identitytoken")
    registry_token = _string(fields.get("registrytoken"), f"entry {key!r}: registrytoken")
    if auth:
        try:
            username, password = decode_auth_field(auth)
        except ValueError as err:
            raise ValueError(f"entry {key!r}: {err}") from None
    return DockerConfigEntry(username, password, email, identity_token, registry_token)


def _entries(value: Any, what: str) -> dict[str, DockerConfigEntry]:
    if value is None:
        return {}
    if not isinstance(value, _Pairs):
        raise ValueError(f"{what} must be an object")
    entries: dict[str, DockerConfigEntry] = {}
    for key, entry in value:
        entries.pop(key, None)  # a repeated key replaces the earlier one, at the end
        entries[key] = _entry(key, entry)
    return entries


def _string_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, _Pairs):
        raise ValueError(f"{what} must be an object")
    return {key: _string(item, f"{what}[{key!r}]") for key, item in value}


def parse_docker_config(
    data: bytes | str, *, origin: str = "<docker config>", format: ConfigFormat = "config.json"
) -> DockerConfig:
    """Parses a ``config.json`` (``{"auths": {...}}``) or legacy ``.dockercfg`` (bare map)."""
    if isinstance(data, bytes):
        if len(data) > MAX_CONFIG_BYTES:
            raise CredentialError(f"{origin}: larger than {MAX_CONFIG_BYTES} bytes")
        text = data.decode("utf-8", errors="replace")
    else:
        text = data
    try:
        document = json.loads(text, object_pairs_hook=_Pairs)
    except json.JSONDecodeError as err:
        # err.msg and the position never include the file's content.
        raise CredentialError(
            f"{origin}: not valid JSON ({err.msg} at line {err.lineno} column {err.colno})"
        ) from None
    except RecursionError:
        raise CredentialError(f"{origin}: JSON nested too deeply") from None
    try:
        if format == ".dockercfg":
            return DockerConfig(_entries(document, "the file"), origin, format)
        if document is None:
            return DockerConfig({}, origin, format)
        if not isinstance(document, _Pairs):
            raise ValueError("the top level must be an object")
        top = _fold(document)
        store = top.get("credsstore")
        return DockerConfig(
            auths=_entries(top.get("auths"), "auths"),
            origin=origin,
            format=format,
            cred_helpers=_string_map(top.get("credhelpers"), "credHelpers"),
            creds_store=_string(store, "credsStore") or None,
        )
    except ValueError as err:
        raise CredentialError(f"{origin}: {err}") from None


def read_docker_config(
    path: str | os.PathLike[str], *, format: ConfigFormat | None = None
) -> DockerConfig:
    """Reads a docker config file; the format follows the file name unless given."""
    location = Path(path)
    if format is None:
        format = ".dockercfg" if location.name == ".dockercfg" else "config.json"
    try:
        with open(location, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise CredentialError(f"{location}: cannot read: {err.strerror or err}") from None
    return parse_docker_config(data, origin=str(location), format=format)


def write_docker_config(
    path: str | os.PathLike[str], auths: Mapping[str, DockerConfigEntry]
) -> Path:
    """Writes a ``config.json`` holding ``auths`` (mode 0600, atomically)."""
    document: dict[str, Any] = {"auths": {}}
    for key, entry in auths.items():
        item: dict[str, str] = {}
        if entry.username or entry.password:
            item["auth"] = encode_auth_field(entry.username, entry.password)
        if entry.email:
            item["email"] = entry.email
        if entry.identity_token:
            item["identitytoken"] = entry.identity_token
        if entry.registry_token:
            item["registrytoken"] = entry.registry_token
        document["auths"][key] = item
    return write_secret_file(path, go_json_dumps(document) + "\n")
