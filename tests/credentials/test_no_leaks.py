"""Secrets never appear in repr, str, log output or exception text."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from ocistore.credentials import (
    CredentialProviderConfig,
    DockerConfigEntry,
    Keyring,
    ProviderPlugin,
    parse_docker_config,
)
from ocistore.credentials.dockerconfig import encode_auth_field
from ocistore.errors import CredentialError, CredentialProviderError

SECRET = "Sup3r-Secret-Passw0rd"
AUTH = encode_auth_field("alice", SECRET)


def assert_clean(text: str) -> None:
    assert SECRET not in text
    assert AUTH not in text


def test_credentials_and_entries_hide_the_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    entry = DockerConfigEntry("alice", SECRET, identity_token=SECRET, registry_token=SECRET)
    keyring = Keyring.from_entries({"registry.io": entry})
    (credential,) = keyring.lookup("registry.io/app")
    assert credential.password == SECRET  # the value is there for the puller...
    report = keyring.which("registry.io/app:1")
    for text in (
        repr(credential),
        str(credential),
        f"{credential}",
        repr(entry),
        str(entry),
        repr(keyring),
        str(report),
        repr(report),
        caplog.text,
    ):
        assert_clean(text)  # ...but never shown
    assert "alice" in str(credential)
    assert len(credential.hash) == 64 and SECRET not in credential.hash


def test_hash_matches_kubelets_hash_auth_config() -> None:
    import hashlib

    (credential,) = Keyring.from_entries({"r.io": DockerConfigEntry("u", "p<w", "e@x")}).lookup(
        "r.io/x"
    )
    # json.Marshal(AuthConfig{Username, Password, Email}) with Go's escaping and omitempty.
    expected = hashlib.sha256(b'{"username":"u","password":"p\\u003cw","email":"e@x"}').hexdigest()
    assert credential.hash == expected
    assert (
        Keyring.from_entries({"r.io": DockerConfigEntry("u", "p<w", "e@x")})
        .lookup("r.io/x")[0]
        .hash
        == expected
    )  # stable across keyrings and runs


def test_parse_errors_do_not_quote_the_file(tmp_path: Path) -> None:
    bad_documents = [
        '{"auths": {"r.io": {"auth": "' + AUTH + '!"}}}',
        '{"auths": {"r.io": {"password": "' + SECRET + '", "username": 1}}}',
        '{"auths": {"r.io": {"password": "' + SECRET + '"',
    ]
    for document in bad_documents:
        with pytest.raises(CredentialError) as info:
            parse_docker_config(document, origin="test")
        assert_clean(str(info.value))
        assert_clean(repr(info.value))


def test_plugin_errors_and_logs_hide_the_answer(
    tmp_path: Path,
    write_executable: Callable[[Path, str], Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = {
        "kind": "CredentialProviderResponse",
        "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
        "cacheKeyType": "Image",
        "auth": {"*.registry.io": {"username": "alice", "password": SECRET, "oops": SECRET}},
    }
    write_executable(tmp_path / "bin" / "leaky", f"print({json.dumps(json.dumps(answer))})")
    config = CredentialProviderConfig.parse(
        json.dumps(
            {
                "apiVersion": "kubelet.config.k8s.io/v1",
                "kind": "CredentialProviderConfig",
                "providers": [
                    {
                        "name": "leaky",
                        "matchImages": ["*.registry.io"],
                        "defaultCacheDuration": "0",
                        "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
                    }
                ],
            }
        )
    )
    plugin = ProviderPlugin(config.providers[0], tmp_path / "bin")
    with pytest.raises(CredentialProviderError) as info:
        plugin.request("a.registry.io/app")
    assert_clean(str(info.value))
    keyring = Keyring.from_provider_config(config, tmp_path / "bin")
    report = keyring.which("a.registry.io/app")
    assert report.credentials == ()
    assert any("leaky" in note for note in report.notes)
    assert_clean(str(report))
    assert_clean(caplog.text)
