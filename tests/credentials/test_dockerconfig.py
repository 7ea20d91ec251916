"""Docker config files: parsing as kubelet does, kubelet's search order, and 0600 secret files."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocistore.credentials import (
    DockerConfigEntry,
    Keyring,
    node_docker_config_paths,
    parse_docker_config,
    read_docker_config,
    write_docker_config,
    write_secret_file,
)
from ocistore.credentials.dockerconfig import decode_auth_field, encode_auth_field
from ocistore.errors import CredentialError


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_json(path: Path, document: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def test_config_json_fields_and_auth_override() -> None:
    config = parse_docker_config(
        json.dumps(
            {
                "auths": {
                    "registry.io": {"auth": b64("alice:pa:ss"), "username": "ignored"},
                    "plain.io": {"username": "bob", "password": "pw", "email": "b@x"},
                    "token.io": {"identitytoken": "refresh-token"},
                    "unpadded.io": {"auth": b64("carol:pw").rstrip("=")},
                },
                "credHelpers": {"gcr.io": "gcloud"},
                "credsStore": "desktop",
            }
        )
    )
    assert config.auths["registry.io"].username == "alice"
    assert config.auths["registry.io"].password == "pa:ss"  # split on the first colon
    assert config.auths["plain.io"] == DockerConfigEntry("bob", "pw", "b@x")
    assert config.auths["token.io"].identity_token == "refresh-token"
    assert config.auths["unpadded.io"].password == "pw"
    assert config.cred_helpers == {"gcr.io": "gcloud"}
    assert config.creds_store == "desktop"


def test_keys_are_case_insensitive_like_go() -> None:
    config = parse_docker_config('{"AUTHS": {"r.io": {"Username": "u", "PASSWORD": "p"}}}')
    assert config.auths["r.io"] == DockerConfigEntry("u", "p")


def test_legacy_dockercfg_is_a_bare_map(tmp_path: Path) -> None:
    document = {"https://index.docker.io/v1/": {"auth": b64("u:p")}}
    path = write_json(tmp_path / ".dockercfg", document)
    config = read_docker_config(path)
    assert config.format == ".dockercfg"
    assert config.auths["https://index.docker.io/v1/"].username == "u"


def test_config_without_auths_is_valid_and_empty() -> None:
    assert parse_docker_config('{"credsStore": "desktop"}').auths == {}
    assert parse_docker_config("null").auths == {}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "top level must be an object"),
        ('{"auths": []}', "auths must be an object"),
        ('{"auths": {"r.io": {"username": 5}}}', "username must be a string"),
        ('{"auths": {"r.io": {"auth": "%%%"}}}', "not valid base64"),
        ('{"auths": {"r.io": {"auth": "' + b64("nocolon") + '"}}}', "base64(username:password)"),
        ('{"auths": {"r.io": "string"}}', "must be an object"),
    ],
)
def test_malformed_files_name_the_file_and_hide_content(
    tmp_path: Path, content: str, reason: str
) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(CredentialError) as info:
        read_docker_config(path)
    assert str(path) in str(info.value)
    assert reason in str(info.value)
    assert "%%%" not in str(info.value) and b64("nocolon") not in str(info.value)


def test_unreadable_file_is_a_credential_error(tmp_path: Path) -> None:
    with pytest.raises(CredentialError, match="cannot read"):
        read_docker_config(tmp_path / "missing.json")


@given(st.text(max_size=20).filter(lambda s: ":" not in s), st.text(max_size=30))
def test_auth_field_round_trips(username: str, password: str) -> None:
    assert decode_auth_field(encode_auth_field(username, password)) == (username, password)
    unpadded = encode_auth_field(username, password).rstrip("=")
    assert decode_auth_field(unpadded) == (username, password)


@given(st.binary(max_size=200))
def test_parser_never_raises_anything_but_credential_error(data: bytes) -> None:
    with contextlib.suppress(CredentialError):
        parse_docker_config(data)


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=10),
        st.dictionaries(
            st.sampled_from(["username", "password", "email", "auth", "identitytoken", "x"]),
            st.one_of(st.text(max_size=10), st.integers(), st.none()),
            max_size=4,
        ),
        max_size=4,
    )
)
def test_parser_on_structured_garbage(auths: dict[str, dict[str, object]]) -> None:
    try:
        config = parse_docker_config(json.dumps({"auths": auths}))
    except CredentialError:
        return
    assert set(config.auths) == set(auths)


# --- kubelet's search order ------------------------------------------------------------------


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    dirs = {name: tmp_path / name for name in ("kubelet", "cwd", "home", "root")}
    for directory in dirs.values():
        directory.mkdir()
    return dirs


def node_keyring(layout: dict[str, Path]) -> Keyring:
    return Keyring.from_node_defaults(
        layout["kubelet"], working_dir=layout["cwd"], home=layout["home"], root=layout["root"]
    )


def config_for(user: str) -> dict[str, object]:
    return {"auths": {"registry.io": {"auth": b64(f"{user}:pw")}}}


def users(keyring: Keyring) -> list[str]:
    return [c.username for c in keyring.lookup("registry.io/app")]


def test_search_order_matches_kubelet(layout: dict[str, Path]) -> None:
    paths = node_docker_config_paths(
        layout["kubelet"], working_dir=layout["cwd"], home=layout["home"], root=layout["root"]
    )
    assert paths == [
        layout["kubelet"] / "config.json",
        layout["cwd"] / "config.json",
        layout["home"] / ".docker" / "config.json",
        layout["root"] / ".docker" / "config.json",
        layout["kubelet"] / ".dockercfg",
        layout["cwd"] / ".dockercfg",
        layout["home"] / ".dockercfg",
        layout["root"] / ".dockercfg",
    ]


def test_first_valid_file_wins_without_merging(layout: dict[str, Path]) -> None:
    write_json(layout["root"] / ".docker" / "config.json", config_for("root"))
    write_json(layout["home"] / ".dockercfg", {"registry.io": {"auth": b64("legacy:pw")}})
    assert users(node_keyring(layout)) == ["root"]
    write_json(layout["home"] / ".docker" / "config.json", config_for("home"))
    assert users(node_keyring(layout)) == ["home"]
    write_json(layout["kubelet"] / "config.json", config_for("kubelet"))
    assert users(node_keyring(layout)) == ["kubelet"]


def test_unparsable_files_are_skipped_like_kubelet(layout: dict[str, Path]) -> None:
    (layout["kubelet"] / "config.json").write_text("{broken")
    write_json(layout["cwd"] / "config.json", config_for("cwd"))
    keyring = node_keyring(layout)
    assert users(keyring) == ["cwd"]
    assert any("skipped" in note and "config.json" in note for note in keyring.notes)


def test_dockercfg_is_the_fallback(layout: dict[str, Path]) -> None:
    write_json(layout["home"] / ".dockercfg", {"registry.io": {"auth": b64("legacy:pw")}})
    assert users(node_keyring(layout)) == ["legacy"]


def test_nothing_found_is_an_empty_keyring(layout: dict[str, Path]) -> None:
    keyring = node_keyring(layout)
    assert keyring.lookup("registry.io/app") == []
    assert any("no valid docker config" in note for note in keyring.notes)


def test_home_comes_from_the_environment(
    layout: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_json(layout["home"] / ".docker" / "config.json", config_for("envhome"))
    monkeypatch.setenv("HOME", str(layout["home"]))
    keyring = Keyring.from_node_defaults(
        layout["kubelet"], working_dir=layout["cwd"], root=layout["root"]
    )
    assert users(keyring) == ["envhome"]


def test_docker_client_defaults_honour_docker_config(tmp_path: Path) -> None:
    write_json(tmp_path / "custom" / "config.json", config_for("custom"))
    write_json(tmp_path / "home" / ".docker" / "config.json", config_for("home"))
    env = {"HOME": str(tmp_path / "home"), "DOCKER_CONFIG": str(tmp_path / "custom")}
    assert users(Keyring.from_docker_client_defaults(env=env)) == ["custom"]
    del env["DOCKER_CONFIG"]
    assert users(Keyring.from_docker_client_defaults(env=env)) == ["home"]


# --- files that hold secrets --------------------------------------------------------------------


def test_secret_files_are_0600_even_with_a_lax_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = write_secret_file(tmp_path / "secret.json", b"{}")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        existing = tmp_path / "existing"
        existing.write_text("old")
        existing.chmod(0o644)
        write_secret_file(existing, "new")
        assert stat.S_IMODE(existing.stat().st_mode) == 0o600
        assert existing.read_text() == "new"
    finally:
        os.umask(old)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_write_docker_config_round_trips_with_0600(tmp_path: Path) -> None:
    path = write_docker_config(
        tmp_path / "config.json",
        {"registry.io": DockerConfigEntry("u", "p:w", "e@x", identity_token="tok")},
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = read_docker_config(path)
    assert config.auths["registry.io"] == DockerConfigEntry("u", "p:w", "e@x", "tok")


# Transcribed from kubernetes/kubernetes pkg/credentialprovider/config_test.go
# (TestDecodeDockerConfigFieldAuth): (input, username, password, fails).
DECODE_AUTH_FIELD = [
    ("Zm9vOmJhcg==", "foo", "bar", False),
    ("Zm9vOmJhcg", "foo", "bar", False),  # not padded
    ("Zm9vOm\nJhcg==\n", "foo", "bar", False),  # newlines are ignored
    (base64.b64encode(b"foo:bar").decode(), "foo", "bar", False),
    (base64.b64encode(b"foo:bar").decode().rstrip("="), "foo", "bar", False),
    (encode_auth_field("foo", "bar"), "foo", "bar", False),
    ("cGFudHM=", "", "", True),  # no colon
    ("Zm9vOmJhcg== ", "", "", True),  # only newlines are ignored
    ("pants", "", "", True),  # bad base64
]


@pytest.mark.parametrize(("field", "username", "password", "fails"), DECODE_AUTH_FIELD)
def test_kubernetes_decode_auth_field(
    field: str, username: str, password: str, fails: bool
) -> None:
    if fails:
        with pytest.raises(ValueError):
            decode_auth_field(field)
    else:
        assert decode_auth_field(field) == (username, password)


# TestDockerConfigEntryJSONDecode: (entry JSON, (username, password, email) or None to fail).
ENTRY_DECODE = [
    (
        '{"username": "foo", "password": "bar", "email": "foo@example.com"}',
        ("foo", "bar", "foo@example.com"),
    ),
    ('{"auth": "Zm9vOmJhcg==", "email": "foo@example.com"}', ("foo", "bar", "foo@example.com")),
    (
        '{"username": "foo", "password": "bar", "auth": "cGluZzpwb25n", '
        '"email": "foo@example.com"}',
        ("ping", "pong", "foo@example.com"),
    ),
    ('{"auth": "pants", "email": "foo@example.com"}', None),
    ('{"email": false}', None),
]


@pytest.mark.parametrize(("entry", "expected"), ENTRY_DECODE)
def test_kubernetes_entry_decode(entry: str, expected: tuple[str, str, str] | None) -> None:
    document = '{"auths": {"http://foo.example.com": ' + entry + "}}"
    if expected is None:
        with pytest.raises(CredentialError):
            parse_docker_config(document)
        with pytest.raises(CredentialError):  # the legacy format fails the same way
            parse_docker_config('{"http://foo.example.com": ' + entry + "}", format=".dockercfg")
    else:
        got = parse_docker_config(document).auths["http://foo.example.com"]
        assert (got.username, got.password, got.email) == expected


def test_kubernetes_read_docker_config_file(tmp_path: Path) -> None:
    # TestReadDockerConfigFile: the preferred path holds a config.json; "Zm9vOmJhcgo=" has "\n".
    (tmp_path / "config.json").write_text(
        '{ "auths": { "http://foo.example.com":{"auth":"Zm9vOmJhcgo=","email":"foo@example.com"}}}'
    )
    keyring = Keyring.from_node_defaults(tmp_path, home=tmp_path / "none", root=tmp_path / "none")
    (credential,) = keyring.lookup("foo.example.com/app")
    assert (credential.username, credential.password) == ("foo", "bar\n")
