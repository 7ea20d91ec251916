"""What the package builds on first use instead of at import.

Package attributes that load their module on first use (PEP 562 ``__getattr__``): a package
lists ``{name: module}``; ``import package`` then costs nothing for those names, and
``package.name`` (or ``from package import name``) imports ``module`` once. And regular
expressions compiled on first use and kept for the process (:func:`pattern`).
"""

from __future__ import annotations

import functools
import importlib
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_attributes(
    package: str, modules: Mapping[str, str], public: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` for the lazily loaded ``modules``."""

    def __getattr__(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # the next lookup is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted(public)

    return __getattr__, __dir__


@functools.cache
def pattern(source: str, flags: int = 0) -> re.Pattern[str]:
    """``re.compile(source, flags)``, compiled on first use and kept for the process (``re``'s
    own cache is bounded: a long-lived program using many patterns would compile ours again)."""
    return re.compile(source, flags)
