"""Trees described entry by entry, for every comparison of unpacked files in the tests.

One walker (:func:`walk`) and one description of an entry (:class:`Entry`) serve the corpus
comparison (ocistore's root filesystem against containerd's view) and the tar oracles (against
GNU tar's and bsdtar's extraction and Go's archive/tar reading). A tree is read with
``os.lstat`` and ``os.listxattr`` (never following a link) into one record per path, keyed by
the raw path bytes: type, mode (with setuid/setgid/sticky), owner, size, content hash or link
target, device number, mtime in nanoseconds, every xattr, the hardlink group (the paths that
share the inode) and, when asked, whether the file has holes. One rule is named where trees
differ on purpose:

* ``ROOT_MTIME``: the root directory's own mtime is the time its snapshot (or ocistore's
  directory) was made, not the image's, so it is not compared.

Every xattr is compared: overlayfs hides its own ``trusted.overlay.*`` bookkeeping (opaque
directories) in the merged view, so containerd's view shows only the image's xattrs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

ROOT_MTIME = "the root directory's own mtime is not compared (a snapshot's, not the image's)"
ROOT = b"."


@dataclass(frozen=True)
class Entry:
    """One path of a tree as the kernel reports it."""

    kind: str
    mode: int
    uid: int
    gid: int
    size: int | None  # None for a directory (its size is the filesystem's business)
    content: str | None  # a file's SHA-256, hex
    link: bytes | None  # a symlink's target
    rdev: tuple[int, int] | None
    mtime_ns: int | None
    xattrs: tuple[tuple[bytes, bytes], ...]
    hardlinks: tuple[bytes, ...]  # the paths sharing this file's inode, itself included
    has_holes: bool = False

    def differs_from(self, other: Entry) -> str:
        """The fields that differ, readably."""
        return "; ".join(
            f"{field.name}: {getattr(self, field.name)!r} != {getattr(other, field.name)!r}"
            for field in dataclasses.fields(self)
            if getattr(self, field.name) != getattr(other, field.name)
        )


KINDS = (
    (stat.S_ISREG, "file"),
    (stat.S_ISDIR, "dir"),
    (stat.S_ISLNK, "symlink"),
    (stat.S_ISFIFO, "fifo"),
    (stat.S_ISCHR, "char"),
    (stat.S_ISBLK, "block"),
    (stat.S_ISSOCK, "socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in KINDS if test(mode)), "unknown")


def xattrs(path: str | bytes) -> tuple[tuple[bytes, bytes], ...]:
    """Every extended attribute of ``path`` itself (links not followed), sorted by name."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return ()
    values = []
    for name in sorted(names):
        try:
            values.append((os.fsencode(name), os.getxattr(path, name, follow_symlinks=False)))
        except OSError:
            continue
    return tuple(values)


def walk(root: Path, *, with_root: bool = False, holes: bool = False) -> dict[bytes, Entry]:
    """Every entry below ``root`` (and ``root`` itself as ``b"."`` with ``with_root``; its
    mtime is not read: ``ROOT_MTIME``), keyed by the relative path's bytes. ``holes`` records
    whether each file is sparse on disk."""
    top = os.fsencode(root)
    found: dict[bytes, os.stat_result] = {ROOT: os.lstat(top)} if with_root else {}
    for directory, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(directory, name)
            found[os.path.relpath(path, top)] = os.lstat(path)
    inodes: dict[tuple[int, int], list[bytes]] = {}
    for relative, info in found.items():
        if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
            inodes.setdefault((info.st_dev, info.st_ino), []).append(relative)
    # A group is two paths or more: a link count that counts paths outside the tree (a lower
    # layer's link whited out above, in an overlay view) is not a difference of the tree.
    groups = {inode: tuple(sorted(paths)) for inode, paths in inodes.items() if len(paths) > 1}
    entries: dict[bytes, Entry] = {}
    for relative, info in sorted(found.items()):
        path = os.path.join(top, relative)
        kind = _kind(info.st_mode)
        content = None
        if kind == "file":
            with open(path, "rb") as file:
                content = hashlib.file_digest(file, "sha256").hexdigest()
        entries[relative] = Entry(
            kind=kind,
            mode=stat.S_IMODE(info.st_mode),
            uid=info.st_uid,
            gid=info.st_gid,
            size=None if kind == "dir" else info.st_size,
            content=content,
            link=os.readlink(path) if kind == "symlink" else None,
            rdev=(
                (os.major(info.st_rdev), os.minor(info.st_rdev))
                if kind in ("char", "block")
                else None
            ),
            mtime_ns=None if relative == ROOT else info.st_mtime_ns,  # ROOT_MTIME
            xattrs=xattrs(path),
            hardlinks=groups.get((info.st_dev, info.st_ino), ()) if kind == "file" else (),
            has_holes=holes and kind == "file" and info.st_blocks * 512 < info.st_size,
        )
    return entries


def hardlink_groups(entries: dict[bytes, Entry]) -> set[tuple[bytes, ...]]:
    """The groups of paths that share an inode."""
    return {entry.hardlinks for entry in entries.values() if entry.hardlinks}


def differences(expected: dict[bytes, Entry], actual: dict[bytes, Entry]) -> list[str]:
    """Readable differences between two trees (empty when they agree)."""
    problems = []
    for path in sorted(expected.keys() | actual.keys()):
        want, got = expected.get(path), actual.get(path)
        if want is None:
            problems.append(f"{path!r}: not expected ({got})")
        elif got is None:
            problems.append(f"{path!r}: missing ({want})")
        elif want != got:
            problems.append(f"{path!r}: {want.differs_from(got)} (expected != actual)")
    return problems
