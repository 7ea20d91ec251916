"""Loggers that import :mod:`logging` only when a record could go somewhere.

Until a program imports ``logging``, nothing can have configured it: the root logger's level
is WARNING and no handler exists, so ``logging`` would drop a DEBUG or INFO record anyway. A
:class:`Logger` drops those without importing ``logging`` (with ``traceback``, which it
imports, about 6 ms of a command's start-up on a 2-core machine; a re-pull logs only INFO
events). A record at WARNING or above, and every record once ``logging`` is loaded (by the
program, by pytest, by ``ocistore --debug``), goes to ``logging.getLogger(name)`` unchanged,
with the caller's file, function and line. The ``ocistore`` logger gets its ``NullHandler``
when ``logging`` is first used through here, before the first record, as a library's should.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging

__all__ = ["DEBUG", "INFO", "WARNING", "Logger", "get_logger", "logging_logger"]

# logging's levels (fixed by its documentation).
DEBUG = 10
INFO = 20
WARNING = 30

_ROOT = "ocistore"


def logging_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)``, the ``ocistore`` logger having its ``NullHandler``."""
    import logging

    package = logging.getLogger(_ROOT)
    if not any(isinstance(h, logging.NullHandler) for h in package.handlers):
        package.addHandler(logging.NullHandler())
    return logging.getLogger(name)


class Logger:
    """The few methods of ``logging.Logger`` that ocistore uses, loading ``logging`` lazily."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<ocistore Logger {self.name}>"

    def _emit(self, level: int, msg: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if level < WARNING and "logging" not in sys.modules:
            return
        # 3: logging's caller is this method, its caller is debug()/log()/..., then the caller.
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 2
        logging_logger(self.name).log(level, msg, *args, **kwargs)

    def isEnabledFor(self, level: int) -> bool:
        """As ``logging.Logger.isEnabledFor``; False below WARNING while nothing loaded logging."""
        if level < WARNING and "logging" not in sys.modules:
            return False
        return logging_logger(self.name).isEnabledFor(level)

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        """``logging.Logger.log``."""
        self._emit(level, msg, args, kwargs)

    def debug(self, msg: object, *args: Any, **kwargs: Any) -> None:
        """``logging.Logger.debug``."""
        self._emit(DEBUG, msg, args, kwargs)

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        """``logging.Logger.info``."""
        self._emit(INFO, msg, args, kwargs)

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None:
        """``logging.Logger.warning``."""
        self._emit(WARNING, msg, args, kwargs)


def get_logger(name: str) -> Logger:
    """The lazily loading logger of ``name`` (a name under ``ocistore``)."""
    return Logger(name)
