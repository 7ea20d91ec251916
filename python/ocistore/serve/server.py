"""Running the mirror: listen, announce the bound address, stop cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import sys
from collections.abc import Callable

from aiohttp import web

from ocistore._log import logging_logger
from ocistore.errors import OciStoreError
from ocistore.serve.app import AccessLog, make_app
from ocistore.serve.content import ServedContent

__all__ = ["DEFAULT_LISTEN", "parse_listen", "run"]

DEFAULT_LISTEN = "127.0.0.1:5050"
#: A connection without a complete request for this many seconds is closed (idle keep-alive
#: connections, and clients that trickle their headers).
IDLE_TIMEOUT = 30.0


class ListenAddressError(OciStoreError, ValueError):
    """``--listen`` is not ``HOST:PORT``."""


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as a host and a port number."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ListenAddressError(f"--listen wants HOST:PORT, not {text!r}")
    host = host.removeprefix("[").removesuffix("]") or "0.0.0.0"
    return host, int(port)


def _raise_open_files_limit() -> None:
    # Every connection and every blob being sent holds a descriptor.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run(
    content: ServedContent,
    listen: str = DEFAULT_LISTEN,
    *,
    announce: Callable[[str], None] | None = None,
    idle_timeout: float = IDLE_TIMEOUT,
) -> None:
    """Serves ``content`` until SIGTERM or SIGINT; ``announce`` gets the bound URL."""
    host, port = parse_listen(listen)
    _raise_open_files_limit()
    asyncio.run(_serve(content, host, port, announce or (lambda url: None), idle_timeout))


async def _serve(
    content: ServedContent,
    host: str,
    port: int,
    announce: Callable[[str], None],
    idle_timeout: float,
) -> None:
    access = logging_logger("ocistore.serve.access")
    runner = web.AppRunner(
        make_app(content),
        access_log_class=AccessLog,
        access_log=access,
        keepalive_timeout=idle_timeout,
        handle_signals=False,
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        site = web.TCPSite(runner, host, port, backlog=1024)
        await site.start()
        bound = runner.addresses[0]
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        announce(f"http://{shown}:{bound[1]}")
        await stop.wait()
    finally:
        await runner.cleanup()


def log_to_stderr(level: int = logging.INFO) -> None:
    """Access log lines (and warnings) on stderr, one per request."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    logger = logging_logger("ocistore.serve")
    logger.addHandler(handler)
    logger.setLevel(level)
