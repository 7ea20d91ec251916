"""Fault injection (issue 9, "Faults"): every scenario either pulls verified content or fails
with the right typed error, and leaves the store consistent (fsck clean)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from regfixtures.proxy import Fault, FaultProxy
from regfixtures.registry import TEST_PASSWORD, TEST_USER
from regfixtures.setups import FAST_RETRY, Registries, make_setup, unique_repository

from ocistore.errors import (
    AuthenticationError,
    DigestMismatchError,
    ManifestTooLargeError,
    OciStoreError,
    RegistryError,
    SizeMismatchError,
    UnsupportedManifestError,
)
from ocistore.registry import bodies
from ocistore.registry.options import RegistryOptions
from ocistore.store import ProblemKind, Store
from ocistore.testing.imagebuild import BuiltImage, build_image
from ocistore.transfer.pull import pull
from ocistore.transfer.push import push


@dataclass
class Seeded:
    repository: str
    image: BuiltImage

    @property
    def big(self) -> str:
        return max(self.image.layers, key=lambda layer: layer.size).digest


@pytest.fixture(scope="module")
def seeded(registries: Registries, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    image = build_image(
        [
            {"a/one": b"1" * 1000},
            {"b/big": bytes(range(256)) * 1200, "b/more": b"m" * 50_000},
            {"c/last": b"last\n"},
        ],
        compression="none",
    )
    repository = unique_repository("faults")
    setup = make_setup(registries, "plain")
    source = Store(tmp_path_factory.mktemp("fault-seed"))
    name = f"{setup.host}/{repository}:v1"
    image.write_to_store(source, name)
    push(name, store=source, options=RegistryOptions(plain_http=True, retry=FAST_RETRY))
    return Seeded(repository, image)


@dataclass
class Scenario:
    name: str
    faults: Callable[[Seeded], list[Fault]]
    error: type[Exception] | None = None  # None: the pull must succeed
    by_digest: bool = False
    timeout: float = 10.0
    auth: tuple[str, str] | None = None


def _schema1(body: bytes) -> bytes:
    return b'{"schemaVersion": 1, "name": "x", "tag": "v1", "fsLayers": []}'


SCENARIOS = [
    Scenario(
        "reset mid-blob, then resume",
        lambda s: [Fault(path=f"/blobs/{s.big}", truncate_after=5000)],
    ),
    Scenario(
        "truncated three times in a row",
        lambda s: [Fault(path=f"/blobs/{s.big}", truncate_after=20_000, times=3)],
    ),
    Scenario(
        "stall past the read time-out, then resume",
        lambda s: [Fault(path=f"/blobs/{s.big}", truncate_after=10_000, stall=10.0)],
        timeout=2.0,
    ),
    Scenario("slow trickle", lambda s: [Fault(path=f"/blobs/{s.big}", trickle=(65_536, 0.01))]),
    Scenario(
        "corrupted byte in a layer",
        lambda s: [Fault(path=f"/blobs/{s.big}", corrupt_at=777, times=None)],
        DigestMismatchError,
    ),
    Scenario(
        "corrupted config",
        lambda s: [Fault(path=f"/blobs/{s.image.config_digest}", corrupt_at=3, times=None)],
        DigestMismatchError,
    ),
    Scenario(
        "layer longer than declared",
        lambda s: [Fault(path=f"/blobs/{s.big}", transform=lambda b: b + b"extra", times=None)],
        SizeMismatchError,
    ),
    Scenario(
        "wrong Docker-Content-Digest on the manifest",
        lambda s: [
            Fault(
                path="/manifests/",
                method="GET",
                times=None,
                set_headers={"Docker-Content-Digest": "sha256:" + "0" * 64},
            )
        ],
        DigestMismatchError,
        by_digest=True,
    ),
    Scenario(
        "wrong Docker-Content-Digest on HEAD: the body decides",
        lambda s: [
            Fault(
                path="/manifests/v1",
                method="HEAD",
                set_headers={"Docker-Content-Digest": "sha256:" + "1" * 64},
            )
        ],
        RegistryError,
    ),
    Scenario(
        "manifest body not matching its digest",
        lambda s: [
            Fault(
                path="/manifests/sha256",
                method="GET",
                times=None,
                transform=lambda b: b + b" ",
                drop_headers=("Docker-Content-Digest",),
            )
        ],
        DigestMismatchError,
    ),
    Scenario(
        "oversized manifest",
        lambda s: [
            Fault(
                path="/manifests/",
                method="GET",
                times=None,
                status=200,
                body=b" " * (4 * 1024 * 1024 + 1),
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
            )
        ],
        ManifestTooLargeError,
        by_digest=True,
    ),
    Scenario(
        "schema 1 manifest",
        lambda s: [
            Fault(
                path="/manifests/",
                times=None,
                transform=_schema1,
                set_headers={
                    "Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"
                },
                drop_headers=("Docker-Content-Digest",),
            )
        ],
        UnsupportedManifestError,
    ),
    Scenario(
        "429 with Retry-After on the manifest",
        lambda s: [Fault(path="/manifests/", status=429, headers={"Retry-After": "0"}, times=2)],
    ),
    Scenario(
        "500/502/503 burst on blobs",
        lambda s: [Fault(path="/blobs/", status=code) for code in (500, 502, 503)],
    ),
    Scenario(
        "503 forever", lambda s: [Fault(path="/manifests/", status=503, times=None)], RegistryError
    ),
    Scenario(
        "401 loop (challenge never satisfied)",
        lambda s: [
            Fault(
                path="/v2/",
                status=401,
                times=None,
                headers={"WWW-Authenticate": 'Basic realm="loop"'},
            )
        ],
        AuthenticationError,
        auth=(TEST_USER, TEST_PASSWORD),
    ),
    Scenario(
        "redirect loop",
        lambda s: [Fault(path="/blobs/", times=None, redirect_to=lambda seen: seen.path)],
        RegistryError,
    ),
    Scenario(
        "404 for a layer",
        lambda s: [Fault(path=f"/blobs/{s.big}", status=404, times=None)],
        RegistryError,
    ),
    Scenario(
        "garbage error body",
        lambda s: [Fault(path="/manifests/", status=400, times=None, body=b"\xff\x00 not json")],
        RegistryError,
    ),
    Scenario(
        "Range ignored on resume",
        lambda s: [
            Fault(path=f"/blobs/{s.big}", truncate_after=30_000),
            Fault(path=f"/blobs/{s.big}", ignore_range=True),
        ],
    ),
    Scenario(
        "206 from the wrong offset",
        lambda s: [
            Fault(path=f"/blobs/{s.big}", truncate_after=30_000),
            Fault(path=f"/blobs/{s.big}", range_shift=7, times=None),
        ],
        RegistryError,
    ),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_fault_scenario(
    scenario: Scenario, seeded: Seeded, proxy: FaultProxy, tmp_path: Path
) -> None:
    for fault in scenario.faults(seeded):
        proxy.add(fault)
    store = Store(tmp_path / "store")
    name = f"{proxy.host}/{seeded.repository}"
    name += f"@{seeded.image.digest}" if scenario.by_digest else ":v1"
    options = RegistryOptions(
        plain_http=True, retry=FAST_RETRY, timeout=httpx.Timeout(scenario.timeout)
    ).with_auth(scenario.auth)
    if scenario.error is None:
        pulled = pull(name, store=store, options=options)
        assert pulled.digest == seeded.image.digest
        for digest, (_, data) in seeded.image.blobs().items():
            assert store.read_blob(digest) == data
    else:
        with pytest.raises(scenario.error) as raised:
            pull(name, store=store, options=options)
        assert isinstance(raised.value, OciStoreError)
        assert store.find_image(name) is None
    report = store.fsck()
    # A failed pull keeps its partial downloads on purpose (the next pull resumes them);
    # anything else fsck finds is damage.
    assert all(p.kind is ProblemKind.LEFTOVER_INGEST for p in report.problems), report.problems
    # whatever happened, the same store completes the pull once the faults are gone
    proxy.reset()
    assert pull(
        name, store=store, options=RegistryOptions(plain_http=True, retry=FAST_RETRY)
    ).digest == (seeded.image.digest)
    assert store.fsck().ok


def test_mirror_serving_bad_content_does_not_fall_through(
    registries: Registries, seeded: Seeded, proxy: FaultProxy, tmp_path: Path
) -> None:
    upstream = registries.plain
    config = tmp_path / "certs.d" / upstream.host
    config.mkdir(parents=True)
    (config / "hosts.toml").write_text(
        f'server = "{upstream.url}"\n[host."{proxy.url}"]\ncapabilities = ["pull"]\n'
    )
    proxy.add(Fault(path=f"/blobs/{seeded.big}", corrupt_at=10, times=None))
    store = Store(tmp_path / "store")
    with pytest.raises(DigestMismatchError):
        pull(
            f"{upstream.host}/{seeded.repository}:v1",
            store=store,
            options=RegistryOptions(hosts_dir=tmp_path / "certs.d", retry=FAST_RETRY),
        )
    assert all(p.kind is ProblemKind.LEFTOVER_INGEST for p in store.fsck().problems)


def test_credentials_never_appear_in_logs_or_errors(
    registries: Registries,
    seeded: Seeded,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    for name in ("basic", "token"):
        setup = make_setup(registries, name)
        ref = f"{setup.host}/{seeded.repository}:v1"
        pulled = pull(
            ref,
            store=Store(tmp_path / name),
            options=RegistryOptions(auth=(TEST_USER, TEST_PASSWORD), retry=FAST_RETRY),
        )
        texts.append(repr(pulled))
        with pytest.raises(AuthenticationError) as raised:
            pull(
                ref,
                store=Store(tmp_path / f"{name}-bad"),
                options=RegistryOptions(auth=(TEST_USER, TEST_PASSWORD + "x"), retry=FAST_RETRY),
            )
        texts += [str(raised.value), repr(raised.value)]
    captured = capsys.readouterr()
    texts += [caplog.text, captured.out, captured.err]
    assert caplog.records, "debug logging should have recorded the requests"
    for text in texts:
        assert TEST_PASSWORD not in text


BLOB_BODY_SCENARIOS = [
    s
    for s in SCENARIOS
    if s.name
    in {
        "reset mid-blob, then resume",
        "truncated three times in a row",
        "stall past the read time-out, then resume",
        "slow trickle",
        "corrupted byte in a layer",
        "corrupted config",
        "layer longer than declared",
        "Range ignored on resume",
        "206 from the wrong offset",
    }
]


@pytest.mark.parametrize("scenario", BLOB_BODY_SCENARIOS, ids=[s.name for s in BLOB_BODY_SCENARIOS])
def test_fault_scenario_with_bodies_from_the_socket(
    scenario: Scenario,
    seeded: Seeded,
    proxy: FaultProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The blob scenarios again, every body received from the socket directly."""
    monkeypatch.setattr(bodies, "DIRECT_MIN", 0)
    test_fault_scenario(scenario, seeded, proxy, tmp_path)
