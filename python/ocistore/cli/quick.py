"""``ocistore pull`` without click, for the command lines a node script runs most.

A warm re-pull of a present image is mostly Python's start-up and imports, and click is a good
part of those. :func:`parse_pull` accepts a strict subset of what click accepts for ``pull``:

- global options ``--store DIR`` (or ``$OCISTORE_ROOT``), ``--json``, ``-q``/``--quiet``, before
  or after the subcommand, as click allows;
- ``pull`` with ``--policy Always|IfNotPresent|Never``, ``--platform X``, ``--plain-http``,
  ``--hosts-dir DIR`` (or ``$OCISTORE_HOSTS_DIR``), and one IMAGE.

It declines (returns None) on anything else — help, ``--version``, ``--debug``, ``--``, other
options or subcommands, a repeated option, a missing value or one that starts with ``-``, a
second IMAGE, bundled short flags, shell completion, a directory option naming a file — so that
click then parses the whole line and every usage error keeps click's message and exit code 2.
What it accepts, click parses to the same :func:`ocistore.cli.pulling.run_pull` call
(``tests/cli/test_quick.py`` checks this with generated command lines).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from ocistore._valueclass import valueclass
from ocistore.cli.failures import EXIT_FAILURE, EXIT_OK

#: Options taken before or after the subcommand: their name as click's parameter knows it.
_GLOBAL_FLAGS = {"--json": "json", "-q": "quiet", "--quiet": "quiet"}
_GLOBAL_VALUES = {"--store": "store"}
#: ``pull``'s own options that this parser handles.
_PULL_FLAGS = {"--plain-http": "plain_http"}
_PULL_VALUES = {"--policy": "policy", "--platform": "platform", "--hosts-dir": "hosts_dir"}

STORE_ENV = "OCISTORE_ROOT"
HOSTS_DIR_ENV = "OCISTORE_HOSTS_DIR"
#: Set by a shell asking click for completions (click's ``_{PROG}_COMPLETE``).
_COMPLETION_ENV = "_OCISTORE_COMPLETE"


@valueclass
class QuickPull:
    """A ``pull`` command line, parsed."""

    store_root: str | None
    json: bool
    quiet: bool
    image: str
    policy: str | None
    platform: str | None
    plain_http: bool | None
    hosts_dir: str | None


def _directory_option_ok(value: str) -> bool:
    """Whether click's ``Path(file_okay=False)`` surely accepts ``value`` (else: let click say)."""
    if "\0" in value:
        return False
    if not os.path.lexists(value):
        return True  # click checks only paths that exist
    return os.path.isdir(value) and os.access(value, os.R_OK)


def _env_value(environ: Mapping[str, str], name: str) -> str | None:
    """An environment variable as click reads it for an option: empty means unset."""
    return environ.get(name) or None


def parse_pull(argv: Sequence[str], environ: Mapping[str, str]) -> QuickPull | None:
    """``argv`` as a simple ``pull``, or None when click must parse it."""
    if environ.get(_COMPLETION_ENV):
        return None
    before: dict[str, str | bool] = {}  # the group's options
    after: dict[str, str | bool] = {}  # the subcommand's (global ones included)
    images: list[str] = []
    in_pull = False
    tokens = iter(argv)
    for token in tokens:
        if not token.startswith("-"):
            if in_pull:
                images.append(token)
            elif token == "pull":
                in_pull = True
            else:
                return None
            continue
        name, equals, inline = token.partition("=") if token.startswith("--") else (token, "", "")
        flags = {**_GLOBAL_FLAGS, **_PULL_FLAGS} if in_pull else _GLOBAL_FLAGS
        valued = {**_GLOBAL_VALUES, **_PULL_VALUES} if in_pull else _GLOBAL_VALUES
        seen = after if in_pull else before
        value: str | bool
        if name in flags and not equals:
            key, value = flags[name], True
        elif name in valued:
            key = valued[name]
            value = inline if equals else next(tokens, "-")  # "-": no value left
            if value.startswith("-"):
                return None  # missing, or what click might read as an option
        else:
            return None
        if key in before or key in after:
            return None  # repeated: click's rules for that are not worth copying
        seen[key] = value
    if not in_pull or len(images) != 1:
        return None
    return _checked(before, after, images[0], environ)


def _checked(
    before: dict[str, str | bool],
    after: dict[str, str | bool],
    image: str,
    environ: Mapping[str, str],
) -> QuickPull | None:
    """The parsed line, if every value passes click's checks of it."""
    group_store = before.get("store", _env_value(environ, STORE_ENV))
    hosts_dir = after.get("hosts_dir", _env_value(environ, HOSTS_DIR_ENV))
    store_root = after.get("store", group_store)
    policy = after.get("policy")
    paths = (group_store, store_root, hosts_dir)
    if any(isinstance(path, str) and not _directory_option_ok(path) for path in paths):
        return None
    if policy is not None:
        from ocistore.policy import PullPolicy  # the pull needs it anyway

        if policy not in [choice.value for choice in PullPolicy]:
            return None  # click.Choice says what is wrong (case-sensitive, as click checks)
    platform = after.get("platform")
    return QuickPull(
        store_root=store_root if isinstance(store_root, str) else None,
        json=bool(before.get("json") or after.get("json")),
        quiet=bool(before.get("quiet") or after.get("quiet")),
        image=image,
        policy=policy if isinstance(policy, str) else None,
        platform=platform if isinstance(platform, str) else None,
        plain_http=True if after.get("plain_http") else None,
        hosts_dir=hosts_dir if isinstance(hosts_dir, str) else None,
    )


def run_quick_pull(argv: Sequence[str], environ: Mapping[str, str]) -> int | None:
    """Runs ``argv`` if it is a simple ``pull``: the exit code, or None to let click run it."""
    parsed = parse_pull(argv, environ)
    if parsed is None:
        return None
    from ocistore.cli import pulling
    from ocistore.cli.failures import report_failure
    from ocistore.cli.output import Output
    from ocistore.cli.state import State
    from ocistore.errors import OciStoreError

    state = State(Output(json=parsed.json, quiet=parsed.quiet), parsed.store_root)
    try:
        pulling.run_pull(
            state,
            image=parsed.image,
            policy=parsed.policy,
            platform=parsed.platform,
            plain_http=parsed.plain_http,
            hosts_dir=parsed.hosts_dir,
        )
    except (OciStoreError, OSError) as error:
        return report_failure(state.output, error)
    except (EOFError, KeyboardInterrupt):
        sys.stderr.write("\nAborted!\n")  # what click's main prints
        return EXIT_FAILURE
    return EXIT_OK
