"""The ``ocistore`` command line (click + rich)."""

from __future__ import annotations

from ocistore.cli.app import cli, main

__all__ = ["cli", "main"]
