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
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

    veth: Any  # tests/netns.py's VethLink: the pair, its devices and addresses

    @property
    def name(self) -> str:
        """The namespace's name."""
        return str(self.veth.namespace)

    @property
    def inner_address(self) -> str:
        """The registry's address inside the namespace."""
        return str(self.veth.inner_address)

    def shape(self, link: Link) -> None:
        """Sets both directions' bandwidth and loss to ``link``'s (the relay adds the delay)."""
        self.veth.shape(f"{link.rate_mbit:g}mbit", link.loss_percent / 100)


def _netns() -> Any:
    """The tests' network helper (tests/netns.py): one for tests and benches."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    import netns

    return netns


@contextlib.contextmanager
def namespace() -> Iterator[Namespace]:
    """A fresh namespace joined to the host by a veth pair (no shaping yet); removed on exit."""
    with _netns().veth_namespace("bench", offload=False) as veth:
        yield Namespace(veth)


@contextlib.contextmanager
def delayed(target: tuple[str, int], rtt_ms: float) -> Iterator[Any]:
    """A relay on 127.0.0.1 (``.port``) adding ``rtt_ms`` to every round trip to ``target``."""
    with _netns().delayed(target, rtt_ms) as relay:
        yield relay
