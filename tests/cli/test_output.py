"""The command line's plain-text path (stdout or stderr not a terminal): no rich, no escapes."""

from __future__ import annotations

import pytest

from ocistore.cli.output import Output


def test_lines_to_a_pipe_are_plain_and_cannot_drive_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    output = Output()
    assert not output.terminal and not output.interactive  # pytest captures into a pipe/file
    output.say("pulled \x1b]0;owned\x07 from [bold]registry[/bold]\rX")
    output.error("registry said \x1b[2J\x08boom", "try again")
    captured = capsys.readouterr()
    assert captured.out == "pulled ]0;owned from [bold]registry[/bold]X\n"  # no markup either
    assert captured.err == "error: registry said [2Jboom\nhint: try again\n"


def test_quiet_and_json_say_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    Output(quiet=True).say("hidden")
    Output(json=True).say("hidden")
    Output(quiet=True).result({"a": 1}, "the line")
    assert capsys.readouterr().out == "the line\n"
