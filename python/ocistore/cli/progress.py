"""Pull progress as people expect it: a bar per layer on a terminal, docker-like lines elsewhere."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import TYPE_CHECKING

from ocistore.cli.output import Output

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from ocistore.transfer.pull import PullEvent


def short(digest: str | None) -> str:
    """The 12 hex characters docker shows for a layer."""
    return (digest or "").split(":", 1)[-1][:12]


class PullProgress:
    """A progress callback for ``pull``; use it as a context manager around the pull."""

    def __init__(self, output: Output, *, quiet: bool = False) -> None:
        self.output = output
        self.quiet = quiet
        self.bars = output.interactive and not quiet
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskID] = {}
        self._progress: Progress | None = None
        if self.bars:  # rich only draws bars on a terminal; elsewhere lines are plain text
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=output.console,
                transient=False,
            )

    def __enter__(self) -> PullProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def _line(self, text: str) -> None:
        if not self.quiet:
            if self._progress is not None:
                self._progress.console.print(text, markup=False, highlight=False)
            else:
                self.output.say(text)

    def __call__(self, event: PullEvent) -> None:
        with self._lock:
            self._handle(event)

    def _handle(self, event: PullEvent) -> None:
        layer = short(event.digest)
        if event.kind == "resolved":
            self._line(f"{event.reference}: resolved to {event.digest}")
        elif event.kind == "layer-skipped":
            self._line(f"{layer}: Already exists")
        elif event.kind == "layer-started":
            if self._progress is not None and event.digest not in self._tasks:
                self._tasks[event.digest or ""] = self._progress.add_task(
                    f"{layer}: Downloading", total=event.size, completed=event.completed
                )
            else:
                self._line(f"{layer}: Pulling fs layer")
        elif event.kind == "layer-progress":
            task = self._tasks.get(event.digest or "")
            if self._progress is not None and task is not None:
                self._progress.update(task, completed=event.completed)
        elif event.kind == "layer-downloaded":
            task = self._tasks.get(event.digest or "")
            if self._progress is not None and task is not None:
                self._progress.update(
                    task, completed=event.size or event.completed, description=f"{layer}: Done"
                )
            else:
                self._line(f"{layer}: Download complete")
        elif event.kind == "layer-applied":
            self._line(f"{layer}: Pull complete")
        elif event.kind == "done":
            self._line(f"Digest: {event.digest}")
