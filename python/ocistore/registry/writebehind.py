"""Write-behind for one blob body: the next piece is received while the last one is written.

Received, then hashed and written, then the next piece received: one stream used to keep about
one core busy, so a single large layer (or the last layer of a pull) left the other idle.
:class:`WriteBehind` hands each received piece to one worker thread that writes the pieces to
the sink in order, while the caller receives the next piece into another of its ``depth``
buffers. Memory stays bounded: the receiver waits while every buffer is in use.

The sink's offset counts only written bytes, and leaving the context waits for every piece
handed on, so a resume after a cut starts from exactly what is on disk. A write that fails
stops the worker, shuts the socket the body comes from down (so a receive waiting on a stalled
link returns at once) and is raised, the same exception, from the next hand-off or from leaving
the context, in place of whatever the receive raised meanwhile. The shutdown goes through a
duplicate of the descriptor, so it can never reach another connection that reused the number;
it is only for a connection that does not go back to the pool (a body
:func:`~ocistore.registry.bodies.read_body` receives from the socket directly, or a light one).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import deque
from types import TracebackType
from typing import TYPE_CHECKING

from ocistore.registry.bodies import BUFFER_SIZE, Response, body_socket

if TYPE_CHECKING:
    from ocistore.registry.client import BlobSink

__all__ = ["DEPTH", "WRITE_BEHIND_MIN", "InlineWrites", "WriteBehind", "writes_for"]

# Buffers per stream: one being received, one being written, one waiting between them.
DEPTH = 3
# Smaller bodies are written inline: little to overlap, and a thread to start.
WRITE_BEHIND_MIN = 2 * BUFFER_SIZE


class WriteBehind:
    """Writes pieces to ``sink`` in order on a worker thread while the caller receives more."""

    def __init__(
        self,
        sink: BlobSink,
        *,
        receiving_from: socket.socket | None = None,
        depth: int | None = None,
        buffer_size: int = BUFFER_SIZE,
    ) -> None:
        self._sink = sink
        self._socket = (
            None
            if receiving_from is None
            else socket.fromfd(receiving_from.fileno(), receiving_from.family, receiving_from.type)
        )
        self._depth = max(2, DEPTH if depth is None else depth)
        self._buffer_size = buffer_size
        self._buffers: list[bytearray] = []  # made when first needed: a fast disk needs two
        self._free: deque[bytearray] = deque()
        self._queue: deque[memoryview | None] = deque()
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ocistore-write", daemon=True)
        self._thread.start()

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._cond:
            self._queue.append(None)  # the worker ends once everything before it is written
            self._cond.notify_all()
        self._thread.join()
        if self._socket is not None:
            self._socket.close()
        if self._error is not None and self._error is not exc:
            raise self._error

    def buffer(self) -> memoryview:
        """A free buffer to receive the next piece into (waits while all of them are in use)."""
        with self._cond:
            if not self._free and len(self._buffers) < self._depth:
                self._buffers.append(bytearray(self._buffer_size))
                self._free.append(self._buffers[-1])
            while not self._free and self._error is None:
                self._cond.wait()
            self._raise_failure()
            return memoryview(self._free.popleft())

    def write(self, piece: memoryview) -> None:
        """Hands ``piece`` on to be written; a view of a buffer from :meth:`buffer` must not be
        changed until that buffer is handed out again."""
        with self._cond:
            while len(self._queue) >= self._depth and self._error is None:
                self._cond.wait()
            self._raise_failure()
            self._queue.append(piece)
            self._cond.notify_all()

    def release(self, piece: memoryview) -> None:
        """Gives back the buffer of a piece that is not written (bytes before a resume offset,
        sent again by a server that ignored ``Range``): else every skipped piece would keep
        one, and the receiver would wait forever for a free buffer."""
        with self._cond:
            self._give_back(piece)
            self._cond.notify_all()

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                piece = self._queue[0]  # stays queued while written: the receiver's bound
            if piece is None:
                return
            try:
                self._sink.write(piece)
            except BaseException as error:
                with self._cond:
                    self._error = error
                    self._cond.notify_all()
                if self._socket is not None:
                    with contextlib.suppress(OSError):  # the peer may have closed it already
                        self._socket.shutdown(socket.SHUT_RDWR)
                return
            with self._cond:
                self._queue.popleft()
                self._give_back(piece)
                self._cond.notify_all()

    def _give_back(self, piece: memoryview) -> None:
        """Returns the buffer ``piece`` is a view of to the free ones (caller holds the lock)."""
        owner = piece.obj
        if any(owner is buffer for buffer in self._buffers):
            self._free.append(owner)  # type: ignore[arg-type]


class InlineWrites:
    """Writes each piece before the next is received, into one reused buffer: for bodies too
    small for a hand-off to a thread to pay."""

    def __init__(self, sink: BlobSink, buffer: bytearray) -> None:
        self._view = memoryview(buffer)
        self.write = sink.write

    def __enter__(self) -> InlineWrites:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def buffer(self) -> memoryview:
        """The one buffer."""
        return self._view

    def release(self, piece: memoryview) -> None:
        """Nothing to give back: the one buffer is reused anyway."""


def writes_for(sink: BlobSink, response: Response, buffer: bytearray) -> WriteBehind | InlineWrites:
    """Write-behind for a body received from the socket directly and worth a thread (at least
    :data:`WRITE_BEHIND_MIN` bytes), else inline writes into ``buffer``."""
    sock = body_socket(response)
    if sock is None or int(response.headers["content-length"]) < WRITE_BEHIND_MIN:
        return InlineWrites(sink, buffer)
    return WriteBehind(sink, receiving_from=sock)
