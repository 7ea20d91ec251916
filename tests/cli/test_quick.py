"""``ocistore pull`` without click (``cli/quick.py``): the same call, output and exit as click's.

Three rules: whatever the quick parser accepts, click parses to the same ``run_pull`` call
(generated command lines); a real pull prints and exits the same both ways (a real registry);
a re-pull run as a process does not import click, while help still comes from click.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from node_registries import ManagerRegistries

import ocistore
import ocistore.cli
from ocistore.cli import app, pulling
from ocistore.cli.state import State
from ocistore.registry.options import RegistryOptions
from ocistore.store import Store
from ocistore.testing.imagebuild import build_image


@pytest.fixture
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A private HOME (no node docker config, no default store) and no store from the caller."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("OCISTORE_ROOT", "OCISTORE_HOSTS_DIR", "DOCKER_CONFIG", "_OCISTORE_COMPLETE"):
        monkeypatch.delenv(name, raising=False)


# --- the same run_pull call ----------------------------------------------------------------

# Paths the directory options name: an existing directory, a regular file, nothing at all
# (made by the ``places`` fixture; the strategies below need their names at import).
PLACES = Path(tempfile.gettempdir(), f"ocistore-quick-{os.getpid()}")
DIRECTORY, FILE, ABSENT = (str(PLACES / name) for name in ("directory", "file", "absent"))

# Pieces of a command line: what the quick path takes, and what it must leave to click.
GLOBAL_PIECES = [
    ["--store", DIRECTORY], [f"--store={DIRECTORY}"], ["--store", ABSENT], ["--json"], ["-q"],
    ["--quiet"],
]  # fmt: skip
PULL_PIECES = [
    ["--policy", "Always"], ["--policy", "IfNotPresent"], ["--policy=Never"],
    ["--platform", "linux/arm64"], ["--platform=linux/amd64/v2"], ["--platform="],
    ["--plain-http"], ["--hosts-dir", DIRECTORY], ["--hosts-dir", ABSENT],
]  # fmt: skip
FOR_CLICK = [
    ["--store", FILE], [f"--store={FILE}"], ["--store="], ["--store"], ["--store", "-q"],
    ["--json=1"], ["-qq"], ["-q=1"], ["--debug"], ["--version"], ["-h"], ["--help"],
    ["--policy", "always"], ["--policy", "NEVER"], ["--policy="], ["--policy"],
    ["--policy", "--plain-http"], ["--platform"], ["--plain-http=true"], [f"--hosts-dir={FILE}"],
    ["--secret", FILE], ["--docker-config", FILE], ["--unpack", ABSENT], ["--ca-file", FILE],
    ["--max-concurrent-downloads-per-layer", "2"], ["--concurrent-layer-fetch-buffer", "0"],
    ["--"], ["--nope"], ["-"], ["-x"], ["-qj"], ["pull"], ["images"], ["Invalid Name"],
]  # fmt: skip
IMAGES = ["127.0.0.1:5000/app:1", "nginx", "Invalid Name", "", "pull", "a:-1", "-", "-q"]
SUBCOMMANDS = ["pull"] * 6 + ["images", "push", "Pull", "pul", "--store"]
ENVIRONMENT_VALUES = [None, None, None, "", DIRECTORY, ABSENT, FILE]


def _option(piece: list[str]) -> str:
    """The option a piece gives (-q and --quiet are one)."""
    name = piece[0].split("=")[0]
    return "--quiet" if name == "-q" else name


@st.composite
def command_lines(draw: st.DrawFn) -> tuple[list[str], dict[str, str | None]]:
    """``ocistore`` argv, mostly a pull the quick path takes, often with pieces for click."""
    chosen = draw(st.lists(st.sampled_from(GLOBAL_PIECES + PULL_PIECES), unique_by=_option))
    before = [piece for piece in chosen if piece in GLOBAL_PIECES and draw(st.booleans())]
    images = draw(st.sampled_from([[image] for image in IMAGES[:3]] * 4 + [[], IMAGES[3:]]))
    after = [piece for piece in chosen if piece not in before] + [images]
    for piece in draw(st.lists(st.sampled_from(FOR_CLICK + GLOBAL_PIECES), max_size=2)):
        into = draw(st.sampled_from([before, after, after]))
        into.insert(draw(st.integers(0, len(into))), piece)
    after = draw(st.permutations(after))
    argv = [
        token
        for piece in [*before, [draw(st.sampled_from(SUBCOMMANDS))], *after]
        for token in piece
    ]
    env = {
        "OCISTORE_ROOT": draw(st.sampled_from(ENVIRONMENT_VALUES)),
        "OCISTORE_HOSTS_DIR": draw(st.sampled_from(ENVIRONMENT_VALUES)),
        "_OCISTORE_COMPLETE": draw(st.sampled_from([None] * 5 + ["bash_complete"])),
    }
    return argv, env


RUN_PULL = inspect.signature(pulling.run_pull)  # before any test patches it


class Declined(Exception):
    """Raised instead of running click: the quick path handed the command line over."""


def _call_of(state: State, kwargs: dict[str, Any]) -> dict[str, Any]:
    """One run_pull call as plain values (every default filled in)."""
    bound = RUN_PULL.bind(state, **kwargs)
    bound.apply_defaults()
    call = dict(bound.arguments)
    output = call.pop("state").output
    return {
        **call,
        "store_root": state.store_root,
        "output": (output.json, output.quiet, output.debug),
    }


@contextlib.contextmanager
def _isolated(env: dict[str, str | None]) -> Iterator[list[dict[str, Any]]]:
    """run_pull recorded instead of run; this environment; output and logging kept in here."""
    calls: list[dict[str, Any]] = []
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.dict(os.environ))
        for name, value in env.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value
        stack.enter_context(
            mock.patch.object(
                pulling, "run_pull", lambda state, **kw: calls.append(_call_of(state, kw))
            )
        )
        stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
        try:
            yield calls
        finally:
            root.handlers[:], root.level = handlers, level


def _exit_code(run: Any, argv: Sequence[str]) -> int | str | None:
    with pytest.raises(SystemExit) as exited:
        run(list(argv))
    return exited.value.code


def quick_call(argv: Sequence[str], env: dict[str, str | None]) -> dict[str, Any] | None:
    """The run_pull call ``ocistore.cli.main`` makes without click, or None if it declined."""
    with _isolated(env) as calls, mock.patch.object(app, "main", side_effect=Declined):
        try:
            code = _exit_code(ocistore.cli.main, argv)
        except Declined:
            return None
    assert code == 0 and len(calls) == 1, (code, calls)
    return calls[0]


def click_call(argv: Sequence[str], env: dict[str, str | None]) -> dict[str, Any] | None:
    """The run_pull call click makes for ``argv``, or None if it exits without one."""
    with _isolated(env) as calls:
        code = _exit_code(app.main, argv)
    return calls[0] if code == 0 and len(calls) == 1 else None


@pytest.fixture(scope="module", autouse=True)
def places() -> Iterator[None]:
    Path(DIRECTORY).mkdir(parents=True)
    Path(FILE).write_text("a file\n")
    yield
    shutil.rmtree(PLACES)


# What node scripts run: the quick path must take these (and click must agree on them).
TAKEN = [
    ["--store", DIRECTORY, "-q", "pull", "--policy", "Always", "--plain-http", "r:5000/a:1"],
    ["pull", "nginx"],
    ["pull", "nginx:1", "--store", ABSENT, "--json", "--platform", "linux/arm64"],
    [f"--store={DIRECTORY}", "--json", "pull", "-q", "--policy=IfNotPresent", "a@sha256:00"],
    ["--quiet", "pull", "--hosts-dir", DIRECTORY, "--policy", "Never", "r/a"],
    ["pull", "--platform=", "--hosts-dir=", "--store=", ""],
]


@pytest.mark.parametrize("argv", TAKEN, ids=lambda argv: " ".join(argv)[-40:])
def test_the_quick_path_takes_what_scripts_run(argv: list[str]) -> None:
    taken = quick_call(argv, {})
    assert taken is not None, "declined"
    assert taken == click_call(argv, {})


def test_the_environment_counts_as_click_reads_it() -> None:
    """$OCISTORE_ROOT and $OCISTORE_HOSTS_DIR: used when the option is absent, empty is unset."""
    env: dict[str, str | None] = {"OCISTORE_ROOT": ABSENT, "OCISTORE_HOSTS_DIR": DIRECTORY}
    taken = quick_call(["pull", "nginx"], env)
    assert taken is not None and (taken["store_root"], taken["hosts_dir"]) == (ABSENT, DIRECTORY)
    assert taken == click_call(["pull", "nginx"], env)
    empty: dict[str, str | None] = {"OCISTORE_ROOT": "", "OCISTORE_HOSTS_DIR": ""}
    taken = quick_call(["pull", "nginx"], empty)
    assert taken is not None and (taken["store_root"], taken["hosts_dir"]) == (None, None)
    # A file where a directory must be: click says so (exit 2), even if --store overrides it.
    assert quick_call(["pull", "nginx", "--store", DIRECTORY], {"OCISTORE_ROOT": FILE}) is None


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize("piece", FOR_CLICK, ids=" ".join)
def test_each_piece_for_click_is_left_to_click_or_parsed_alike(
    piece: list[str], where: str
) -> None:
    """One such piece in a line the quick path takes: declined, or the same call as click's."""
    argv = [*piece, "pull", "a:1"] if where == "before" else ["pull", "a:1", *piece]
    taken = quick_call(argv, {})
    if taken is not None:
        assert taken == click_call(argv, {})


