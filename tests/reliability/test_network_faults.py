"""Network faults (issue 17): the registry in its own network namespace behind a veth pair
with packet loss (iptables statistic), a bandwidth cap (tc tbf) and reordering (NFQUEUE);
latency and jitter from the userspace relay in ``tests/netns.py`` (30 ms RTT, per-chunk
jitter), and a link that stalls mid-layer for less, or longer, than the read timeout; the link
set down mid-layer; the registry killed and restarted mid-pull; and a registry that is gone.

Pulls complete, resuming with ``Range`` (a layer is fetched in pieces, not again from its
first byte), or fail with the typed ``RegistryUnavailableError`` within the configured
timeouts. Traffic stays inside the namespace pair and on 127.0.0.1; everything is removed
afterwards.

Packet reordering: this kernel has no ``netem`` and a relay forwards an ordered byte stream,
so packets leaving the registry's namespace go through NFQUEUE to a userspace verdict program
(``tests/nfqueue_reorder.py``, raw nfnetlink) that lets one in ten leave after the next one.
Segmentation offload is off on the pair, so shaping, loss and reordering act on real packets.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from ci import cannot_run
from netns import NamespacesUnavailable, VethLink, delayed, reordering, veth_namespace
from publishing import push_with_ocistore
from regfixtures.registry import Registry, registry_config, registry_requests, start_registry
from waiting import join_all

import ocistore
from ocistore.registry import RetryPolicy
from ocistore.registry.options import RegistryOptions
from ocistore.store import Store
from ocistore.testing.imagebuild import BuiltImage, build_image

SEED = 20261129
PLAIN = RegistryOptions(plain_http=True)
TIMEOUT = 3.0  # seconds without progress before a request counts as failed
RETRY = RetryPolicy(attempts=8, backoff_initial=0.2, backoff_max=1.0, retry_after_max=2.0)
REGISTRY_PORT = 5000
REPOSITORY = "net/app:v1"


@dataclass
class NetnsRegistry:
    """A registry serving inside the namespace at the far end of ``link``."""

    link: VethLink
    directory: Path
    config: dict[str, object]
    registry: Registry

    @property
    def host(self) -> str:
        return f"{self.link.inner_address}:{REGISTRY_PORT}"

    def restart_registry(self) -> None:
        """Starts the registry again (after the test killed it) on the same storage."""
        self.registry = start_registry(
            "netns", self.directory, self.config, netns=self.link.namespace
        )


@pytest.fixture(scope="module")
def shaped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NetnsRegistry, BuiltImage]]:
    """The namespaced registry holding a two-layer image of incompressible data (~4 MB)."""
    rng = random.Random(SEED)
    image = build_image(
        [{"big.bin": rng.randbytes(3_000_000)}, {"small.bin": rng.randbytes(1_000_000)}],
        compression="gzip",
    )
    directory = tmp_path_factory.mktemp("netns")
    try:
        with veth_namespace("faults", offload=False) as link:
            config = registry_config(port=REGISTRY_PORT, storage=directory / "storage")
            config["http"]["addr"] = f"{link.inner_address}:{REGISTRY_PORT}"  # type: ignore[index]
            registry = start_registry("netns", directory / "registry", config, netns=link.namespace)
            netns = NetnsRegistry(link, directory / "registry", config, registry)
            try:
                push_with_ocistore(
                    image, f"{netns.host}/{REPOSITORY}", tmp_path_factory.mktemp("netns-seed")
                )
                yield netns, image
            finally:
                netns.registry.stop()  # the current one: a test may have restarted it
    except NamespacesUnavailable as exc:
        cannot_run(f"network namespaces unavailable: {exc}")


@pytest.fixture(params=[False, True], ids=["pull", "pull-unpack"])
def rootfs(request: pytest.FixtureRequest, tmp_path: Path) -> Path | None:
    """Where ``pull --unpack`` writes the root filesystem, or None for a plain pull."""
    return tmp_path / "rootfs" if request.param else None


def _pull(
    host: str, root: Path, *, unpack: Path | None = None, options: RegistryOptions | None = None
) -> ocistore.PulledImage:
    return ocistore.pull(
        f"{host}/{REPOSITORY}",
        store=Store(root),
        unpack=unpack,
        options=options or RegistryOptions(plain_http=True, timeout=TIMEOUT, retry=RETRY),
    )


def _layer_bytes(image: BuiltImage) -> int:
    return sum(layer.size for layer in image.layers)


def _gets_of(netns: NetnsRegistry, digest: str, since: int) -> int:
    return sum(
        1
        for method, path in registry_requests(netns.registry)[since:]
        if method == "GET" and path.endswith(digest)
    )


def _assert_complete(root: Path, image: BuiltImage, rootfs: Path | None = None) -> None:
    store = Store(root)
    assert all(store.has_blob(layer.digest) for layer in image.layers)
    report = store.fsck()
    assert report.ok and report.problems == [], report.problems
    if rootfs is not None:
        rng = random.Random(SEED)  # the image's files, made again from the seed
        assert (rootfs / "big.bin").read_bytes() == rng.randbytes(3_000_000)
        assert (rootfs / "small.bin").read_bytes() == rng.randbytes(1_000_000)


def _tcp_out_of_order_segments() -> int:
    """The host's count of TCP segments received out of order (``TcpExt: TCPOFOQueue``)."""
    lines = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines()]
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        if names[0] == "TcpExt:":
            return int(values[names.index("TCPOFOQueue")])
    raise AssertionError("no TcpExt counters in /proc/net/netstat")


