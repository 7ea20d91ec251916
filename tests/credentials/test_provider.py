"""kubelet credential provider plugins, run for real: a small Python plugin in a tmp bin dir."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakeclock import FakeClock

from ocistore.credentials import (
    CredentialProviderConfig,
    DockerConfigEntry,
    Keyring,
    ProviderPlugin,
)
from ocistore.credentials.provider import parse_go_duration
from ocistore.errors import CredentialProviderError

PLUGIN = """
import json, os, sys, time
request = sys.stdin.read()
with open(os.environ["PLUGIN_LOG"], "a") as log:
    log.write(json.dumps({"request": request, "args": sys.argv[1:],
                          "extra": os.environ.get("PLUGIN_EXTRA")}) + "\\n")
mode = os.environ.get("PLUGIN_MODE", "ok")
image = json.loads(request)["image"]
if mode == "sleep":
    time.sleep(30)
if mode == "fail":
    sys.stderr.write("token service unavailable\\n")
    sys.exit(2)
if mode == "badjson":
    print("{not json")
    sys.exit(0)
response = {
    "kind": "CredentialProviderResponse",
    "apiVersion": os.environ.get("PLUGIN_API", "credentialprovider.kubelet.k8s.io/v1"),
    "cacheKeyType": os.environ.get("CACHE_KEY_TYPE", "Image"),
    "auth": {os.environ.get("AUTH_KEY", "*.registry.io"):
             {"username": "u-" + image, "password": "plugin-secret"}},
}
if "CACHE_DURATION" in os.environ:
    response["cacheDuration"] = os.environ["CACHE_DURATION"]
if mode == "extra":
    response["surprise"] = True
