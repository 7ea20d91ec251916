"""Registers every command on the ``ocistore`` group (imported by ``main``)."""

from __future__ import annotations

from ocistore.cli import auth_commands, registry_commands, serve_commands, store_commands

__all__ = ["auth_commands", "registry_commands", "serve_commands", "store_commands"]