def _pull_in_background(netns: NetnsRegistry, root: Path) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(_pull(netns.host, root))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_loss_a_bandwidth_cap_and_30ms_rtt_with_jitter(
    shaped: tuple[NetnsRegistry, BuiltImage], tmp_path: Path, rootfs: Path | None
) -> None:
    netns, image = shaped
    netns.link.shape(rate="40mbit", loss=0.03)
    try:
        target = (netns.link.inner_address, REGISTRY_PORT)
        with delayed(target, rtt_ms=30, jitter_ms=20, seed=SEED) as relay:
            pulled = _pull(relay.host, tmp_path / "store", unpack=rootfs)
    finally:
        netns.link.unshape()
    assert relay.forwarded_down > _layer_bytes(image)  # it all came through the relay
    assert pulled.bytes_downloaded == _layer_bytes(image)
    _assert_complete(tmp_path / "store", image, rootfs)


def test_reordered_packets(
    shaped: tuple[NetnsRegistry, BuiltImage], tmp_path: Path, rootfs: Path | None
) -> None:
    netns, image = shaped
    out_of_order = _tcp_out_of_order_segments()
    with reordering(netns.link.namespace, every=10) as swapped:
        pulled = _pull(netns.host, tmp_path / "store", unpack=rootfs)
    # Segmentation offload is off on the pair: ~3,000 packets for the 4 MB, one in ten swapped,
    # and this side's TCP queued segments that came out of order (others' traffic only adds).
    assert swapped.reordered >= 100, swapped
    assert _tcp_out_of_order_segments() - out_of_order >= 50
    assert pulled.bytes_downloaded == _layer_bytes(image)
    _assert_complete(tmp_path / "store", image, rootfs)


