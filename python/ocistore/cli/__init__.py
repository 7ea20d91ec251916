"""The ``ocistore`` command line (click + rich; a simple ``pull`` runs without click).

``main`` tries the quick ``pull`` parser (``quick.py``) first and hands every other command
line to click (``app.py``); ``cli``, the click group, is imported on first use.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import click

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``ocistore`` script (``argv`` None: ``sys.argv``, the whole process).

    Run as the process (``argv`` None), it freezes the garbage collector on the way out: what
    is left goes with the process, and the interpreter's last collection would only walk it
    (6% of a re-pull's instructions). Called with ``argv``, it leaves the collector alone.
    """
    from ocistore.cli.quick import run_quick_pull

    args = sys.argv[1:] if argv is None else list(argv)
    try:
        code = run_quick_pull(args, os.environ)
        if code is not None:
            sys.exit(code)
        from ocistore.cli.app import main as click_main

        click_main(args)
    finally:
        if argv is None:
            gc.freeze()


def __getattr__(name: str) -> click.Group:
    if name == "cli":
        from ocistore.cli.app import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
