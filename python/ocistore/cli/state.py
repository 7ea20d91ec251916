"""What every command gets: the output options and the store, opened on first use."""

from __future__ import annotations

from typing import Any

from ocistore.cli.output import Output


class State:
    """The global options of one invocation: how to print, and which store (opened lazily)."""

    def __init__(self, output: Output, store_root: str | None) -> None:
        self.output = output
        self.store_root = store_root
        self._store: Any = None

    @property
    def store(self) -> Any:
        """The store at ``store_root`` (the default store when None), opened on first use."""
        if self._store is None:
            from ocistore.store import Store

            self._store = Store(self.store_root)
        return self._store
