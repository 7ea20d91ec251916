"""A TCP relay on 127.0.0.1 that counts the bytes a registry sends and calls back at a mark.

The kill-point test uses it to SIGKILL a pulling process after exactly N bytes of responses
(give or take one socket read), which makes the kill points seeded and repeatable.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

CHUNK = 16_384


class CountingRelay:
    """Relays one upstream ``host:port``; ``on_bytes(total)`` sees the running byte count."""

    def __init__(self, upstream: str, on_bytes: Callable[[int], None]) -> None:
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._on_bytes = on_bytes
        self._lock = threading.Lock()
        self.total = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._start(self._accept)

    def _start(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self._upstream, timeout=10)
            except OSError:
                client.close()
                continue
            self._sockets += [client, server]
            self._start(self._pipe, client, server, False)
            self._start(self._pipe, server, client, True)

    def _pipe(self, source: socket.socket, sink: socket.socket, count: bool) -> None:
        try:
            while True:
                data = source.recv(CHUNK)
                if not data:
                    break
                if count:
                    with self._lock:
                        self.total += len(data)
                        total = self.total
                    self._on_bytes(total)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Stops accepting and closes every relayed connection."""
        self._closed.set()
        self._listener.close()
        for sock in self._sockets:
            sock.close()