def test_a_link_stalling_mid_layer_within_the_read_timeout(
    shaped: tuple[NetnsRegistry, BuiltImage], tmp_path: Path, rootfs: Path | None
) -> None:
    netns, image = shaped
    big = image.layers[0]
    mark = len(registry_requests(netns.registry))
    target = (netns.link.inner_address, REGISTRY_PORT)
    options = RegistryOptions(plain_http=True, timeout=4.0, retry=RETRY)
    with delayed(target, rtt_ms=30, jitter_ms=10, seed=SEED) as relay:
        relay.stall_after(_layer_bytes(image) * 3 // 8, seconds=1.5)  # inside the big layer
        pulled = _pull(relay.host, tmp_path / "store", unpack=rootfs, options=options)
    assert relay.stalls == 1
    _assert_complete(tmp_path / "store", image, rootfs)
    # The stall was waited out on the same request: no retry, nothing fetched twice.
    assert _gets_of(netns, big.digest, mark) == 1
    assert pulled.bytes_downloaded == _layer_bytes(image)


def test_a_stall_longer_than_the_read_timeout_is_registry_unavailable(
    shaped: tuple[NetnsRegistry, BuiltImage], tmp_path: Path
) -> None:
    netns, image = shaped
    target = (netns.link.inner_address, REGISTRY_PORT)
    no_retry = RetryPolicy(attempts=1)
    options = RegistryOptions(plain_http=True, timeout=1.0, retry=no_retry)
    with delayed(target, rtt_ms=30, seed=SEED) as relay:
        relay.stall_after(_layer_bytes(image) * 3 // 8, seconds=5.0)
        with pytest.raises(ocistore.RegistryUnavailableError) as raised:
            _pull(relay.host, tmp_path / "store", options=options)
    assert relay.stalls == 1
    # A read timed out: a light request's socket (a body broken off, BodyInterruptedError) or,
    # for one asked again the full way, httpx's.
    causes = []
    cause = raised.value.__cause__
    while cause is not None:
        causes.append(cause)
        cause = cause.__cause__
    assert any(isinstance(cause, TimeoutError | httpx.ReadTimeout) for cause in causes), causes
    # The broken-off layer is not visible, and what the store holds is whole.
    store = Store(tmp_path / "store")
    assert not store.has_blob(image.layers[0].digest)
    report = store.fsck()
    assert report.ok and report.problems == [], report.problems


def test_link_down_mid_layer_then_the_pull_resumes(
    shaped: tuple[NetnsRegistry, BuiltImage], tmp_path: Path
) -> None:
    netns, image = shaped
    big = image.layers[0]
    mark = len(registry_requests(netns.registry))
    netns.link.shape(rate="8mbit")  # ~1 MB/s: the big layer takes ~3 s
    try:
        thread, outcome = _pull_in_background(netns, tmp_path / "store")
        time.sleep(1.2)
        netns.link.set_up(False)
        time.sleep(3)
        netns.link.set_up(True)
        join_all([thread], timeout=120)
    finally:
        netns.link.set_up(True)
        netns.link.unshape()
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
    netns.link.shape(rate="8mbit")
    try:
        thread, outcome = _pull_in_background(netns, tmp_path / "store")
        time.sleep(1.2)
        netns.registry.process.kill()  # by the pid we started
        netns.registry.process.wait(timeout=10)
        time.sleep(2)
        netns.restart_registry()
        join_all([thread], timeout=120)
    finally:
        netns.link.unshape()
    pulled = outcome[0]
    assert isinstance(pulled, ocistore.PulledImage), pulled
    _assert_complete(tmp_path / "store", image)
    assert pulled.bytes_downloaded < _layer_bytes(image) + image.layers[0].size // 2


def test_a_registry_that_is_gone_is_registry_unavailable_within_the_timeouts(
    shaped: tuple[NetnsRegistry, BuiltImage], tmp_path: Path
) -> None:
    netns, _ = shaped
    other = f"{netns.host}/net/{uuid.uuid4().hex[:8]}:v1"
    netns.link.set_up(False)  # packets vanish: every attempt has to time out
    started = time.monotonic()
    try:
        with pytest.raises(ocistore.RegistryUnavailableError):
            ocistore.pull(
                other,
                store=Store(tmp_path / "store"),
                options=RegistryOptions(plain_http=True, timeout=1.0, retry=RETRY),
            )
    finally:
        netns.link.set_up(True)
    # Attempts x (connect timeout + the longest back-off), with room for a loaded machine.
    bound = RETRY.attempts * (1.0 + RETRY.backoff_max) * 3 + 10
    assert time.monotonic() - started < bound
