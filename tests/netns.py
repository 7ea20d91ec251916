"""Network namespaces, veth links, link shaping and a delaying relay, for tests and benches.

One module for every user: the reliability suite (a registry behind a shaped link), the mirror
fleet (nodes on a bridge) and ``benches/peerbench/wan.py`` (which puts ``tests/`` on
``sys.path``, as it already does for the registry starter). It lives in ``tests/`` rather than
in the package because it needs root, iproute2 and iptables and changes the host's network:
no user of ocistore should import it, and the tests never depend on anything outside the
project.

Rules every helper here keeps:

- Names carry the creating process's pid (namespaces ``oci-<pid>-<role>``, links
  ``oci<pid><tag>``), so parallel sessions never collide; :func:`sweep_stale` removes what a
  process killed with SIGKILL left behind (its pid is gone), and every creator removes what it
  made on exit, also when the test or the set-up itself fails.
- Addresses are /30s of 198.18.0.0/15 (RFC 2544, benchmarking) that exist only on our links.
  A blackhole route covers each host-side /30 (its metric is above the link's, so it wins only
  while the link is down): the address is never routed off the machine.
- Shaping: ``tbf`` caps the rate on both ends, ``iptables -m statistic`` inside the namespace
  drops a share of packets each way. This kernel has no ``netem`` (nor fq, etf, cake), so delay
  and jitter come from :class:`Relay` on 127.0.0.1, which holds every chunk it forwards.
  A TCP relay forwards an ordered byte stream, so it cannot reorder packets: :func:`reordering`
  does, through NFQUEUE (in this kernel: ``CONFIG_NETFILTER_NETLINK_QUEUE``) and a userspace
  verdict program, ``nfqueue_reorder.py``, that lets some packets leave after the next one.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import queue
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

BENCHMARKING = ipaddress.ip_network("198.18.0.0/15")
BLACKHOLE_METRIC = "4000"
REORDER_PROGRAM = Path(__file__).with_name("nfqueue_reorder.py")
CHUNK = 16_384  # what the relay reads at once: the grain of its delays, stalls and counts
_NAMESPACE = re.compile(r"^oci-(\d+)-")
_LINK = re.compile(r"^oci(\d+)[a-z]")


class NetnsError(RuntimeError):
    """An ``ip``, ``tc`` or ``iptables`` command failed."""


class NamespacesUnavailable(NetnsError):
    """Network namespaces cannot be made here (not root, no iproute2/iptables, or refused)."""


def run(*argv: str) -> None:
    """Runs a network command, raising :class:`NetnsError` with its stderr if it fails."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: {done.stderr.strip()}")


def _quietly(*argv: str) -> None:
    subprocess.run(argv, capture_output=True, timeout=30, check=False)


def require_tools() -> None:
    """Raises :class:`NamespacesUnavailable` unless this is root with ip, tc and iptables."""
    missing = [tool for tool in ("ip", "tc", "iptables") if shutil.which(tool) is None]
    if os.geteuid() != 0 or missing:
        raise NamespacesUnavailable(f"network namespaces need root and {missing or 'ip, tc'}")


def namespace_name(role: str, pid: int | None = None) -> str:
    """The namespace this process names ``role``."""
    return f"oci-{pid or os.getpid()}-{role}"


