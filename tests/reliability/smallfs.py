"""A small real filesystem for disk-full tests: a ``tmpfs`` with ``size=`` and ``nr_inodes=``,
mounted by the test (root) and unmounted by it, whatever happens."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ci import cannot_run


def _mount(options: str, target: Path, remount: bool = False) -> None:
    flags = ["-o", f"remount,{options}" if remount else options]
    subprocess.run(
        ["mount", "-t", "tmpfs", *flags, "ocistore-test", str(target)],
        check=True,
        capture_output=True,
        timeout=30,
    )


class SmallFs:
    """A mounted tmpfs whose limits can be raised in place (``remount``), as freeing space."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def resize(self, size: str, nr_inodes: int | None = None) -> None:
        """Changes the limits; the content stays."""
        options = f"size={size}" + (f",nr_inodes={nr_inodes}" if nr_inodes else "")
        _mount(options, self.path, remount=True)


@contextlib.contextmanager
def small_fs(size: str, nr_inodes: int | None = None) -> Iterator[SmallFs]:
    """Mounts a tmpfs limited to ``size`` bytes (and ``nr_inodes`` inodes), then unmounts it."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        cannot_run("mounting a small tmpfs needs root")
    top = Path(tempfile.mkdtemp(prefix=f"ocistore-smallfs-{os.getpid()}-"))
    options = f"size={size}" + (f",nr_inodes={nr_inodes}" if nr_inodes else "")
    try:
        _mount(options, top)
    except subprocess.CalledProcessError as exc:
        top.rmdir()
        cannot_run(f"cannot mount a tmpfs: {exc.stderr!r}")
    try:
        yield SmallFs(top)
    finally:
        subprocess.run(["umount", "-l", str(top)], check=False, timeout=30)
        shutil.rmtree(top, ignore_errors=True)
