"""A node-like filesystem for the benchmark: a journaled ext4 on a loop device.

A node keeps its image store (``/var/lib/containerd``, ``/var/lib/containers``) on a journaled
ext4 or xfs. The root filesystem of the VMs this runs on may be an ext4 without a journal,
where the inode allocator skips every inode deleted in the last minute (``recently_deleted()``
in fs/ext4/ialloc.c, one buffer-cache lookup per skipped inode): a tree created right after
one was deleted - what every timed pull+unpack does - costs time quadratic in its files, by an
amount that depends on timing. So, as root, the benchmark makes its own: a sparse image file,
``mkfs.ext4`` with its default features (journal on) and every inode table and the journal
written at once (no ``ext4lazyinit`` thread writing during the timings), mounted with
``mount -o loop``. Where that cannot be done it measures in the work directory as is, and says
what that directory is.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

NODE_DESCRIPTION = "ext4 with a journal on a loop device (like a node's /var/lib)"
MIB = 1 << 20


@dataclass(frozen=True)
class BenchFs:
    """Where the benchmark's tools write, and how the report describes it."""

    root: Path
    description: str
    mounted: bool  # True: our own loop-mounted ext4; False: the work directory as is


def image_bytes(size_mb: int) -> int:
    """Room for a run on an image of ``size_mb`` MB: every tool's stores, trees and warm
    copies, containerd's content and snapshots, podman's layers (~40x; the file is sparse)."""
    return max(2048, 40 * size_mb) * MIB


@contextlib.contextmanager
def bench_fs(workdir: Path, size_bytes: int, *, node: bool = True) -> Iterator[BenchFs]:
    """A journaled ext4 of ``size_bytes`` mounted under ``workdir`` (``node`` and root, with
    ``mkfs.ext4`` and a loop device), removed on exit whatever happens; else ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    workdir = workdir.resolve()
    if node:
        reason = _why_not_mountable()
        if reason is None:
            _remove_stale(workdir)
            image = workdir / f"nodefs-{os.getpid()}.img"
            mount_point = workdir / f"nodefs-{os.getpid()}"
            try:
                with _terminate_as_exit(), _loop_mounted(image, mount_point, size_bytes):
                    yield BenchFs(mount_point, NODE_DESCRIPTION, mounted=True)
                return
            except _MountFailed as error:
                reason = str(error)
        print(f"node-like filesystem n/a ({reason}): measuring in {workdir}", file=sys.stderr)
    description = describe(workdir)
    if "ext4 without a journal" in description:
        print(
            f"WARNING: {workdir} is an ext4 without a journal. There ext4 skips every inode "
            "deleted in the last 60 s when it allocates one (recently_deleted()), so creating "
            "a tree right after deleting one is quadratic: every pull+unpack time (ocistore's "
            "and the peers') is inflated, by an amount that swings with timing. A node's image "
            "store is a journaled ext4 or xfs: run as root (--fs node), or on such a filesystem.",
            file=sys.stderr,
        )
    yield BenchFs(workdir, description, mounted=False)


def add_fs_argument(parser: argparse.ArgumentParser) -> None:
    """``--fs node|workdir``: where a benchmark's tools write (see :func:`bench_fs`)."""
    parser.add_argument(
        "--fs",
        choices=["node", "workdir"],
        default="node",
        help="where the tools write: node = a journaled ext4 on a loop device made for the run "
        "(root; else falls back to workdir), workdir = the work directory's own filesystem",
    )


def describe(path: Path) -> str:
    """``path``'s filesystem type, device and, for ext4, whether it has a journal."""
    device = os.stat(path).st_dev
    major, minor = os.major(device), os.minor(device)
    fstype = _fstype(major, minor)
    name = _block_device_name(major, minor)
    where = f" on /dev/{name}" if name else ""
    if fstype == "ext4" and name:
        journal = "with a journal" if has_journal(name) else "without a journal"
        return f"ext4 {journal}{where} ({path})"
    return f"{fstype}{where} ({path})"


def has_journal(device_name: str) -> bool:
    """Whether the mounted ext4 on ``device_name`` (``vda``, ``loop3``) runs a journal."""
    if any(Path("/proc/fs/jbd2").glob(f"{device_name}-*")):
        return True
    try:
        task = Path(f"/sys/fs/ext4/{device_name}/journal_task").read_text().strip()
    except OSError:
        return False
    return task not in ("", "<none>")