def link_name(tag: str) -> str:
    """A link name of this process (``tag``: a few lowercase letters and digits)."""
    name = f"oci{os.getpid()}{tag}"
    assert len(name) <= 15 and tag[:1].isalpha(), name  # IFNAMSIZ
    return name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale() -> list[str]:
    """Removes the namespaces and links of processes that no longer exist; returns their names."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=30)
    stale: list[str] = []
    for line in listed.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        found = _NAMESPACE.match(name)
        if found and not _alive(int(found[1])):
            _quietly("ip", "netns", "del", name)
            shutil.rmtree(Path("/etc/netns") / name, ignore_errors=True)
            stale.append(name)
    for line in links.stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if line.count(":") >= 2 else ""
        found = _LINK.match(name)
        if found and not _alive(int(found[1])):
            _quietly("ip", "link", "del", name)
            stale.append(name)
    return stale


@contextlib.contextmanager
def namespace(role: str) -> Iterator[str]:
    """A fresh namespace of this process with its loopback up; deleted on exit."""
    name = namespace_name(role)
    run("ip", "netns", "add", name)
    try:
        run("ip", "-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        _quietly("ip", "netns", "del", name)
        shutil.rmtree(Path("/etc/netns") / name, ignore_errors=True)


def exec_prefix(name: str) -> list[str]:
    """The prefix that runs a command inside namespace ``name``."""
    return ["ip", "netns", "exec", name]


@contextlib.contextmanager
def _blackholed_subnet() -> Iterator[ipaddress.IPv4Network]:
    """A /30 of 198.18.0.0/15 no other live pair holds, blackholed until exit.

    The first choice depends on the pid; adding the route fails when another process holds
    that /30, and then the next one is tried.
    """
    slots = BENCHMARKING.num_addresses // 4
    first = (os.getpid() * 7) % slots
    for step in range(64):
        network = ipaddress.ip_network(
            f"{BENCHMARKING.network_address + 4 * ((first + step) % slots)}/30"
        )
        added = subprocess.run(
            ["ip", "route", "add", "blackhole", str(network), "metric", BLACKHOLE_METRIC],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if added.returncode == 0:
            break
        if "File exists" not in added.stderr:
            raise NamespacesUnavailable(f"cannot add a blackhole route: {added.stderr.strip()}")
    else:
        raise NamespacesUnavailable("no free /30 in 198.18.0.0/15")
    assert isinstance(network, ipaddress.IPv4Network)
    try:
        yield network
    finally:
        _quietly("ip", "route", "del", "blackhole", str(network), "metric", BLACKHOLE_METRIC)


def cap_rate(namespace: str | None, device: str, rate: str) -> None:
    """Caps what ``device`` (in ``namespace``, or the host's) sends at ``rate`` with ``tbf``."""
    where = ["-n", namespace] if namespace else []
    run("tc", *where, "qdisc", "replace", "dev", device, "root",
        "tbf", "rate", rate, "burst", "64kb", "latency", "400ms")  # fmt: skip


def drop_randomly(namespace: str, share: float) -> None:
    """Drops ``share`` (a fraction) of the packets entering and leaving ``namespace``."""
    for chain in ("INPUT", "OUTPUT"):
        run(*exec_prefix(namespace), "iptables", "-A", chain, "-m", "statistic",
            "--mode", "random", "--probability", f"{share:g}", "-j", "DROP")  # fmt: skip


@dataclass
class Reordering:
    """What the NFQUEUE program did: swapped pairs and packets seen (known on exit)."""

    reordered: int = 0
    seen: int = 0


@contextlib.contextmanager
def reordering(namespace: str, every: int, queue: int = 7) -> Iterator[Reordering]:
    """TCP packets leaving ``namespace`` pass ``nfqueue_reorder.py`` (inside it), which swaps
    every ``every``-th with the one after it; the rule and the program are removed on exit."""
    rule = ["OUTPUT", "-p", "tcp", "-j", "NFQUEUE", "--queue-num", str(queue), "--queue-bypass"]
    program = subprocess.Popen(
        [*exec_prefix(namespace), sys.executable, str(REORDER_PROGRAM), str(queue), str(every)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stats = Reordering()
    try:
        assert program.stdout is not None
        if program.stdout.readline().strip() != "ready":
            raise NetnsError(f"nfqueue_reorder did not start: {program.communicate()[1]}")
        run(*exec_prefix(namespace), "iptables", "-A", *rule)
        try:
            yield stats
        finally:
            _quietly(*exec_prefix(namespace), "iptables", "-D", *rule)
    finally:
        program.terminate()  # by the pid we started
        out, _ = program.communicate(timeout=30)
        words = out.split()
        if words[-4:-3] == ["reordered"]:
            stats.reordered, stats.seen = int(words[-3]), int(words[-1])


@dataclass(frozen=True)
class VethLink:
    """A namespace joined to the host by a veth pair: each end's device and address."""

    namespace: str
    host_device: str
    host_address: str
    inner_device: str
    inner_address: str

    def shape(self, rate: str | None = None, loss: float = 0.0) -> None:
        """Caps both directions at ``rate`` (e.g. "8mbit") and drops ``loss`` (a fraction) of
        the packets each way; replaces any earlier shape."""
        self.unshape()
        if rate:
            cap_rate(None, self.host_device, rate)
            cap_rate(self.namespace, self.inner_device, rate)
        if loss:
            drop_randomly(self.namespace, loss)

    def unshape(self) -> None:
        """Removes the qdiscs and the loss rules."""
        _quietly("tc", "qdisc", "del", "dev", self.host_device, "root")
        _quietly("tc", "-n", self.namespace, "qdisc", "del", "dev", self.inner_device, "root")
        run(*exec_prefix(self.namespace), "iptables", "-F")

    def set_up(self, up: bool) -> None:
        """Sets the host's end of the link up or down (packets then vanish: the blackhole)."""
        run("ip", "link", "set", "dev", self.host_device, "up" if up else "down")


@contextlib.contextmanager
def veth_namespace(role: str, *, offload: bool = True) -> Iterator[VethLink]:
    """A fresh namespace joined to the host by a veth pair on a private /30; all removed on exit.

    ``offload=False`` turns segmentation offload off on the pair, so shaping and loss act on
    real 1500-byte packets rather than 64 KiB segments.
    """
    require_tools()
    sweep_stale()
    host_device, inner_device = link_name(f"{role[:1]}h"), link_name(f"{role[:1]}n")
    try:
        with _blackholed_subnet() as network, namespace(role) as name:
            _, host_address, inner_address, _ = (str(a) for a in network)
            try:
                run("ip", "link", "add", host_device, "type", "veth", "peer", "name", inner_device,
                    "netns", name)  # fmt: skip
                run("ip", "addr", "add", f"{host_address}/30", "dev", host_device)
                run("ip", "-n", name, "addr", "add", f"{inner_address}/30", "dev", inner_device)
                if not offload:
                    run("ip", "link", "set", host_device, "gso_max_segs", "1")
                    run("ip", "-n", name, "link", "set", inner_device, "gso_max_segs", "1")
                run("ip", "link", "set", host_device, "up")
                run("ip", "-n", name, "link", "set", inner_device, "up")
            except NetnsError as error:
                raise NamespacesUnavailable(str(error)) from error
            try:
                yield VethLink(name, host_device, host_address, inner_device, inner_address)
            finally:
                _quietly("ip", "link", "del", host_device)
    except NetnsError as error:
        if isinstance(error, NamespacesUnavailable):
            raise
        raise NamespacesUnavailable(str(error)) from error


@dataclass
class Fleet:
    """Nodes (one namespace each) on one bridge in a switch namespace, at 198.18.0.<n>/24.

    The segment exists only inside these namespaces (the host has no link to it). ``close()``
    deletes the namespaces, which removes their links, the bridge and the qdiscs with them.
    """

    nodes: list[str]
    created: list[str] = field(default_factory=list)

    def namespace(self, node: str) -> str:
        return namespace_name(f"node-{node}")

    def address(self, node: str) -> str:
        return f"198.18.0.{self.nodes.index(node) + 1}"

    def exec(self, node: str) -> list[str]:
        return exec_prefix(self.namespace(node))

    def start(self) -> Fleet:
        require_tools()
        sweep_stale()
        switch = namespace_name("switch")
        try:
            for name in [switch, *(self.namespace(n) for n in self.nodes)]:
                run("ip", "netns", "add", name)
                self.created.append(name)
                run("ip", "-n", name, "link", "set", "lo", "up")
            run("ip", "-n", switch, "link", "add", "br0", "type", "bridge")
            run("ip", "-n", switch, "link", "set", "br0", "up")
            for number, node in enumerate(self.nodes):
                inner, outer = link_name(f"f{number}n"), link_name(f"f{number}p")
                run("ip", "link", "add", inner, "netns", self.namespace(node),
                    "type", "veth", "peer", "name", outer, "netns", switch)  # fmt: skip
                inside = ["ip", "-n", self.namespace(node)]
                run(*inside, "link", "set", inner, "name", "eth0")
                run(*inside, "addr", "add", f"{self.address(node)}/24", "dev", "eth0")
                run(*inside, "link", "set", "eth0", "up")
                run("ip", "-n", switch, "link", "set", outer, "master", "br0")
                run("ip", "-n", switch, "link", "set", outer, "up")
            return self
        except NetnsError as error:
            self.close()
            raise NamespacesUnavailable(str(error)) from error
        except BaseException:
            self.close()
            raise

    def cap_rate(self, node: str, rate: str) -> None:
        """Caps what ``node`` sends at ``rate``."""
        cap_rate(self.namespace(node), "eth0", rate)

    def set_hosts(self, node: str, names: dict[str, list[str]]) -> None:
        """The node's /etc/hosts (``ip netns exec`` mounts /etc/netns/<ns>/hosts over it)."""
        directory = Path("/etc/netns") / self.namespace(node)
        directory.mkdir(parents=True, exist_ok=True)
        lines = [f"{address} {name}" for name, addresses in names.items() for address in addresses]
        (directory / "hosts").write_text("127.0.0.1 localhost\n" + "\n".join(lines) + "\n")

    def close(self) -> None:
        for name in reversed(self.created):
            shutil.rmtree(Path("/etc/netns") / name, ignore_errors=True)
            _quietly("ip", "netns", "del", name)
        self.created.clear()


class Relay:
    """A TCP relay on 127.0.0.1 to ``target`` that holds every chunk for ``one_way`` seconds
    (plus or minus up to ``jitter``) in each direction, can stall the whole link once, and
    counts what the target sends (``on_bytes`` sees the running total before those bytes go
    on to the client).

    Chunks leave in the order they came (TCP is a byte stream): jitter varies the gaps
    between them, it cannot reorder them (:func:`reordering` does, with real packets).
    """

    def __init__(
        self,
        target: tuple[str, int],
        one_way: float = 0.0,
        jitter: float = 0.0,
        seed: int = 0,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        self.target = target
        self.one_way = one_way
        self.jitter = jitter
        self.stalls = 0  # how many armed stalls have happened
        self.forwarded_down = 0  # bytes sent from the target to clients
        self._on_bytes = on_bytes
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._stall: tuple[int, float] | None = None
        self._stalled_until = 0.0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``, the address clients use."""
        return f"127.0.0.1:{self.port}"

    def stall_after(self, downstream_bytes: int, seconds: float) -> None:
        """Once ``downstream_bytes`` more have reached the clients, nothing moves either way
        on any connection for ``seconds`` (once)."""
        with self._lock:
            self._stall = (self.forwarded_down + downstream_bytes, seconds)

    def close(self) -> None:
        """Stops accepting and closes every relayed connection."""
        with self._lock:
            self._closed = True
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=30)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._closed:  # accepted from the backlog while close() ran
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            for source, sink, down in ((client, upstream, False), (upstream, client, True)):
                chunks: queue.Queue[tuple[float, bytes]] = queue.Queue()
                threading.Thread(target=self._read, args=(source, chunks), daemon=True).start()
                threading.Thread(target=self._write, args=(sink, chunks, down), daemon=True).start()

    def _delay(self) -> float:
        with self._lock:
            spread = self._random.uniform(-self.jitter, self.jitter) if self.jitter else 0.0
        return max(0.0, self.one_way + spread)

    def _read(self, source: socket.socket, chunks: queue.Queue[tuple[float, bytes]]) -> None:
        while True:
            try:
                data = source.recv(CHUNK)
            except OSError:
                data = b""
            chunks.put((time.monotonic() + self._delay(), data))
            if not data:
                return

    def _count_down(self, size: int) -> None:
        with self._lock:
            self.forwarded_down += size
            total = self.forwarded_down
            if self._stall is not None and total >= self._stall[0]:
                self._stalled_until = time.monotonic() + self._stall[1]
                self._stall = None
                self.stalls += 1
        if self._on_bytes is not None:
            self._on_bytes(total)

    def _write(
        self, sink: socket.socket, chunks: queue.Queue[tuple[float, bytes]], down: bool
    ) -> None:
        while True:
            due, data = chunks.get()
            while (wait := max(due, self._stalled_until) - time.monotonic()) > 0:
                time.sleep(wait)
            if down:  # counted (and a stall armed) before the client can see the bytes
                self._count_down(len(data))
            try:
                if not data:
                    sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(data)
            except OSError:
                return


@contextlib.contextmanager
def delayed(
    target: tuple[str, int], rtt_ms: float, jitter_ms: float = 0.0, seed: int = 0
) -> Iterator[Relay]:
    """A :class:`Relay` adding ``rtt_ms`` (each way ± ``jitter_ms``/2) to every round trip."""
    relay = Relay(target, rtt_ms / 2000, jitter_ms / 2000, seed)
    try:
        yield relay
    finally:
        relay.close()
