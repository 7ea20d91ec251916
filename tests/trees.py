"""Root filesystems compared entry by entry: what ocistore unpacked against containerd's view.

A tree is read with ``os.lstat`` and ``os.listxattr`` (never following a link) into one record
per path: type, mode (with setuid/setgid/sticky), owner, size, content hash or link target,
device number, mtime in nanoseconds and the xattrs. Hardlink groups are compared as sets of
paths that share an inode. One rule is named where the trees differ on purpose:

* ``ROOT_MTIME``: the root directory's own mtime is the time its snapshot (or ocistore's
  directory) was made, not the image's, so it is not compared.

Every xattr is compared: overlayfs hides its own ``trusted.overlay.*`` bookkeeping (opaque
directories) in the merged view, so containerd's view shows only the image's xattrs.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ocistore.digest import digest_file

ROOT_MTIME = "the root directory's own mtime is not compared (a snapshot's, not the image's)"


@dataclass(frozen=True)
class Entry:
    """One path of a tree as the kernel reports it."""

    kind: str
    mode: int
    uid: int
    gid: int
    size: int | None
    content: str | None
    rdev: tuple[int, int] | None
    mtime_ns: int | None
    xattrs: tuple[tuple[str, bytes], ...]


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "dir"),
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISCHR, "char"),
        (stat.S_ISBLK, "block"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "unknown"


def xattrs(path: str | bytes) -> tuple[tuple[str, bytes], ...]:
    """Every extended attribute of ``path`` itself (links not followed), sorted by name."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return ()
    values = []
    for name in sorted(names):
        try:
            values.append((name, os.getxattr(path, name, follow_symlinks=False)))
        except OSError:
            continue
    return tuple(values)


@dataclass(frozen=True)
class Tree:
    """Every entry of a root filesystem, keyed by its path relative to the root."""

    entries: dict[str, Entry]
    hardlinks: frozenset[frozenset[str]]

    def differences(self, other: Tree) -> list[str]:
        """Human-readable differences (empty when the trees are equal)."""
        problems = []
        for path in sorted(self.entries.keys() | other.entries.keys()):
            mine, theirs = self.entries.get(path), other.entries.get(path)
            if mine is None:
                problems.append(f"{path}: only in the other tree ({theirs})")
            elif theirs is None:
                problems.append(f"{path}: only in this tree ({mine})")
            elif mine != theirs:
                fields = [
                    f"{name}: {getattr(mine, name)!r} != {getattr(theirs, name)!r}"
                    for name in Entry.__dataclass_fields__
                    if getattr(mine, name) != getattr(theirs, name)
                ]
                problems.append(f"{path}: " + "; ".join(fields))
        if self.hardlinks != other.hardlinks:
            problems.append(
                f"hardlink groups differ: {sorted(map(sorted, self.hardlinks))} != "
                f"{sorted(map(sorted, other.hardlinks))}"
            )
        return problems


def read_tree(root: Path) -> Tree:
    """Reads a tree under ``root`` without following symlinks."""
    entries: dict[str, Entry] = {}
    inodes: dict[tuple[int, int], set[str]] = {}
    for directory, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in [*dirnames, *filenames, *([] if directory != str(root) else ["."])]:
            full = os.path.normpath(os.path.join(directory, name))
            relative = os.path.relpath(full, root)
            info = os.lstat(full)
            kind = _kind(info.st_mode)
            content = None
            if kind == "file":
                content = digest_file(full)
                if info.st_nlink > 1:
                    inodes.setdefault((info.st_dev, info.st_ino), set()).add(relative)
            elif kind == "symlink":
                content = os.readlink(full)
            device = (
                (os.major(info.st_rdev), os.minor(info.st_rdev))
                if kind in ("char", "block")
                else None
            )
            entries[relative] = Entry(
                kind=kind,
                mode=stat.S_IMODE(info.st_mode),
                uid=info.st_uid,
                gid=info.st_gid,
                size=info.st_size if kind in ("file", "symlink") else None,
                content=content,
                rdev=device,
                mtime_ns=None if relative == "." else info.st_mtime_ns,  # ROOT_MTIME
                xattrs=xattrs(full),
            )
    groups = frozenset(frozenset(paths) for paths in inodes.values() if len(paths) > 1)
    return Tree(entries, groups)