print(json.dumps(response))
"""


@pytest.fixture
def bin_dir(tmp_path: Path, write_executable: Callable[[Path, str], Path]) -> Path:
    write_executable(tmp_path / "bin" / "test-plugin", PLUGIN)
    return tmp_path / "bin"


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "plugin.log"


def calls(log_path: Path) -> list[dict[str, Any]]:
    if not log_path.exists():
        return []
    return [json.loads(line) for line in log_path.read_text().splitlines()]


def config(env: dict[str, str] | None = None, **provider: Any) -> CredentialProviderConfig:
    entry: dict[str, Any] = {
        "name": "test-plugin",
        "matchImages": ["*.registry.io", "registry.io:5000"],
        "defaultCacheDuration": "10m",
        "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
        "args": ["--flag", "value"],
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
    }
    entry.update(provider)
    document = {
        "apiVersion": "kubelet.config.k8s.io/v1",
        "kind": "CredentialProviderConfig",
        "providers": [entry],
    }
    return CredentialProviderConfig.parse(yaml.safe_dump(document))


def plugin(
    bin_dir: Path,
    log_path: Path,
    clock: FakeClock | None = None,
    timeout: float = 60.0,
    **env: str,
) -> ProviderPlugin:
    base = {"PLUGIN_LOG": str(log_path), "PLUGIN_EXTRA": "from-kubelet", "PATH": "/usr/bin:/bin"}
    return ProviderPlugin(
        config(env).providers[0],
        bin_dir,
        clock=clock or FakeClock(),
        timeout=timeout,
        environ=base,
    )


def test_request_on_stdin_args_and_env(bin_dir: Path, log_path: Path) -> None:
    provider = plugin(bin_dir, log_path, PLUGIN_EXTRA="from-config")
    answer = provider.provide("a.registry.io/app")
    assert answer == {"*.registry.io": DockerConfigEntry("u-a.registry.io/app", "plugin-secret")}
    (call,) = calls(log_path)
    assert call["request"] == (
        '{"kind":"CredentialProviderRequest","apiVersion":'
        '"credentialprovider.kubelet.k8s.io/v1","image":"a.registry.io/app"}\n'
    )
    assert call["args"] == ["--flag", "value"]
    assert call["extra"] == "from-config"  # configured env overrides the inherited one


def test_match_images_gate_the_plugin(bin_dir: Path, log_path: Path) -> None:
    provider = plugin(bin_dir, log_path)
    assert provider.provide("registry.io/app") == {}  # label count differs from *.registry.io
    assert provider.provide("other.io/app") == {}
    assert calls(log_path) == []
    assert provider.provide("registry.io:5000/app") != {}
    assert len(calls(log_path)) == 1


@pytest.mark.parametrize(
    ("key_type", "second_image", "cached"),
    [
        ("Image", "a.registry.io/app", True),
        ("Image", "a.registry.io/other", False),
        ("Registry", "a.registry.io/other", True),
        ("Registry", "b.registry.io/app", False),
        ("Global", "b.registry.io/app", True),
    ],
)
def test_cache_key_types(
    bin_dir: Path, log_path: Path, key_type: str, second_image: str, cached: bool
) -> None:
    provider = plugin(bin_dir, log_path, CACHE_KEY_TYPE=key_type)
    provider.provide("a.registry.io/app")
    second = provider.provide(second_image)
    assert len(calls(log_path)) == (1 if cached else 2)
    # A cached answer is the first image's answer, as in kubelet.
    expected_user = "u-a.registry.io/app" if cached else f"u-{second_image}"
    assert second["*.registry.io"].username == expected_user


def test_cache_expiry_follows_the_clock(bin_dir: Path, log_path: Path) -> None:
    clock = FakeClock()
    provider = plugin(bin_dir, log_path, clock, CACHE_DURATION="1m")
    provider.provide("a.registry.io/app")
    clock.now += 60  # kubelet expires strictly after the deadline
    provider.provide("a.registry.io/app")
    assert len(calls(log_path)) == 1
    clock.now += 0.001
    provider.provide("a.registry.io/app")
    assert len(calls(log_path)) == 2


def test_default_cache_duration_and_zero(bin_dir: Path, log_path: Path) -> None:
    clock = FakeClock()
    provider = plugin(bin_dir, log_path, clock)  # no cacheDuration: the default 10m applies
    provider.provide("a.registry.io/app")
    clock.now += 599
    provider.provide("a.registry.io/app")
    assert len(calls(log_path)) == 1
    clock.now += 2
    provider.provide("a.registry.io/app")
    assert len(calls(log_path)) == 2
    uncached = plugin(bin_dir, log_path, clock, CACHE_DURATION="0s")
    uncached.provide("a.registry.io/app")
    uncached.provide("a.registry.io/app")
    assert len(calls(log_path)) == 4


def test_failures_are_clear_and_give_no_credentials(bin_dir: Path, log_path: Path) -> None:
    failing = plugin(bin_dir, log_path, PLUGIN_MODE="fail")
    with pytest.raises(CredentialProviderError, match="exit status 2: token service unavailable"):
        failing.request("a.registry.io/app")
    assert failing.provide("a.registry.io/app") == {}
    assert failing.last_error is not None
    cases = {
        "badjson": "not valid JSON",
        "extra": "error decoding credential provider plugin response",
    }
    for mode, message in cases.items():
        with pytest.raises(CredentialProviderError, match=message):
            plugin(bin_dir, log_path, PLUGIN_MODE=mode).request("a.registry.io/app")


def test_wrong_api_version_and_cache_key_type(bin_dir: Path, log_path: Path) -> None:
    wrong = plugin(bin_dir, log_path, PLUGIN_API="credentialprovider.kubelet.k8s.io/v1beta1")
    with pytest.raises(CredentialProviderError, match="did not match expected apiVersion"):
        wrong.request("a.registry.io/app")
    bad_type = plugin(bin_dir, log_path, CACHE_KEY_TYPE="Forever")
    with pytest.raises(CredentialProviderError, match="valid cacheKeyType"):
        bad_type.request("a.registry.io/app")


def test_timeout(bin_dir: Path, log_path: Path) -> None:
    slow = plugin(bin_dir, log_path, timeout=0.5, PLUGIN_MODE="sleep")
    with pytest.raises(CredentialProviderError, match="timed out"):
        slow.request("a.registry.io/app")


def test_keyring_from_provider_config(bin_dir: Path, log_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "providers.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kubelet.config.k8s.io/v1",
                "kind": "CredentialProviderConfig",
                "providers": [
                    {
                        "name": "test-plugin",
                        "matchImages": ["*.registry.io"],
                        "defaultCacheDuration": "5m",
                        "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
                        "env": [{"name": "PLUGIN_LOG", "value": str(log_path)}],
                    }
                ],
            }
        )
    )
    plugins = Keyring.from_provider_config(path, bin_dir)
    node = Keyring.from_entries({"a.registry.io": DockerConfigEntry("node", "pw")}, source="node")
    merged = Keyring.merge(node, plugins)
    found = merged.lookup("a.registry.io/app")
    assert [(c.username, c.source.kind, c.key) for c in found] == [
        ("node", "static", "a.registry.io"),
        ("u-a.registry.io/app", "plugin", "*.registry.io"),
    ]
    assert str(found[1].source) == "plugin test-plugin"


def test_config_files_yaml_json_and_directories(tmp_path: Path) -> None:
    document = {
        "apiVersion": "kubelet.config.k8s.io/v1",
        "kind": "CredentialProviderConfig",
        "providers": [
            {
                "name": "one",
                "matchImages": ["*.io"],
                "defaultCacheDuration": "1h30m",
                "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
            }
        ],
    }
    directory = tmp_path / "conf.d"
    directory.mkdir()
    (directory / "b.json").write_text(json.dumps(document))
    document["providers"][0]["name"] = "zero"  # type: ignore[index]
    (directory / "a.yaml").write_text(yaml.safe_dump(document))
    (directory / "ignored.txt").write_text("not a config")
    loaded = CredentialProviderConfig.load(directory)
    assert [p.name for p in loaded.providers] == ["zero", "one"]
    assert loaded.providers[0].default_cache_duration == 5400.0


BASE_PROVIDER = {
    "name": "p",
    "matchImages": ["*.io"],
    "defaultCacheDuration": "1m",
    "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "a/b"}, "invalid"),
        ({"matchImages": []}, "at least 1 item in matchImages"),
        ({"matchImages": ["a\\b.io"]}, "match image is invalid"),
        ({"defaultCacheDuration": None}, "defaultCacheDuration is required"),
        ({"defaultCacheDuration": "-1m"}, "greater than or equal to 0"),
        ({"defaultCacheDuration": "soon"}, "invalid duration"),
        ({"apiVersion": "credentialprovider.kubelet.k8s.io/v2"}, "not supported"),
        ({"unknownField": 1}, "unknown field 'unknownField'"),
    ],
)
def test_invalid_provider_configs(change: dict[str, Any], message: str) -> None:
    provider = {**BASE_PROVIDER, **change}
    document = {
        "apiVersion": "kubelet.config.k8s.io/v1",
        "kind": "CredentialProviderConfig",
        "providers": [provider],
    }
    with pytest.raises(CredentialProviderError, match=message):
        CredentialProviderConfig.parse(json.dumps(document))


def test_invalid_config_documents(tmp_path: Path, bin_dir: Path) -> None:
    wrong_kind = {"apiVersion": "kubelet.config.k8s.io/v1", "kind": "KubeletConfiguration"}
    with pytest.raises(CredentialProviderError, match="kind"):
        CredentialProviderConfig.parse(json.dumps(wrong_kind))
    duplicate = {
        "apiVersion": "kubelet.config.k8s.io/v1",
        "kind": "CredentialProviderConfig",
        "providers": [BASE_PROVIDER, BASE_PROVIDER],
    }
    with pytest.raises(CredentialProviderError, match="duplicate provider name 'p'"):
        CredentialProviderConfig.parse(json.dumps(duplicate))
    missing = CredentialProviderConfig.parse(
        json.dumps({**duplicate, "providers": [BASE_PROVIDER]})
    )
    with pytest.raises(CredentialProviderError, match="did not exist"):
        Keyring.from_provider_config(missing, bin_dir)
    with pytest.raises(CredentialProviderError, match="not valid YAML"):
        CredentialProviderConfig.parse("key: [")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("1m", 60.0), ("1h30m", 5400.0), ("1.5s", 1.5), ("300ms", 0.3), ("-2s", -2.0)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "m", "1d", "1m x"])
def test_bad_go_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_go_duration(text)


GATED_PLUGIN = """
import json, os, sys, time
request = json.loads(sys.stdin.read())
with open(os.environ["PLUGIN_LOG"], "a") as log:
    log.write("start\\n")
