"""An emulated wide-area link: the registry in its own network namespace behind a shaped veth.

A veth pair joins a namespace created here to the host. This machine's kernel has no ``netem``
(``tc`` answers "Specified qdisc kind is unknown"), so the link is built from what it has:
``tbf`` on both ends caps the bandwidth, ``iptables -m statistic`` inside the namespace drops
the asked share of packets in both directions (real loss, recovered by real TCP), and a relay
on the host adds half the round-trip time to every chunk in each direction, so every request
pays the RTT. (TCP's own window growth does not see that delay: a stricter link than this one
is not emulated.) Segmentation offload is off on the pair, so shaping and loss act on real
1500-byte packets. Names carry the pid and addresses come from 198.18.0.0/15 (RFC 2544's
benchmarking range), so parallel runs do not collide; everything is removed on exit, by name.
Needs root.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TESTS = Path(__file__).resolve().parents[2] / "tests"


@dataclass(frozen=True)
class Link:
    """The link's shape."""

    rtt_ms: float = 30.0
    rate_mbit: float = 100.0
    loss_percent: float = 0.0

    def describe(self) -> str:
        """How the link is shown in the report."""
        loss = f", {self.loss_percent:g}% loss" if self.loss_percent else ""
        return f"{self.rtt_ms:g} ms RTT, {self.rate_mbit:g} Mbit/s{loss}"


@dataclass(frozen=True)
class Namespace:
    """The namespace the registry runs in, and the address it is reached at."""

    name: str
    host_device: str
    inner_device: str
    inner_address: str

    def exec_prefix(self) -> list[str]:
        """Prefix that runs a command inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def shape(self, link: Link) -> None:
        """Sets both directions' bandwidth and loss to ``link``'s (the relay adds the delay)."""
        rate = f"{link.rate_mbit:g}mbit"
        for prefix, device in (([], self.host_device), (self.exec_prefix(), self.inner_device)):
            _ip(*prefix, "tc", "qdisc", "replace", "dev", device, "root", "tbf", "rate", rate,
                "burst", "64kb", "latency", "200ms")  # fmt: skip
        iptables = [*self.exec_prefix(), "iptables"]
        for chain in ("INPUT", "OUTPUT"):
            _ip(*iptables, "-F", chain)
            if link.loss_percent:
                _ip(*iptables, "-A", chain, "-m", "statistic", "--mode", "random",
                    "--probability", f"{link.loss_percent / 100:g}", "-j", "DROP")  # fmt: skip


def _ip(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@contextlib.contextmanager
def namespace() -> Iterator[Namespace]:
    """A fresh namespace joined to the host by a veth pair (no shaping yet); removed on exit."""
    sys.path.insert(0, str(TESTS))
    from netns import veth_namespace  # the tests' namespace helper: one for tests and benches

    with veth_namespace("bench", offload=False) as link:
        yield Namespace(link.namespace, link.host_device, link.inner_device, link.inner_address)


class DelayRelay:
    """A TCP relay on 127.0.0.1 that holds every chunk for ``one_way`` seconds per direction."""

    def __init__(self, target: tuple[str, int], one_way: float) -> None:
        self.target = target
        self.one_way = one_way
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        """Stop accepting (open connections end when either side closes)."""
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for source, sink in ((client, upstream), (upstream, client)):
                chunks: queue.Queue[tuple[float, bytes]] = queue.Queue()
                threading.Thread(target=self._read, args=(source, chunks), daemon=True).start()
                threading.Thread(target=self._write, args=(sink, chunks), daemon=True).start()

    def _read(self, source: socket.socket, chunks: queue.Queue[tuple[float, bytes]]) -> None:
        while True:
            try:
                data = source.recv(1 << 16)
            except OSError:
                data = b""
            chunks.put((time.monotonic() + self.one_way, data))
            if not data:
                return

    def _write(self, sink: socket.socket, chunks: queue.Queue[tuple[float, bytes]]) -> None:
        while True:
            due, data = chunks.get()
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                if not data:
                    sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(data)
            except OSError:
                return


@contextlib.contextmanager
def delayed(target: tuple[str, int], rtt_ms: float) -> Iterator[DelayRelay]:
    """A :class:`DelayRelay` adding ``rtt_ms`` to every round trip to ``target``."""
    relay = DelayRelay(target, rtt_ms / 2000)
    try:
        yield relay
    finally:
        relay.close()
