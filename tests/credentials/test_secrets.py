"""Image pull secrets in YAML and JSON, kubelet's merge order, and kubectl-identical secrets."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from ci import cannot_run

from ocistore.credentials import (
    DockerConfigEntry,
    Keyring,
    docker_registry_secret,
    load_secrets,
    parse_secrets,
    secret_from_docker_config,
)
from ocistore.errors import CredentialError, SecretFormatError


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def dockerconfigjson(auths: dict[str, Any]) -> str:
    return json.dumps({"auths": auths})


SECRETS_YAML = f"""
apiVersion: v1
kind: Secret
metadata:
  name: regcred
  namespace: team
  uid: 1111
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: {b64(dockerconfigjson({"registry.io": {"auth": b64("alice:a-pw")}}))}
---
apiVersion: v1
kind: Secret
metadata:
  name: legacy
  namespace: team
type: kubernetes.io/dockercfg
stringData:
  .dockercfg: '{json.dumps({"registry.io/team": {"username": "bob", "password": "b-pw"}})}'
"""


def test_yaml_secrets_data_and_string_data(tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_text(SECRETS_YAML)
    secrets = load_secrets(path)
    assert [(s.display_name, s.type, s.uid) for s in secrets] == [
        ("team/regcred", "kubernetes.io/dockerconfigjson", "1111"),
        ("team/legacy", "kubernetes.io/dockercfg", ""),
    ]
    keyring = Keyring.from_secrets(secrets)
    found = keyring.lookup("registry.io/team/app")
    # All secrets share one keyring: the more specific key (bob's) comes first.
    assert [(c.username, str(c.source)) for c in found] == [
        ("bob", "secret team/legacy"),
        ("alice", "secret team/regcred"),
    ]
    assert [c.username for c in keyring.lookup("registry.io/other")] == ["alice"]


def test_json_secret_list(tmp_path: Path) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "one"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": b64(dockerconfigjson({"r.io": {"auth": b64("u:p")}}))},
    }
    path = tmp_path / "list.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [secret, secret]}))
    assert [s.name for s in load_secrets(path)] == ["one", "one"]
    assert [c.username for c in Keyring.from_secrets(load_secrets(path)).lookup("r.io/x")] == [
        "u",
        "u",
    ]


def test_string_data_wins_over_data() -> None:
    document = {
        "kind": "Secret",
        "metadata": {"name": "both"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": b64(dockerconfigjson({"r.io": {"auth": b64("old:p")}}))},
        "stringData": {".dockerconfigjson": dockerconfigjson({"r.io": {"auth": b64("new:p")}})},
    }
    assert [c.username for c in Keyring.from_secrets([document]).lookup("r.io/x")] == ["new"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"kind": "Secret", "metadata": {"name": "s", "namespace": "ns"}, "type": "Opaque"},
            "secret ns/s: type 'Opaque' is not an image pull secret",
        ),
        (
            {
                "kind": "Secret",
                "metadata": {"name": "s"},
                "type": "kubernetes.io/dockerconfigjson",
                "data": {},
            },
            "secret s: type kubernetes.io/dockerconfigjson but no '.dockerconfigjson'",
        ),
        (
            {
                "kind": "Secret",
                "metadata": {"name": "s"},
                "type": "kubernetes.io/dockercfg",
                "data": {".dockercfg": "!!notbase64"},
            },
            "secret s: data['.dockercfg'] is not valid",
        ),
        (
            {
                "kind": "Secret",
                "metadata": {"name": "s"},
                "type": "kubernetes.io/dockerconfigjson",
                "stringData": {".dockerconfigjson": "{oops"},
            },
            "secret s key .dockerconfigjson",
        ),
        ({"kind": "ConfigMap", "metadata": {"name": "s"}}, "s: kind is 'ConfigMap'"),
    ],
)
def test_bad_secrets_name_the_secret(document: dict[str, Any], message: str) -> None:
    with pytest.raises(SecretFormatError) as info:
        Keyring.from_secrets([document])
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_non_strict_skips_what_kubelet_skips() -> None:
    opaque = {"kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque"}
    keyring = Keyring.from_secrets([opaque], strict=False)
    assert keyring.lookup("r.io/x") == []
    broken = {
        "kind": "Secret",
        "metadata": {"name": "b"},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": '{"auths": {"r.io": {"auth": "bad!"}}}'},
    }
    with pytest.raises(SecretFormatError):  # malformed content fails the pull in kubelet too
        Keyring.from_secrets([broken], strict=False)


def test_invalid_yaml_is_a_secret_format_error() -> None:
    with pytest.raises(SecretFormatError, match="not valid YAML"):
        parse_secrets("key: [unclosed")


def test_merge_puts_pod_secrets_before_node_credentials(tmp_path: Path) -> None:
    node = Keyring.from_entries({"registry.io": DockerConfigEntry("node", "n-pw")}, source="node")
    secrets = Keyring.from_secrets(parse_secrets(SECRETS_YAML))
    merged = Keyring.merge(secrets, node)
    assert [c.username for c in merged.lookup("registry.io/team/app")] == ["bob", "alice", "node"]
    assert [c.source.node_wide for c in merged.lookup("registry.io/team/app")] == [
        False,
        False,
        True,
    ]


# --- kubectl create secret docker-registry ------------------------------------------------------
# Captured from `kubectl create secret docker-registry ... --dry-run=client -o json` (v1.32.4).
KUBECTL_WITH_EMAIL = {
    "kind": "Secret",
    "apiVersion": "v1",
    "metadata": {"name": "regcred", "creationTimestamp": None},
    "data": {
        ".dockerconfigjson": "eyJhdXRocyI6eyJyZWcuZXhhbXBsZS5jb20iOnsidXNlcm5hbWUiOiJqYW5lIiwicG"
        "Fzc3dvcmQiOiJwXHUwMDNjXHUwMDI2XHUwMDNldzpcIngiLCJlbWFpbCI6ImpAZS5jb20iLCJhdXRoIjoiYW1GdVpU"
        "cHdQQ1krZHpvaWVBPT0ifX19"
    },
    "type": "kubernetes.io/dockerconfigjson",
}
KUBECTL_HUB_UNICODE = {
    "kind": "Secret",
    "apiVersion": "v1",
    "metadata": {"name": "hub", "namespace": "team", "creationTimestamp": None},
    "data": {
        ".dockerconfigjson": "eyJhdXRocyI6eyJodHRwczovL2luZGV4LmRvY2tlci5pby92MS8iOnsidXNlcm5hbWUi"
        "OiLDvG7DryIsInBhc3N3b3JkIjoiYVx1MjAyOGJcdTAwMjZcdGMiLCJhdXRoIjoidzd4dXc2ODZZZUtBcUdJbUNX"
        "TT0ifX19"
    },
    "type": "kubernetes.io/dockerconfigjson",
}


def test_docker_registry_secret_is_kubectl_identical() -> None:
    ours = docker_registry_secret("regcred", "reg.example.com", "jane", 'p<&>w:"x', "j@e.com")
    assert json.dumps(ours) == json.dumps(KUBECTL_WITH_EMAIL)  # same keys, same order, same bytes
    hub = docker_registry_secret(
        "hub", "https://index.docker.io/v1/", "ünï", "a\u2028b&\tc", namespace="team"
    )
    assert json.dumps(hub) == json.dumps(KUBECTL_HUB_UNICODE)
    payload = base64.b64decode(hub["data"][".dockerconfigjson"])
    assert b"\\u2028" in payload and b"\\u0026" in payload  # Go's escaping, not Python's


def test_docker_registry_secret_reads_back() -> None:
    secret = docker_registry_secret("s", "reg.example.com:5000", "u", "p")
    found = Keyring.from_secrets([secret]).lookup("reg.example.com:5000/app")
    assert [(c.username, c.password, c.key) for c in found] == [("u", "p", "reg.example.com:5000")]
    assert yaml.safe_load(yaml.safe_dump(secret)) == secret


def test_docker_registry_secret_requires_fields() -> None:
    with pytest.raises(SecretFormatError):
        docker_registry_secret("s", "reg.example.com", "", "p")
    with pytest.raises(SecretFormatError):
        docker_registry_secret("", "reg.example.com", "u", "p")


def kubectl(*args: str) -> dict[str, Any]:
    kubeconfig = Path(__file__).with_name("kubeconfig.yaml")
    result = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), *args, "--dry-run=client", "-o", "json"],
        capture_output=True,
        check=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def test_against_the_installed_kubectl(tmp_path: Path) -> None:
    if shutil.which("kubectl") is None:
        cannot_run("kubectl is not installed (scripts/setup installs kubernetes-client)")
    live = kubectl(
        "-n",
        "ns",
        "create",
        "secret",
        "docker-registry",
        "live",
        "--docker-server=r.io:5000",
        "--docker-username=user",
        "--docker-password=<&>",
        "--docker-email=e@x",
    )
    ours = docker_registry_secret("live", "r.io:5000", "user", "<&>", "e@x", namespace="ns")
    # Newer kubectl releases no longer print the null creationTimestamp.
    live["metadata"].setdefault("creationTimestamp", None)
    assert json.dumps(live) == json.dumps(ours)
    config = tmp_path / "config.json"
    config.write_text('{"auths": {"r.io": {"auth": "dTpw"}}}\n')
    live = kubectl("create", "secret", "docker-registry", "f", f"--from-file={config}")
    live["metadata"].setdefault("creationTimestamp", None)
    assert json.dumps(live) == json.dumps(secret_from_docker_config("f", config))


def test_secret_from_docker_config_copies_bytes(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_bytes(b'{"auths":{"r.io":{"auth":"dTpw"}}}  \n')
    secret = secret_from_docker_config("f", config, namespace="ns")
    assert base64.b64decode(secret["data"][".dockerconfigjson"]) == config.read_bytes()
    assert secret["metadata"]["namespace"] == "ns"
    config.write_text("{broken")
    with pytest.raises(CredentialError, match=str(config)):
        secret_from_docker_config("f", config)


def test_attempts_are_anonymous_only_without_matches() -> None:
    keyring = Keyring.from_secrets(parse_secrets(SECRETS_YAML))
    assert keyring.attempts("elsewhere.io/app") == [None]
    assert [c.username for c in keyring.attempts("registry.io/x") if c is not None] == ["alice"]
    assert None not in keyring.attempts("registry.io/x")


# Transcribed from kubernetes/kubernetes pkg/credentialprovider/secrets/secrets_test.go
# (Test_MakeDockerKeyring): (name, secrets as (type, key, content), default keyring user or None,
# expected users for image "test.registry.io"). kubelet skips a secret whose key does not fit its
# type; ocistore does the same with strict=False and reports it otherwise.
JSON_TYPE, CFG_TYPE = "kubernetes.io/dockerconfigjson", "kubernetes.io/dockercfg"
JSON_AUTH = '{"auths": {"test.registry.io": {"auth": "dXNlcjpwYXNzd29yZA=="}}}'
CFG_AUTH = '{"test.registry.io": {"auth": "dXNlcjpwYXNzd29yZA=="}}'
MAKE_DOCKER_KEYRING = [
    ("dockerconfigjson auth", [(JSON_TYPE, ".dockerconfigjson", JSON_AUTH)], None, ["user"]),
    ("dockercfg auth", [(CFG_TYPE, ".dockercfg", CFG_AUTH)], None, ["user"]),
    (
        "dockerconfigjson username/password",
        [
            (
                JSON_TYPE,
                ".dockerconfigjson",
                '{"auths": {"test.registry.io": {"username": "user", "password": "password"}}}',
            )
        ],
        None,
        ["user"],
    ),
    (
        "dockercfg username/password",
        [(CFG_TYPE, ".dockercfg", '{"test.registry.io": {"username": "user", "password": "p"}}')],
        None,
        ["user"],
    ),
    ("json key, dockercfg type", [(CFG_TYPE, ".dockerconfigjson", JSON_AUTH)], None, []),
    ("cfg key, dockerconfigjson type", [(JSON_TYPE, ".dockercfg", CFG_AUTH)], None, []),
    (
        "not matching json, default keyring",
        [(JSON_TYPE, ".dockerconfigjson", JSON_AUTH.replace("test.registry.io", "foobar.io"))],
        "default-user",
        ["default-user"],
    ),
    (
        "not matching cfg, default keyring",
        [(CFG_TYPE, ".dockercfg", CFG_AUTH.replace("test.registry.io", "foobar.io"))],
        "default-user",
        ["default-user"],
    ),
    ("no secrets, default keyring", [], "default-user", ["default-user"]),
    (
        "secrets and default keyring",
        [(JSON_TYPE, ".dockerconfigjson", JSON_AUTH)],
        "default-user",
        ["user", "default-user"],
    ),
]


@pytest.mark.parametrize(
    ("secrets", "default_user", "expected"),
    [case[1:] for case in MAKE_DOCKER_KEYRING],
    ids=[case[0] for case in MAKE_DOCKER_KEYRING],
)
def test_kubernetes_make_docker_keyring(
    secrets: list[tuple[str, str, str]], default_user: str | None, expected: list[str]
) -> None:
    documents = [
        {"kind": "Secret", "metadata": {"name": f"s{i}"}, "type": kind, "data": {key: b64(body)}}
        for i, (kind, key, body) in enumerate(secrets)
    ]
    default = (
        Keyring.from_entries({"test.registry.io": DockerConfigEntry(default_user, "pw")})
        if default_user
        else None
    )
    keyring = Keyring.merge(Keyring.from_secrets(documents, strict=False), default)
    assert [c.username for c in keyring.lookup("test.registry.io")] == expected
    if expected == []:
        with pytest.raises(SecretFormatError, match=r"no '\.docker"):
            Keyring.from_secrets(documents)
