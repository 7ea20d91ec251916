"""The ``ocistore`` command: global options, the store, and one-line errors."""

from __future__ import annotations

import functools
import importlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ocistore.cli.failures import report_failure
from ocistore.cli.output import Output
from ocistore.cli.state import State
from ocistore.errors import OciStoreError

F = TypeVar("F", bound=Callable[..., Any])

pass_state = click.make_pass_decorator(State)


def handle_errors(command: F) -> F:
    """Turns ocistore errors into one line (and exit 1); tracebacks only with --debug."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        state = ctx.find_object(State)
        output = state.output if state else Output()
        try:
            return command(*args, **kwargs)
        except (OciStoreError, OSError) as error:
            if output.debug:
                raise
            ctx.exit(report_failure(output, error))

    return wrapper  # type: ignore[return-value]


EPILOG = """\b
Global options (--store, --json, -q, --debug) go before or after the subcommand.
Exit codes: 0 success, 1 failure (one line on stderr says why), 2 usage error.
The store lives in --store, $OCISTORE_ROOT, or the user data directory.
"""


def _apply_global_option(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """A global option given after the subcommand: update what the group set up."""
    state = ctx.find_object(State)
    if state is None or value is None or value is False:
        return
    if param.name == "store_root":
        state.store_root = value
    elif param.name == "json_output":
        state.output.json = True
    elif param.name == "quiet":
        state.output.quiet = True
    elif param.name == "debug":
        state.output.debug = True
        _log_debug()


def _global_options() -> list[click.Parameter]:
    """The group's options, accepted after the subcommand too (as kubectl, crane, skopeo do)."""
    common: dict[str, Any] = {"expose_value": False, "callback": _apply_global_option}
    return [
        click.Option(
            ["--store", "store_root"],
            type=click.Path(file_okay=False, path_type=str),
            help="Store directory (global option).",
            **common,
        ),
        click.Option(
            ["--json", "json_output"],
            is_flag=True,
            help="Print one JSON document (global).",
            **common,
        ),
        click.Option(
            ["-q", "--quiet"], is_flag=True, help="Only what scripts need (global).", **common
        ),
        click.Option(
            ["--debug"], is_flag=True, help="Log HTTP, show tracebacks (global).", **common
        ),
    ]


class GlobalOptionsCommand(click.Command):
    """A subcommand that also takes the global options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(_global_options())


class OcistoreGroup(click.Group):
    """Every command and subgroup registered on it takes the global options after its name."""

    command_class = GlobalOptionsCommand
    group_class = type  # subgroups are OcistoreGroups: their commands take them too


def _log_debug() -> None:
    logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")


#: The module that defines each command: a run imports only its own command's module (and
#: what that needs), so that ``ocistore pull`` does not pay for yaml, rich tables or the store's
#: maintenance code. ``tests/cli/test_cli.py`` checks this table against the commands.
COMMAND_MODULES = {
    **dict.fromkeys(("pull", "ensure", "resolve", "push", "copy"), "registry_commands"),
    **dict.fromkeys(
        ("images", "inspect", "rm", "gc", "fsck", "unpack", "export", "import"), "store_commands"
    ),
    **dict.fromkeys(("auth", "create-secret"), "auth_commands"),
    **dict.fromkeys(("serve", "mirror-hosts"), "serve_commands"),
}


class LazyGroup(OcistoreGroup):
    """A group whose commands are registered when first looked up, by importing their module."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            importlib.import_module(f"ocistore.cli.{module}")
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for module in sorted(set(COMMAND_MODULES.values())):
            importlib.import_module(f"ocistore.cli.{module}")
        return super().list_commands(ctx)


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store",
    "store_root",
    type=click.Path(file_okay=False, path_type=str),
    envvar="OCISTORE_ROOT",
    help="Store directory (default: $OCISTORE_ROOT or the user data dir).",
)
@click.option("--json", "json_output", is_flag=True, help="Print one JSON document.")
@click.option("-q", "--quiet", is_flag=True, help="Print only what scripts need.")
@click.option("--debug", is_flag=True, help="Log HTTP and show tracebacks.")
@click.version_option(package_name="ocistore", prog_name="ocistore")
@click.pass_context
def cli(
    ctx: click.Context, store_root: str | None, json_output: bool, quiet: bool, debug: bool
) -> None:
    """ocistore: pull, store and unpack OCI images the way kubelet does.

    \b
    Examples:
      ocistore pull nginx:1.27
      ocistore pull 127.0.0.1:5000/app:v1 --unpack ./rootfs
      ocistore images
      ocistore ensure -f pod.yaml --secrets secrets.yaml
    """
    if debug:
        _log_debug()
    ctx.obj = State(Output(json=json_output, quiet=quiet, debug=debug), store_root)


def main(argv: list[str] | None = None) -> None:
    """The click command line (``ocistore.cli.main`` tries the quick ``pull`` path first)."""
    cli.main(args=argv, prog_name="ocistore", standalone_mode=True)


def _path(value: str) -> Path:
    return Path(os.path.expanduser(value))


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
