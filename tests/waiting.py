"""Waits with a deadline: a test that waits for a thread or a FIFO reader fails instead of
hanging the suite (pytest-timeout is only the backstop)."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

DEADLINE = 60.0


def join_all(threads: list[threading.Thread], timeout: float = DEADLINE) -> None:
    """Joins every thread, failing the test if one is still running after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    alive = [thread.name for thread in threads if thread.is_alive()]
    assert not alive, f"threads still running after {timeout} s: {alive}"


def write_fifo(fifo: Path, data: bytes, timeout: float = DEADLINE) -> None:
    """Writes ``data`` into a FIFO once a reader has opened it, failing after ``timeout`` s.

    A plain blocking ``open`` would wait forever if the reader never comes.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            assert time.monotonic() < deadline, f"no reader opened {fifo} within {timeout} s"
            time.sleep(0.01)
    try:
        os.set_blocking(fd, True)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
