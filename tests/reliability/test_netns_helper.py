"""The shared network helper (``tests/netns.py``) keeps its promises: what it makes is removed
after a failure too (and after a SIGKILL, by the next user's sweep), a link that is down
blackholes its addresses instead of routing them off the machine, and the relay delays,
jitters and stalls without losing or reordering a byte.

Delays are checked as lower bounds only: a loaded machine makes them longer, never shorter.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ci import cannot_run
from netns import NamespacesUnavailable, VethLink, delayed, require_tools, veth_namespace

TESTS = Path(__file__).resolve().parents[1]


def _namespaces() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in listed.stdout.splitlines() if line.strip()}


def _links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout


def _blackholes() -> str:
    shown = subprocess.run(["ip", "route", "show", "type", "blackhole"], capture_output=True)
    return shown.stdout.decode()


def _subnet(address: str) -> str:
    return str(ipaddress.ip_network(f"{address}/30", strict=False))


def _gone(link: VethLink) -> bool:
    return (
        link.namespace not in _namespaces()
        and f"{link.host_device}@" not in _links()
        and f"blackhole {_subnet(link.host_address)} " not in _blackholes()
    )


@pytest.fixture
def root_network() -> None:
    try:
        require_tools()
    except NamespacesUnavailable as exc:
        cannot_run(f"network namespaces unavailable: {exc}")


@pytest.mark.usefixtures("root_network")
def test_everything_made_is_removed_when_the_body_fails() -> None:
    made: list[VethLink] = []
    with pytest.raises(ZeroDivisionError), veth_namespace("fail") as link:
        made.append(link)
        link.shape(rate="10mbit", loss=0.01)
        assert link.namespace in _namespaces() and f"{link.host_device}@" in _links()
        1 / 0  # noqa: B018 - the failing test body
    assert _gone(made[0])


@pytest.mark.usefixtures("root_network")
def test_a_killed_process_leaves_nothing_after_the_next_sweep(tmp_path: Path) -> None:
    script = (
        "import os, signal, sys\n"
        f"sys.path.insert(0, {str(TESTS)!r})\n"
        "from netns import veth_namespace\n"
        "with veth_namespace('killed') as link:\n"
        "    print(link.namespace, link.host_device, link.host_address, flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    name, device, address = done.stdout.split()
    left = VethLink(name, device, address, "", "")
    assert name in _namespaces() and f"{device}@" in _links()  # SIGKILL skips every finally
    with veth_namespace("sweeper"):  # any new user sweeps dead pids' leftovers first
        assert name not in _namespaces() and f"{device}@" not in _links()
    # A dead process's blackhole route stays (it only keeps 198.18.0.0/15 on the machine, and
    # the next pair picks another /30): removed here by the test that made it.
    subprocess.run(
        ["ip", "route", "del", "blackhole", _subnet(address), "metric", "4000"], check=True
    )
    assert _gone(left)


@pytest.mark.usefixtures("root_network")
def test_a_link_that_is_down_blackholes_its_addresses() -> None:
    with veth_namespace("down") as link:
        link.set_up(False)
        route = subprocess.run(
            ["ip", "route", "get", link.inner_address], capture_output=True, text=True
        )
        # The blackhole answers (EINVAL), not the default route (" via " a gateway) nor
        # "Network is unreachable".
        assert route.returncode != 0 and "Invalid argument" in route.stderr, route


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    """A TCP echo server on 127.0.0.1 (one client at a time)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(1 << 16):
                    conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()
    finally:
        listener.close()


def _round_trip(sock: socket.socket, message: bytes) -> float:
    started = time.monotonic()
    sock.sendall(message)
    received = b""
    while len(received) < len(message):
        received += sock.recv(1 << 16)
    assert received == message
    return time.monotonic() - started


def test_the_relay_delays_and_jitters_every_round_trip_in_order(
    echo_server: tuple[str, int],
) -> None:
    with (
        delayed(echo_server, rtt_ms=30, jitter_ms=20, seed=1) as relay,
        socket.create_connection(("127.0.0.1", relay.port)) as sock,
    ):
        trips = [_round_trip(sock, b"%d:" % n + os.urandom(n * 97)) for n in range(12)]
        burst = b"".join(b"<%d>" % n for n in range(2000))  # many chunks, still in order
        _round_trip(sock, burst)
    # 30 ms RTT with each way 15 ms +- 10 ms: never under 10 ms, and not all the same.
    assert min(trips) >= 0.010, trips
    assert max(trips) - min(trips) > 0.001, trips


def test_the_relay_stalls_once_after_the_bytes_asked(echo_server: tuple[str, int]) -> None:
    with (
        delayed(echo_server, rtt_ms=0) as relay,
        socket.create_connection(("127.0.0.1", relay.port)) as sock,
    ):
        relay.stall_after(1000, seconds=1.0)
        _round_trip(sock, b"x" * 999)
        assert relay.stalls == 0
        crossing = _round_trip(sock, b"y" * 10)  # its answer crosses 1000 bytes
        assert relay.stalls == 1
        stalled = _round_trip(sock, b"z" * 10)  # nothing moves until the stall ends
    assert crossing + stalled >= 1.0