gate = os.environ["PLUGIN_GATE"]
while not os.path.exists(gate):
    time.sleep(0.01)
print(json.dumps({
    "kind": "CredentialProviderResponse",
    "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
    "cacheKeyType": "Image",
    "cacheDuration": "0s",
    "auth": {"*.registry.io": {"username": "shared", "password": "pw"}},
}))
"""


def test_concurrent_requests_for_one_image_share_one_run(
    tmp_path: Path, write_executable: Callable[[Path, str], Path]
) -> None:
    import threading
    import time

    write_executable(tmp_path / "bin" / "test-plugin", GATED_PLUGIN)
    gate, log_path = tmp_path / "gate", tmp_path / "plugin.log"
    provider = ProviderPlugin(
        config().providers[0],
        tmp_path / "bin",
        environ={"PLUGIN_LOG": str(log_path), "PLUGIN_GATE": str(gate), "PATH": "/usr/bin"},
    )
    results: list[dict[str, DockerConfigEntry]] = []
    threads = [
        threading.Thread(target=lambda: results.append(provider.provide("a.registry.io/app")))
        for _ in range(3)
    ]

    def wait_for(condition: Callable[[], bool]) -> None:
        give_up = time.monotonic() + 60  # a guard against hanging, not a timing assertion
        while not condition():
            assert time.monotonic() < give_up, "the plugin calls never got there"
            time.sleep(0.01)

    threads[0].start()
    wait_for(log_path.exists)  # the first call is running the plugin
    for thread in threads[1:]:
        thread.start()
    wait_for(lambda: provider._inflight["a.registry.io/app"].waiters == 2)  # the others joined
    gate.touch()
    for thread in threads:
        thread.join(timeout=30)
    assert log_path.read_text() == "start\n"
    assert [r["*.registry.io"].username for r in results] == ["shared"] * 3
    provider.provide("a.registry.io/app")  # cacheDuration 0s: the next call runs it again
    assert log_path.read_text() == "start\nstart\n"