@settings(max_examples=500)
@given(command_lines())
@example((["--store", DIRECTORY, "pull", "a:1", "--store", ABSENT], {}))  # repeated
@example((["pull", "a:1", "--policy", "--plain-http"], {}))  # a value like an option
@example((["pull", "a:1"], {"OCISTORE_HOSTS_DIR": FILE}))  # click: "is a file"
@example((["pull", "a:1", "--store", FILE], {}))
@example((["-q", "pull", "a:1", "--quiet"], {}))
@example((["pull", "a:1", "--json=1"], {}))
@example((["pull", "a:1"], {"_OCISTORE_COMPLETE": "bash_complete"}))  # click completes
def test_what_the_quick_path_accepts_click_parses_the_same(
    line: tuple[list[str], dict[str, str | None]],
) -> None:
    argv, env = line
    taken = quick_call(argv, env)
    event("quick" if taken is not None else "declined")
    if taken is not None:
        assert taken == click_call(argv, env), argv


# --- the same output and exit code ---------------------------------------------------------

RUN = """
import atexit, os, sys
def modules():
    with open(os.environ["MODULES_FILE"], "w") as file:
        file.write(" ".join(sorted(sys.modules)))
atexit.register(modules)
from ocistore.cli{} import main
main()
"""
QUICK, CLICK = RUN.format(""), RUN.format(".app")
DURATIONS = re.compile(r"in [0-9][0-9.a-zµ]* \([0-9][0-9.a-zµ]* including waiting\)")


