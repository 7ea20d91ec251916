"""Where a store keeps unpacked trees, and how they are named, locked and removed.

GC, fsck and unpacking all use these names: a tree is ``unpacked/sha256-<hex>`` (its chain
ID), built aside in ``unpacked/.tmp-*`` and renamed into place, under a lock per tree.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ocistore.store.store import Store

__all__ = ["TMP_PREFIX", "remove_tree", "unpack_dir_name", "unpack_lock_path"]

# Unpacked trees being built live in ".tmp-*" directories next to the finished ones.
TMP_PREFIX = ".tmp-"


def unpack_dir_name(chain_id: str) -> str:
    """The directory name of an unpacked tree (``sha256-<hex>``)."""
    return chain_id.replace(":", "-", 1)


def unpack_lock_path(store: Store, name: str) -> Path:
    """The lock taken while an unpacked tree is built or deleted."""
    return store.blobs.locks_dir / f"unpack-{name}.lock"


def remove_tree(path: Path) -> None:
    """Deletes a directory tree, even one containing read-only directories."""
    import shutil  # here, not at import: shutil loads bz2, lzma and fnmatch

    if path.is_symlink() or not path.is_dir():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    # Make every real directory writable first (never through a symlink: that could chmod
    # something outside the tree), then delete.
    with contextlib.suppress(OSError):
        os.chmod(path, stat.S_IRWXU)
    for dirpath, dirnames, _ in os.walk(path):
        for name in dirnames:
            child = os.path.join(dirpath, name)
            with contextlib.suppress(OSError):
                if stat.S_ISDIR(os.lstat(child).st_mode):
                    os.chmod(child, stat.S_IRWXU)
    shutil.rmtree(path)
