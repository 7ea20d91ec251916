"""A private containerd for tests and benchmarks: the oracle for pulls and unpacked trees.

Debian's ``containerd`` runs with its own config, root, state and socket in a temporary
directory, the CRI plugin disabled, and is stopped by its pid. ``ctr`` talks to it through
``Containerd.ctr``. The ``overlayfs`` snapshotter is used where the kernel mounts overlays,
``native`` elsewhere.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CONFIG = """\
version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{socket}"

[debug]
  address = "{debug_socket}"
"""


class ContainerdUnavailable(RuntimeError):
    """containerd cannot run here (not installed, or not root)."""


def overlay_supported(scratch: Path) -> bool:
    """True when an overlay mount works on ``scratch`` (as containerd's snapshotter needs)."""
    work = Path(tempfile.mkdtemp(prefix="ovl-", dir=scratch))
    try:
        for name in ("lower", "upper", "work", "merged"):
            (work / name).mkdir()
        opts = f"lowerdir={work}/lower,upperdir={work}/upper,workdir={work}/work"
        done = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", opts, str(work / "merged")],
            capture_output=True,
        )
        if done.returncode != 0:
            return False
        subprocess.run(["umount", str(work / "merged")], check=False)
        return True
    finally:
        shutil.rmtree(work, ignore_errors=True)


class Containerd:
    """One private containerd process; use ``start()``/``stop()`` or ``running()``."""

    def __init__(self, base: Path, namespace: str = "ocistore-test") -> None:
        self.base = base
        self.root = base / "root"
        self.state = base / "state"
        self.socket = base / "containerd.sock"
        self.namespace = namespace
        self.log_path = base / "containerd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.snapshotter = "native"

    def start(self, timeout: float = 30.0) -> None:
        if shutil.which("containerd") is None or shutil.which("ctr") is None:
            raise ContainerdUnavailable("containerd/ctr not installed (scripts/setup installs it)")
        if os.geteuid() != 0:
            raise ContainerdUnavailable("containerd needs root")
        self.base.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(exist_ok=True)
        self.state.mkdir(exist_ok=True)
        config = self.base / "config.toml"
        config.write_text(
            CONFIG.format(
                root=self.root,
                state=self.state,
                socket=self.socket,
                debug_socket=self.base / "debug.sock",
            )
        )
        self.snapshotter = "overlayfs" if overlay_supported(self.base) else "native"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            ["containerd", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ContainerdUnavailable(
                    f"containerd exited {self.process.returncode}: {self.log_tail()}"
                )
            if self.socket.exists():
                probe = subprocess.run(
                    ["ctr", "-a", str(self.socket), "version"], capture_output=True
                )
                if probe.returncode == 0:
                    return
            time.sleep(0.1)
        self.stop()
        raise ContainerdUnavailable(f"containerd did not answer in {timeout} s: {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the daemon by its pid and unmount what its snapshotter left mounted."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None
        # Any mount still under our root (a test's read-only view) is ours to remove.
        try:
            mounts = Path("/proc/self/mounts").read_text().splitlines()
        except OSError:
            mounts = []
        for line in reversed(mounts):
            target = line.split()[1]
            if target.startswith(str(self.base)):
                subprocess.run(["umount", "-l", target], check=False)

    def ctr(
        self,
        *args: str,
        check: bool = True,
        input: bytes | None = None,
        timeout: float = 300,
        namespace: str | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``ctr -a SOCKET -n NAMESPACE ARGS``; raise with its stderr when it fails."""
        argv = ["ctr", "-a", str(self.socket), "-n", namespace or self.namespace, *args]
        done = subprocess.run(argv, capture_output=True, input=input, timeout=timeout)
        if check and done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)} failed ({done.returncode}): "
                f"{done.stderr.decode(errors='replace').strip()}"
            )
        return done

    def pull(self, ref: str, *extra: str) -> None:
        """``ctr images pull`` with this instance's snapshotter, unpacked."""
        self.ctr("images", "pull", "--snapshotter", self.snapshotter, *extra, ref)

    def image_digest(self, ref: str, namespace: str | None = None) -> str:
        """The digest containerd records for ``ref`` (the registry's, index or manifest)."""
        out = self.ctr("images", "ls", namespace=namespace).stdout.decode()
        for line in out.splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == ref:
                return next(f for f in fields if f.startswith("sha256:"))
        raise KeyError(ref)

    @contextmanager
    def mounted(
        self, ref: str, platform: str | None = None, namespace: str | None = None
    ) -> Iterator[Path]:
        """containerd's unpacked view of ``ref``, mounted read-only, for comparison."""
        target = Path(tempfile.mkdtemp(prefix="view-", dir=self.base))
        extra = ["--platform", platform] if platform else []
        self.ctr(
            "images", "mount", "--snapshotter", self.snapshotter, *extra, ref, str(target),
            namespace=namespace,
        )  # fmt: skip
        try:
            yield target
        finally:
            self.ctr("images", "unmount", "--rm", str(target), check=False, namespace=namespace)
            subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)
            shutil.rmtree(target, ignore_errors=True)

    def reset(self) -> None:
        """Remove every image, content blob and snapshot of the namespace."""
        for line in self.ctr("images", "ls", "-q").stdout.decode().split():
            self.ctr("images", "rm", "--sync", line, check=False)
        self.ctr("content", "prune", "references", check=False)