class Run:
    """A finished ``ocistore`` process: its output (durations masked), exit code, modules."""

    def __init__(self, done: subprocess.CompletedProcess[str], modules: set[str]) -> None:
        self.stdout = DURATIONS.sub("in D (D including waiting)", done.stdout)
        self.stderr = done.stderr
        self.code = done.returncode
        self.modules = modules

    def outcome(self) -> tuple[list[str], str, int]:
        # Layers download concurrently: their lines come in any order.
        return sorted(self.stdout.splitlines()), self.stderr, self.code


def run_ocistore(runner: str, cwd: Path, *args: str) -> Run:
    """``ocistore ARGS`` in ``cwd`` (``--store store`` is then the same text both ways)."""
    cwd.mkdir(parents=True, exist_ok=True)
    modules_file = cwd / f"modules-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [sys.executable, "-c", runner, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "MODULES_FILE": str(modules_file)},
    )
    modules = set(modules_file.read_text().split())
    modules_file.unlink()
    return Run(done, modules)


@pytest.fixture(scope="module")
def pushed(manager_registries: ManagerRegistries, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An image of three layers in the plain registry."""
    reference = f"{manager_registries.plain.host}/quick/app-{uuid.uuid4().hex[:6]}:1"
    store = Store(tmp_path_factory.mktemp("quick-build"))
    layers = [{"etc/os-release": "ID=quick\n"}, {"a.bin": b"a" * 70_000}, {"b.bin": b"b" * 9000}]
    build_image(layers).write_to_store(store, reference)
    ocistore.push(reference, store=store, options=RegistryOptions(plain_http=True))
    return reference


@pytest.mark.usefixtures("private_home")
def test_pull_prints_and_exits_as_click_does(pushed: str, tmp_path: Path) -> None:
    """Each step runs twice, quick and click, each in its own directory and store."""
    registry = pushed.split("/")[0]
    steps: list[tuple[str, ...]] = [
        ("--store", "store", "pull", pushed),  # cold: progress lines, then the result
        ("--store", "store", "pull", "--policy", "Always", pushed),
        ("--store", "store", "pull", pushed, "--policy", "IfNotPresent"),
        ("--store", "store", "-q", "pull", "--policy", "Always", pushed),
        ("pull", pushed, "--json", "--store", "store"),
        ("--store", "store", "pull", "--policy", "Always", "--json", pushed),
        ("--store", "store", "pull", pushed.replace(":1", ":absent")),  # manifest unknown
        ("--store", "store", "--json", "pull", pushed.replace(":1", ":absent")),
        ("--store", "store", "pull", "--policy", "Never", f"{registry}/quick/never:1"),
        ("--store", "store", "-q", "pull", f"127.0.0.1:1/quick/unreachable:{uuid.uuid4().hex}"),
        ("--store", "store", "pull", "Invalid Name", "--json"),
    ]
    for step in steps:
        quick = run_ocistore(QUICK, tmp_path / "quick", *step)
        click = run_ocistore(CLICK, tmp_path / "click", *step)
        assert quick.outcome() == click.outcome(), step
        assert "click" not in quick.modules and "click" in click.modules, step
    # What the steps printed, so that the comparison above compared something.
    assert quick.code == 1 and json.loads(quick.stdout)["reason"] == "InvalidImageName"


@pytest.mark.usefixtures("private_home")
def test_a_present_image_is_pulled_without_click_and_help_still_works(
    pushed: str, tmp_path: Path
) -> None:
    store = str(tmp_path / "store")
    first = run_ocistore(QUICK, tmp_path, "--store", store, "-q", "pull", pushed)
    again = run_ocistore(
        QUICK, tmp_path, "--store", store, "pull", "--policy", "IfNotPresent", pushed
    )
    assert (first.code, again.code) == (0, 0), first.stderr + again.stderr
    assert "already present on machine" in again.stdout
    assert "ocistore.manager" in again.modules and "click" not in again.modules
    helped = run_ocistore(QUICK, tmp_path, "pull", "--help")
    assert helped.code == 0 and helped.stdout.startswith("Usage: ocistore pull [OPTIONS] IMAGE")
    assert "click" in helped.modules
    usage = run_ocistore(QUICK, tmp_path, "--store", store, "pull", "--policy", "always", pushed)
    assert usage.code == 2 and "Invalid value for '--policy'" in usage.stderr
