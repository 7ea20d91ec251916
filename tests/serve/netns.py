"""Test "nodes": network namespaces joined by veth pairs to a bridge in a switch namespace.

Every name includes this process's pid; addresses come from 198.18.0.0/15 (RFC 2544, for
benchmarking), which exists only on these veths: nothing leaves the machine. ``close()``
deletes the namespaces, which removes their links, bridge and qdiscs with them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


class NamespacesUnavailable(RuntimeError):
    """Network namespaces cannot be created here (not root, or no iproute2)."""


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise NamespacesUnavailable(f"ip {' '.join(args)}: {done.stderr.strip()}")


@dataclass
class Fleet:
    """Named nodes on one 198.18.0.0/24 segment; ``exec(node)`` is the command prefix."""

    nodes: list[str]
    tag: str = field(default_factory=lambda: str(os.getpid()))
    created: list[str] = field(default_factory=list)
    etc_dirs: list[Path] = field(default_factory=list)

    def namespace(self, node: str) -> str:
        return f"ocistore-{self.tag}-{node}"

    def address(self, node: str) -> str:
        return f"198.18.0.{self.nodes.index(node) + 1}"

    def exec(self, node: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespace(node)]

    def start(self) -> Fleet:
        if os.geteuid() != 0:
            raise NamespacesUnavailable("network namespaces need root")
        switch = self.namespace("sw")
        try:
            for name in [switch, *(self.namespace(n) for n in self.nodes)]:
                _ip("netns", "add", name)
                self.created.append(name)
                _ip("-n", name, "link", "set", "lo", "up")
            _ip("-n", switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", switch, "link", "set", "br0", "up")
            for number, node in enumerate(self.nodes):
                ns, inner, outer = (
                    self.namespace(node),
                    f"o{self.tag}n{number}",
                    f"o{self.tag}p{number}",
                )
                _ip(
                    "link",
                    "add",
                    inner,
                    "netns",
                    ns,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    outer,
                    "netns",
                    switch,
                )
                _ip("-n", ns, "link", "set", inner, "name", "eth0")
                _ip("-n", ns, "addr", "add", f"{self.address(node)}/24", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
                _ip("-n", switch, "link", "set", outer, "master", "br0")
                _ip("-n", switch, "link", "set", outer, "up")
            return self
        except BaseException:
            self.close()
            raise

    def set_hosts(self, node: str, names: dict[str, list[str]]) -> None:
        """The node's /etc/hosts (``ip netns exec`` mounts /etc/netns/<ns>/hosts over it)."""
        directory = Path("/etc/netns") / self.namespace(node)
        directory.mkdir(parents=True, exist_ok=True)
        self.etc_dirs.append(directory)
        lines = [f"{address} {name}" for name, addresses in names.items() for address in addresses]
        (directory / "hosts").write_text("127.0.0.1 localhost\n" + "\n".join(lines) + "\n")

    def close(self) -> None:
        for directory in self.etc_dirs:
            shutil.rmtree(directory, ignore_errors=True)
        self.etc_dirs.clear()
        for name in reversed(self.created):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        self.created.clear()
