"""The node's own runtimes as peers: a private containerd 1.6 (``ctr``) and podman 4.3.

Both pull and unpack into their overlay snapshotter / storage driver, as on a node. containerd
is the tests' private instance (own config, root, state and socket on the measured
filesystem, CRI disabled, stopped by its pid); podman runs with its own
``--root``/``--runroot`` there. Between cold runs each is emptied with its own commands
(image removal plus garbage collection), so the next pull finds no content and no snapshots.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from peerbench.measure import process_cpu_seconds
from peerbench.nodefs import unmount_under

TESTS = Path(__file__).resolve().parents[2] / "tests"
NAMESPACE = "bench"


@dataclass(frozen=True)
class Runtimes:
    """How to reach the runtimes: containerd's socket (None: not running) and podman's dirs."""

    containerd_socket: Path | None
    containerd_snapshotter: str
    podman_root: Path
    podman_runroot: Path
    containerd_pid: int | None = None

    @property
    def containerd_cpu(self) -> Callable[[], float] | None:
        """Reads the containerd daemon's CPU seconds so far (it does ``ctr pull``'s work);
        None when it is not running."""
        pid = self.containerd_pid
        return None if pid is None else functools.partial(process_cpu_seconds, pid)

    def ctr(self, *args: str) -> list[str]:
        """``ctr`` argv against the private containerd, in the benchmark's namespace."""
        return ["ctr", "-a", str(self.containerd_socket), "-n", NAMESPACE, *args]

    def ctr_pull(self, ref: str) -> list[str]:
        """containerd's pull + unpack into its snapshotter, as kubelet's CRI pull does."""
        return self.ctr(
            "images", "pull", "--plain-http", "--snapshotter", self.containerd_snapshotter, ref
        )

    def ctr_empty(self) -> None:
        """Removes every image, then lets containerd's GC drop their content and snapshots."""
        if self.containerd_socket is None:
            return
        listed = subprocess.run(self.ctr("images", "ls", "-q"), capture_output=True, text=True)
        for name in listed.stdout.split():
            subprocess.run(self.ctr("images", "rm", "--sync", name), capture_output=True)
        subprocess.run(self.ctr("content", "prune", "references"), capture_output=True)

    def podman(self, *args: str) -> list[str]:
        """``podman`` argv with the benchmark's own storage (overlay driver)."""
        return [
            "podman",
            "--root",
            str(self.podman_root),
            "--runroot",
            str(self.podman_runroot),
            "--storage-driver",
            "overlay",
            *args,
        ]

    def podman_pull(self, ref: str) -> list[str]:
        """podman's pull into its overlay storage (layers applied as they arrive)."""
        return self.podman("pull", "-q", "--tls-verify=false", ref)

    def podman_empty(self) -> None:
        """Removes every image and layer from the benchmark's podman storage."""
        if shutil.which("podman") is None:
            return
        subprocess.run(self.podman("rmi", "-a", "-f"), capture_output=True)


@contextlib.contextmanager
def started(root: Path) -> Iterator[Runtimes]:
    """A private containerd (when it can run here) and podman storage, both under ``root``
    (the filesystem measured on), removed afterwards."""
    sys.path.insert(0, str(TESTS))
    from containerd_daemon import Containerd, ContainerdUnavailable

    base = root / "containerd"
    shutil.rmtree(base, ignore_errors=True)
    daemon = Containerd(base, namespace=NAMESPACE)
    socket: Path | None = None
    pid: int | None = None
    try:
        daemon.start()
        socket = daemon.socket
        pid = daemon.process.pid if daemon.process is not None else None
    except ContainerdUnavailable as error:
        print(f"containerd peer n/a: {error}", file=sys.stderr)
    # podman refuses a runroot path longer than 50 characters: it gets a short link to it.
    runroot = root / "podman-runroot"
    runroot.mkdir(parents=True, exist_ok=True)
    runroot_link = Path(tempfile.gettempdir()) / f"ocistore-bench-runroot-{os.getpid()}"
    runroot_link.unlink(missing_ok=True)
    runroot_link.symlink_to(runroot)
    runtimes = Runtimes(socket, daemon.snapshotter, root / "podman-root", runroot_link, pid)
    try:
        yield runtimes
    finally:
        runtimes.podman_empty()
        if shutil.which("podman"):
            subprocess.run(runtimes.podman("system", "reset", "-f"), capture_output=True)
        unmount_under(runtimes.podman_root)
        shutil.rmtree(runtimes.podman_root, ignore_errors=True)
        runroot_link.unlink(missing_ok=True)
        shutil.rmtree(runroot, ignore_errors=True)
        daemon.stop()
        shutil.rmtree(base, ignore_errors=True)
