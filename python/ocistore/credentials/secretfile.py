"""Writing files that hold credentials: created 0600 from the start, replaced atomically."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

SECRET_FILE_MODE = 0o600


def write_secret_file(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Writes ``data`` to ``path`` with mode 0600, atomically (never readable by others)."""
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    # O_EXCL + 0600 at creation: the bytes are never in a file with looser permissions, and a
    # symlink planted at the temporary name is refused rather than followed.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, flags, SECRET_FILE_MODE)
    try:
        os.fchmod(fd, SECRET_FILE_MODE)  # the umask may have removed bits, never added any
        view = memoryview(payload)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    os.close(fd)
    os.replace(temporary, target)
    return target
