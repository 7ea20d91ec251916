"""Docker credential helpers, run for real: a helper script on a temporary PATH."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ocistore.credentials import Keyring, run_credential_helper
from ocistore.errors import CredentialHelperError

HELPER = """
import json, os, sys, time
server = sys.stdin.read().strip()
mode = os.environ.get("HELPER_MODE", "ok")
with open(os.environ["HELPER_LOG"], "a") as log:
    log.write(" ".join(sys.argv[1:]) + " " + server + "\\n")
if mode == "hang":
    time.sleep(30)
if mode == "crash":
    print("keychain is locked")
    sys.exit(3)
if mode == "garbage":
    print("this is not json")
    sys.exit(0)
store = json.load(open(os.environ["HELPER_STORE"]))
if server not in store:
    print("credentials not found in native keychain")
    sys.exit(1)
user, secret = store[server]
json.dump({"ServerURL": server, "Username": user, "Secret": secret}, sys.stdout)
"""


@pytest.fixture
def helper_env(
    tmp_path: Path,
    write_executable: Callable[[Path, str], Path],
    env_with_path: Callable[[Path], dict[str, str]],
) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    write_executable(bin_dir / "docker-credential-fake", HELPER)
    store = tmp_path / "store.json"
    store.write_text(
        json.dumps(
            {
                "registry.io": ["alice", "s3cret-helper"],
                "https://index.docker.io/v1/": ["<token>", "refresh-token-value"],
            }
        )
    )
    env = env_with_path(bin_dir)
    env["HELPER_STORE"] = str(store)
    env["HELPER_LOG"] = str(tmp_path / "helper.log")
    return env


def test_get_runs_the_helper_with_the_server_on_stdin(
    helper_env: dict[str, str], tmp_path: Path
) -> None:
    answer = run_credential_helper("fake", "registry.io", env=helper_env)
    assert answer is not None
    assert (answer.username, answer.secret, answer.is_identity_token) == (
        "alice",
        "s3cret-helper",
        False,
    )
    assert (tmp_path / "helper.log").read_text() == "get registry.io\n"
    assert "s3cret" not in repr(answer)


def test_identity_tokens_and_missing_entries(helper_env: dict[str, str]) -> None:
    token = run_credential_helper("fake", "https://index.docker.io/v1/", env=helper_env)
    assert token is not None and token.is_identity_token
    assert run_credential_helper("fake", "unknown.io", env=helper_env) is None


def test_missing_helper_is_a_clear_error(helper_env: dict[str, str]) -> None:
    with pytest.raises(CredentialHelperError, match="docker-credential-absent not found on PATH"):
        run_credential_helper("absent", "registry.io", env=helper_env)


def test_failing_helper_reports_its_message(helper_env: dict[str, str]) -> None:
    helper_env["HELPER_MODE"] = "crash"
    with pytest.raises(CredentialHelperError, match=r"exit status 3.*keychain is locked"):
        run_credential_helper("fake", "registry.io", env=helper_env)
    helper_env["HELPER_MODE"] = "garbage"
    with pytest.raises(CredentialHelperError, match="invalid JSON"):
        run_credential_helper("fake", "registry.io", env=helper_env)


def test_hanging_helper_times_out(helper_env: dict[str, str]) -> None:
    helper_env["HELPER_MODE"] = "hang"
    with pytest.raises(CredentialHelperError, match="timed out"):
        run_credential_helper("fake", "registry.io", env=helper_env, timeout=0.5)


def test_keyring_uses_cred_helpers_after_kubelet_sources(
    helper_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "auths": {"registry.io": {"auth": "ZmlsZTpwdw=="}},
                "credHelpers": {"registry.io": "fake"},
                "credsStore": "fake",
            }
        )
    )
    keyring = Keyring.from_docker_config(config, helpers=True, env=helper_env)
    found = keyring.lookup("registry.io/app")
    assert [(c.username, c.source.kind) for c in found] == [
        ("file", "docker-config"),
        ("alice", "helper"),
    ]
    assert not found[1].source.used_by_kubelet
    hub = keyring.lookup("docker.io/library/nginx")
    assert [(c.identity_token, c.source.kind) for c in hub] == [("refresh-token-value", "helper")]
    report = keyring.which("registry.io/app:1")
    assert "[not used by kubelet]" in str(report)
    assert Keyring.from_docker_config(config).lookup("docker.io/library/nginx") == []


def test_keyring_reports_a_broken_helper(helper_env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credsStore": "absent"}))
    keyring = Keyring.from_docker_config(config, helpers=True, env=helper_env)
    report = keyring.which("registry.io/app")
    assert report.credentials == ()
    assert any("docker-credential-absent not found" in note for note in report.notes)