def unmount_under(directory: Path) -> None:
    """Lazily unmounts every mount below ``directory`` (deepest first), not ``directory``."""
    for target in reversed(_mount_points()):
        if Path(target).is_relative_to(directory) and Path(target) != directory:
            subprocess.run(["umount", "-l", target], check=False, capture_output=True)


class _MountFailed(Exception):
    """The image could not be made or mounted (nothing of it is left behind)."""


def _why_not_mountable() -> str | None:
    if os.geteuid() != 0:
        return "not root"
    for tool in ("mkfs.ext4", "mount", "umount", "losetup"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    probe = subprocess.run(["losetup", "-f"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"no free loop device: {probe.stderr.strip()}"
    return None


@contextlib.contextmanager
def _loop_mounted(image: Path, mount_point: Path, size_bytes: int) -> Iterator[None]:
    try:
        with image.open("wb") as f:
            f.truncate(size_bytes)  # sparse
        mount_point.mkdir(exist_ok=True)
        steps: list[list[str | Path]] = [
            ["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", image],
            ["mount", "-o", "loop", image, mount_point],
        ]
        for argv in steps:
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise _MountFailed(f"{argv[0]!s} failed: {done.stderr.strip()}")
        _direct_io(image)
    except BaseException:
        _remove(image, mount_point)
        raise
    try:
        yield
    finally:
        _remove(image, mount_point)


def _direct_io(image: Path) -> None:
    """Switches the loop device under ``image`` to direct I/O: without it every byte written is
    cached twice (the filesystem's pages and the image file's, 1 GB of page cache for 500 MB),
    so a long run would fill memory twice as fast as a node's disk does."""
    loops = _loop_devices(image)
    if not loops:
        print(f"no loop device found for {image}: without direct I/O", file=sys.stderr)
    for loop in loops:
        done = subprocess.run(
            ["losetup", "--direct-io=on", loop], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            print(f"{loop} without direct I/O: {done.stderr.strip()}", file=sys.stderr)


def _loop_devices(image: Path) -> list[str]:
    """The loop devices ``image`` is attached to."""
    attached = subprocess.run(
        ["losetup", "-n", "-O", "NAME", "-j", image], capture_output=True, text=True, check=False
    )
    return attached.stdout.split()


def _remove(image: Path, mount_point: Path) -> None:
    """Unmounts (below first; lazily if busy), detaches the loop device, deletes the image."""
    unmount_under(mount_point)
    if str(mount_point) in _mount_points():
        done = subprocess.run(["umount", mount_point], capture_output=True, check=False)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", mount_point], capture_output=True, check=False)
    if image.exists():
        # mount -o loop detaches on unmount (autoclear); a lazily unmounted one stays attached
        # while busy, and -d then marks it to detach when it is let go.
        for loop in _loop_devices(image):
            subprocess.run(["losetup", "-d", loop], capture_output=True, check=False)
    image.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        mount_point.rmdir()


def _remove_stale(workdir: Path) -> None:
    """Removes the images (and their mounts) of earlier runs that were killed outright."""
    for image in workdir.glob("nodefs-*.img"):
        pid = image.stem.removeprefix("nodefs-")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _remove(image, image.with_suffix(""))


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """SIGTERM raises SystemExit meanwhile (as Ctrl-C raises KeyboardInterrupt), so the image
    is removed when the run is stopped too."""

    def leave(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, leave)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _mount_points() -> list[str]:
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    # Octal escapes: a space is \040 in /proc/self/mounts.
    unescape = functools.partial(re.sub, r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)))
    return [unescape(line.split()[1]) for line in lines if len(line.split()) > 1]


def _fstype(major: int, minor: int) -> str:
    """The type of the filesystem on device ``major:minor``, from /proc/self/mountinfo."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            if fields[2] == f"{major}:{minor}" and "-" in fields:
                return fields[fields.index("-") + 1]
    return "unknown filesystem"


def _block_device_name(major: int, minor: int) -> str | None:
    """The kernel's name of block device ``major:minor`` (``vda``, ``dm-0``), if it is one."""
    try:
        return Path(os.readlink(f"/sys/dev/block/{major}:{minor}")).name
    except OSError:
        return None
