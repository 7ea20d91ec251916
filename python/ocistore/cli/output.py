"""How the command line talks: rich text for people, one JSON document for scripts."""

from __future__ import annotations

import enum
import functools
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


class Output:
    """The global output options of one invocation."""

    def __init__(self, *, json: bool = False, quiet: bool = False, debug: bool = False) -> None:
        # A plain class (three flags): every command makes one, and a dataclass would compile
        # its methods at each start of the command line.
        self.json = json
        self.quiet = quiet
        self.debug = debug

    # The consoles are made on first use: a quiet run that prints one line does not import rich.
    @functools.cached_property
    def console(self) -> Console:
        """Where people's output goes (stdout)."""
        from rich.console import Console

        console = Console(highlight=False, soft_wrap=True)
        if not console.is_terminal:
            # Pipes and files get whole lines: tables are not folded to 80 columns.
            console = Console(highlight=False, soft_wrap=True, width=1000)
        return console

    @functools.cached_property
    def errors(self) -> Console:
        """Where errors and hints go (stderr)."""
        from rich.console import Console

        return Console(stderr=True, highlight=False, soft_wrap=True)

    @functools.cached_property
    def terminal(self) -> bool:
        """Whether stdout is a terminal: only then is rich imported to print lines."""
        return sys.stdout.isatty()

    @property
    def interactive(self) -> bool:
        """True when progress bars make sense (a terminal, no JSON, not quiet)."""
        return not self.json and not self.quiet and self.terminal

    def say(self, message: str) -> None:
        """A human line on stdout (suppressed by --json and -q)."""
        if not self.json and not self.quiet:
            self._line(message)

    def _line(self, message: str) -> None:
        if self.terminal:
            self.console.print(message, markup=False)
        else:  # pipes and files: the plain line, without rich's import (a warm pull's cost)
            sys.stdout.write(plain(message) + "\n")

    def result(self, document: Any, human: str | None = None) -> None:
        """The command's result: JSON with --json, else the human text (even with -q)."""
        if self.json:
            sys.stdout.write(json.dumps(to_jsonable(document), indent=2, sort_keys=True) + "\n")
        elif human is not None and self.quiet:
            sys.stdout.write(human + "\n")  # what scripts read: the line exactly
        elif human is not None:
            self._line(human)

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        """A table for people (plain, so it survives pipes)."""
        if self.quiet:
            for row in rows:
                self._line(str(row[0]))
            return
        from rich.table import Table

        table = Table(box=None, pad_edge=False, show_edge=False)
        for number, column in enumerate(columns):
            table.add_column(column, overflow="fold", no_wrap=number == 0)
        for row in rows:
            table.add_row(*(str(cell) for cell in row))
        self.console.print(table)

    def error(self, message: str, hint: str | None = None) -> None:
        """One clear line on stderr, and a hint on what to do."""
        lines = [f"error: {message}", *([f"hint: {hint}"] if hint else [])]
        for line in lines:
            if sys.stderr.isatty():
                self.errors.print(line, markup=False)
            else:
                sys.stderr.write(plain(line) + "\n")


# What rich drops from printed text (bell, backspace, vertical tab, form feed, carriage return),
# and the escape character too: names and messages from registries must not drive a terminal.
_CONTROL_CHARACTERS = dict.fromkeys((7, 8, 11, 12, 13, 27))


def plain(text: str) -> str:
    """``text`` without the control characters a terminal would act on."""
    return text.translate(_CONTROL_CHARACTERS)


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, paths and datetimes as plain JSON values with stable keys."""
    import dataclasses  # here: a valueclass needs dataclasses only when asked for its fields

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    return value


def human_size(size: int | float) -> str:
    """Bytes as docker prints them (1000-based, 3 significant digits)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.3g}{unit}" if unit != "B" else f"{int(value)}B"
        value /= 1000
    return f"{value:.3g}TB"
