"""Credential matching speed: the compiled Rust matcher against a pure-Python reference.

Run: ``pytest benches/bench_credentials.py --benchmark-only`` (after a release build:
``maturin develop --release``). The keyring holds 10,000 keys of the kinds real configs use:
literal hosts with paths, ``*.`` wildcards, ports and wildcard top-level labels.
"""

from __future__ import annotations

import re

import pytest

from ocistore.credentials import CredentialMatcher, url_matches

ENTRIES = 10_000


def make_keys() -> list[str]:
    keys: list[str] = []
    for i in range(ENTRIES):
        kind = i % 10
        if kind < 6:
            keys.append(f"registry-{i}.example.com/team-{i % 50}")
        elif kind < 8:
            keys.append(f"*.region-{i}.cloud.io")
        elif kind < 9:
            keys.append(f"host-{i}.corp.net:5000")
        else:
            keys.append(f"mirror-{i}.internal.*")
    keys.append("https://index.docker.io/v1/")
    return keys


KEYS = make_keys()
IMAGES = [
    "registry-42.example.com/team-42/app",
    "eu.region-46.cloud.io/project/app",
    "host-8.corp.net:5000/tools/builder",
    "mirror-9.internal.io/library/nginx",
    "docker.io/library/nginx",
    "nowhere.example.org/app",
]


def _split(text: str) -> tuple[list[str], str, str]:
    hostport, slash, path = text.partition("/")
    host, _, port = hostport.partition(":")
    return host.split("."), port, slash + path


def reference_match(glob: str, target: str) -> bool:
    """URLsMatch in plain Python (no URL parsing: the benchmark keys are plain)."""
    glob = glob.removeprefix("https://").removesuffix("/v1/")
    glob_labels, glob_port, glob_path = _split(glob)
    labels, port, path = _split(target)
    if glob_port != port or len(glob_labels) != len(labels) or not path.startswith(glob_path):
        return False
    return all(
        re.fullmatch(".*".join(map(re.escape, g.split("*"))), t) is not None
        for g, t in zip(glob_labels, labels, strict=True)
    )


def reference_lookup(keys: list[str], image: str) -> list[int]:
    """kubelet's Lookup as a linear scan: every key checked, reverse-sorted."""
    found = [i for i, key in enumerate(keys) if reference_match(key, image)]
    return sorted(found, key=lambda i: keys[i], reverse=True)


@pytest.fixture(scope="module")
def matcher() -> CredentialMatcher:
    return CredentialMatcher(KEYS, config_keys=True, docker_hub_fallback=True)


def test_compiled_lookup_10k(benchmark, matcher: CredentialMatcher) -> None:  # type: ignore[no-untyped-def]
    image = IMAGES[1]
    result = benchmark(matcher.lookup, image)
    assert result == reference_lookup(KEYS, image)


def test_compiled_lookup_10k_all_kinds(benchmark, matcher: CredentialMatcher) -> None:  # type: ignore[no-untyped-def]
    def run() -> list[list[int]]:
        return [matcher.lookup(image) for image in IMAGES]

    results = benchmark(run)
    assert results[0] == reference_lookup(KEYS, IMAGES[0])
    assert results[-1] == []


def test_compiled_lookup_many_10k(benchmark, matcher: CredentialMatcher) -> None:  # type: ignore[no-untyped-def]
    batch = IMAGES * 200
    results = benchmark(matcher.lookup_many, batch)
    assert len(results) == len(batch)


def test_reference_lookup_10k(benchmark) -> None:  # type: ignore[no-untyped-def]
    image = IMAGES[1]
    result = benchmark.pedantic(reference_lookup, args=(KEYS, image), rounds=5, iterations=1)
    assert result


def test_build_matcher_10k(benchmark) -> None:  # type: ignore[no-untyped-def]
    built = benchmark(CredentialMatcher, KEYS, config_keys=True, docker_hub_fallback=True)
    assert len(built) == len(KEYS)


def test_url_matches_per_call(benchmark) -> None:  # type: ignore[no-untyped-def]
    assert benchmark(url_matches, "*.region-46.cloud.io", "eu.region-46.cloud.io/project/app")


def test_reference_match_per_call(benchmark) -> None:  # type: ignore[no-untyped-def]
    assert benchmark(reference_match, "*.region-46.cloud.io", "eu.region-46.cloud.io/project/app")


def test_keyring_lookup_10k(benchmark) -> None:  # type: ignore[no-untyped-def]
    from ocistore.credentials import DockerConfigEntry, Keyring

    keyring = Keyring.from_entries({key: DockerConfigEntry("u", "p") for key in KEYS})
    found = benchmark(keyring.lookup, IMAGES[1])
    assert [c.key for c in found] == [KEYS[i] for i in reference_lookup(KEYS, IMAGES[1])]
