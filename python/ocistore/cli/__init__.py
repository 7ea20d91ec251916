"""The ``ocistore`` command line (click + rich; a simple ``pull`` runs without click).

``main`` tries the quick ``pull`` parser (``quick.py``) first and hands every other command
line to click (``app.py``); ``cli``, the click group, is imported on first use.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import click

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``ocistore`` script."""
    from ocistore.cli.quick import run_quick_pull

    args = sys.argv[1:] if argv is None else list(argv)
    code = run_quick_pull(args, os.environ)
    if code is not None:
        sys.exit(code)
    from ocistore.cli.app import main as click_main

    click_main(args)


def __getattr__(name: str) -> click.Group:
    if name == "cli":
        from ocistore.cli.app import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
