"""Network faults (issue 17): the registry in its own network namespace behind a veth pair
with packet loss (iptables statistic) and a bandwidth cap (tc), plus latency, jitter and
reordering with ``tc netem`` where the kernel has it; the link set down mid-layer; the registry
killed and restarted mid-pull; and a registry that is gone.

Pulls complete, resuming with ``Range`` (a layer is fetched in pieces, not again from its
first byte), or fail with the typed ``RegistryUnavailableError`` within the configured
timeouts. Traffic stays inside the namespace pair; everything is removed afterwards.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from regfixtures.registry import registry_requests
from waiting import join_all

import ocistore
from ocistore.registry import RetryPolicy
from ocistore.registry.options import RegistryOptions
from ocistore.store import Store
from ocistore.testing.imagebuild import BuiltImage, build_image

from .netns import NetnsRegistry, netem_available, registry_in_namespace

SEED = 20261129
PLAIN = RegistryOptions(plain_http=True)
TIMEOUT = 3.0  # seconds without progress before a request counts as failed
RETRY = RetryPolicy(attempts=8, backoff_initial=0.2, backoff_max=1.0, retry_after_max=2.0)


@pytest.fixture(scope="module")
def shaped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NetnsRegistry, BuiltImage]]:
    """The namespaced registry holding a two-layer image of incompressible data (~4 MB)."""
    rng = random.Random(SEED)
    image = build_image(
        [{"big.bin": rng.randbytes(3_000_000)}, {"small.bin": rng.randbytes(1_000_000)}],
        compression="gzip",
    )
    with registry_in_namespace(tmp_path_factory.mktemp("netns")) as netns:
        seed = Store(tmp_path_factory.mktemp("netns-seed"))
        image.write_to_store(seed, f"{netns.host}/net/app:v1")
        ocistore.push(f"{netns.host}/net/app:v1", store=seed, options=PLAIN)
        yield netns, image


def _pull(netns: NetnsRegistry, root: Path) -> ocistore.PulledImage:
    return ocistore.pull(
        f"{netns.host}/net/app:v1",
        store=Store(root),
        options=RegistryOptions(plain_http=True, timeout=TIMEOUT, retry=RETRY),
    )


def _layer_bytes(image: BuiltImage) -> int:
    return sum(layer.size for layer in image.layers)


def _gets_of(netns: NetnsRegistry, digest: str, since: int) -> int:
    return sum(
        1
        for method, path in registry_requests(netns.registry)[since:]
        if method == "GET" and path.endswith(digest)
    )


def _assert_complete(root: Path, image: BuiltImage) -> None:
    store = Store(root)
    assert all(store.has_blob(layer.digest) for layer in image.layers)
    report = store.fsck()
    assert report.ok and report.problems == [], report.problems


def _pull_in_background(netns: NetnsRegistry, root: Path) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(_pull(netns, root))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_loss_and_a_bandwidth_cap_and_where_possible_latency_and_reordering(
    shaped: tuple[NetnsRegistry, BuiltImage], tmp_path: Path
) -> None:
    netns, image = shaped
    latency = ("delay", "30ms", "10ms", "reorder", "10%") if netem_available() else ()
    netns.shape(rate="40mbit", loss=0.03, netem=latency)
    try:
        pulled = _pull(netns, tmp_path / "store")
    finally:
        netns.unshape()
    assert pulled.bytes_downloaded == _layer_bytes(image)
    _assert_complete(tmp_path / "store", image)


def test_link_down_mid_layer_then_the_pull_resumes(
    shaped: tuple[NetnsRegistry, BuiltImage], tmp_path: Path
) -> None:
    netns, image = shaped
    big = image.layers[0]
    mark = len(registry_requests(netns.registry))
    netns.shape(rate="8mbit")  # ~1 MB/s: the big layer takes ~3 s
    try:
        thread, outcome = _pull_in_background(netns, tmp_path / "store")
        time.sleep(1.2)
        netns.link(up=False)
        time.sleep(3)
        netns.link(up=True)
        join_all([thread], timeout=120)
    finally:
        netns.link(up=True)
        netns.unshape()
    pulled = outcome[0]
    assert isinstance(pulled, ocistore.PulledImage), pulled
    _assert_complete(tmp_path / "store", image)
    # The big layer came in more than one request, and not twice over: it was resumed.
    assert _gets_of(netns, big.digest, mark) >= 2
    assert pulled.bytes_downloaded < _layer_bytes(image) + big.size // 2


def test_registry_killed_and_restarted_mid_pull(
    shaped: tuple[NetnsRegistry, BuiltImage], tmp_path: Path
) -> None:
    netns, image = shaped
    netns.shape(rate="8mbit")
    try:
        thread, outcome = _pull_in_background(netns, tmp_path / "store")
        time.sleep(1.2)
        netns.registry.process.kill()  # by the pid we started
        netns.registry.process.wait(timeout=10)
        time.sleep(2)
        netns.restart_registry()
        join_all([thread], timeout=120)
    finally:
        netns.unshape()
    pulled = outcome[0]
    assert isinstance(pulled, ocistore.PulledImage), pulled
    _assert_complete(tmp_path / "store", image)
    assert pulled.bytes_downloaded < _layer_bytes(image) + image.layers[0].size // 2


def test_a_registry_that_is_gone_is_registry_unavailable_within_the_timeouts(
    shaped: tuple[NetnsRegistry, BuiltImage], tmp_path: Path
) -> None:
    netns, _ = shaped
    other = f"{netns.host}/net/{uuid.uuid4().hex[:8]}:v1"
    netns.link(up=False)  # packets vanish: every attempt has to time out
    started = time.monotonic()
    try:
        with pytest.raises(ocistore.RegistryUnavailableError):
            ocistore.pull(
                other,
                store=Store(tmp_path / "store"),
                options=RegistryOptions(plain_http=True, timeout=1.0, retry=RETRY),
            )
    finally:
        netns.link(up=True)
    # Attempts x (connect timeout + the longest back-off), with room for a loaded machine.
    bound = RETRY.attempts * (1.0 + RETRY.backoff_max) * 3 + 10
    assert time.monotonic() - started < bound
