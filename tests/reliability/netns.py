"""A registry in its own network namespace behind a veth pair, with a shaped link.

The link is capped with ``tc`` (a token bucket on both ends) and loses packets at random
through ``iptables -m statistic`` inside the namespace. ``tc netem`` (latency, jitter,
reordering) needs the kernel's ``sch_netem``, which some kernels (this machine's) lack:
``netem_available()`` tells, and the shaping adds netem only where it is.

Names carry the test process's pid (so parallel sessions never collide); the addresses are a
/30 of 198.18.0.0/15 (RFC 2544, benchmarking) picked by pid, living only on this pair.
Everything created is removed on exit: the namespace (with its veth end), the host end, the
qdiscs, the blackhole route.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ci import cannot_run
from regfixtures.registry import Registry, registry_config, start_registry

REGISTRY_PORT = 5000


def _subnet(pid: int) -> tuple[str, str, str]:
    """A /30 of 198.18.0.0/15 picked by pid: (network, host end, namespace end)."""
    offset = (pid % 32768) * 4
    prefix = f"198.{18 + (offset >> 16)}.{(offset >> 8) & 255}"
    low = offset & 255
    return f"{prefix}.{low}/30", f"{prefix}.{low + 1}", f"{prefix}.{low + 2}"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def tc(*args: str) -> None:
    subprocess.run(["tc", *args], check=True, capture_output=True, timeout=30)


def netem_available() -> bool:
    """Whether the kernel has the netem qdisc (a probe on a throwaway veth pair)."""
    probe = f"ocip{os.getpid()}"
    if subprocess.run(["ip", "link", "add", probe, "type", "veth", "peer", "name", probe + "x"],
                      capture_output=True, timeout=30).returncode != 0:  # fmt: skip
        return False
    try:
        added = subprocess.run(
            ["tc", "qdisc", "add", "dev", probe, "root", "netem", "delay", "1ms"],
            capture_output=True,
            timeout=30,
        )
        return added.returncode == 0
    finally:
        subprocess.run(["ip", "link", "del", probe], capture_output=True, timeout=30)


@dataclass
class NetnsRegistry:
    """The namespace, the host's end of the link, and the registry serving inside."""

    namespace: str
    address: str
    host_link: str
    namespace_link: str
    directory: Path
    config: dict[str, object]
    registry: Registry

    @property
    def host(self) -> str:
        return f"{self.address}:{REGISTRY_PORT}"

    def _ends(self) -> list[tuple[list[str], str]]:
        return [(["-n", self.namespace], self.namespace_link), ([], self.host_link)]

    def shape(
        self, rate: str | None = None, loss: float = 0.0, netem: tuple[str, ...] = ()
    ) -> None:
        """Caps both directions at ``rate`` (e.g. "8mbit"), drops ``loss`` of the packets
        each way, and applies ``netem`` options where the kernel has netem."""
        self.unshape()
        for where, link in self._ends():
            if netem:
                qdisc = ["netem", *netem, *(["rate", rate] if rate else [])]
            elif rate:
                qdisc = ["tbf", "rate", rate, "burst", "32kb", "latency", "400ms"]
            else:
                continue
            tc(*where, "qdisc", "replace", "dev", link, "root", *qdisc)
        if loss:
            for chain in ("INPUT", "OUTPUT"):
                ip("netns", "exec", self.namespace, "iptables", "-A", chain, "-m", "statistic",
                   "--mode", "random", "--probability", str(loss), "-j", "DROP")  # fmt: skip

    def unshape(self) -> None:
        """Removes the qdiscs and the loss rules."""
        for where, link in self._ends():
            subprocess.run(
                ["tc", *where, "qdisc", "del", "dev", link, "root"],
                capture_output=True,
                timeout=30,
            )
        ip("netns", "exec", self.namespace, "iptables", "-F")

    def link(self, up: bool) -> None:
        """Sets the host's end of the link up or down."""
        ip("link", "set", "dev", self.host_link, "up" if up else "down")

    def restart_registry(self) -> None:
        """Starts the registry again (after the test killed it) on the same storage."""
        self.registry = start_registry("netns", self.directory, self.config, netns=self.namespace)


@contextlib.contextmanager
def registry_in_namespace(directory: Path) -> Iterator[NetnsRegistry]:
    """A registry inside a fresh namespace at an address of 198.18.0.0/15; removed on exit.

    A blackhole route for the pair's /30 stays when the link is down, so the registry's
    address is never routed anywhere else (the default route would take it off the machine).
    """
    if any(shutil.which(tool) is None for tool in ("ip", "tc", "iptables")) or os.geteuid():
        cannot_run("network namespaces need root, iproute2 (ip, tc) and iptables")
    pid = os.getpid()
    namespace, host_link, ns_link = f"ocistore-{pid}", f"ocih{pid}", f"ocin{pid}"
    network, host_address, registry_address = _subnet(pid)
    try:
        ip("route", "add", "blackhole", network, "metric", "4000")
    except subprocess.CalledProcessError as exc:
        cannot_run(f"cannot add a blackhole route: {exc.stderr!r}")
    registry: Registry | None = None
    netns: NetnsRegistry | None = None
    try:
        ip("netns", "add", namespace)
        ip("link", "add", host_link, "type", "veth", "peer", "name", ns_link)
        ip("link", "set", ns_link, "netns", namespace)
        ip("addr", "add", f"{host_address}/30", "dev", host_link)
        ip("link", "set", host_link, "up")
        ip("-n", namespace, "addr", "add", f"{registry_address}/30", "dev", ns_link)
        ip("-n", namespace, "link", "set", ns_link, "up")
        ip("-n", namespace, "link", "set", "lo", "up")
        config = registry_config(port=REGISTRY_PORT, storage=directory / "storage")
        http = config["http"]
        assert isinstance(http, dict)
        http["addr"] = f"{registry_address}:{REGISTRY_PORT}"
        registry = start_registry("netns", directory / "registry", config, netns=namespace)
        netns = NetnsRegistry(
            namespace,
            registry_address,
            host_link,
            ns_link,
            directory / "registry",
            config,
            registry,
        )
        yield netns
    finally:
        current = netns.registry if netns is not None else registry
        if current is not None:
            current.stop()
        subprocess.run(["ip", "netns", "del", namespace], check=False, timeout=30)
        subprocess.run(["ip", "link", "del", host_link], capture_output=True, timeout=30)
        subprocess.run(
            ["ip", "route", "del", "blackhole", network], capture_output=True, timeout=30
        )
