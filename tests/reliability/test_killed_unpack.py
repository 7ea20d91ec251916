"""SIGKILL while unpacking (issue 17): during ``Store.unpack`` (into a directory and into the
store's cache) and during ``ocistore pull --unpack``, at seeded points across the whole
operation. The next unpack of the same image must yield the complete, correct tree.

The image has whiteouts and an opaque directory, so re-applying layers over a tree a killed
run left half-built is put to the test, not only a fresh build.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from node_registries import ManagerRegistries
from publishing import push_with_ocistore
from trees import Entry, walk

import ocistore
from ocistore.registry.options import RegistryOptions
from ocistore.store import Store
from ocistore.testing.imagebuild import build_image

SEED = 20261129
PLAIN = RegistryOptions(plain_http=True)
KILLS = 60 if os.environ.get("OCISTORE_LONG") == "1" else 6

UNPACK = """
import sys
from ocistore.store import Store
store = Store(sys.argv[1])
print("ready", flush=True)
store.unpack(sys.argv[2], None if sys.argv[3] == "-" else sys.argv[3])
"""


def _specs() -> list[dict[str, bytes]]:
    rng = random.Random(SEED)
    base = {
        f"usr/share/doc/pkg{i:03}/README": rng.randbytes(rng.randrange(500, 6000))
        for i in range(250)
    }
    base |= {
        "etc/gone": b"removed by the next layer",
        "var/cache/old/a": b"a",
        "var/cache/old/b": b"b",
    }
    middle = {
        f"usr/lib/mod{i:03}.so": rng.randbytes(rng.randrange(2000, 20000)) for i in range(150)
    }
    middle |= {"etc/.wh.gone": b"", "var/cache/old/.wh..wh..opq": b"", "var/cache/old/new": b"n"}
    top = {f"usr/share/doc/pkg{i:03}/README": b"patched" for i in range(0, 250, 7)}
    top |= {"opt/app/bin": rng.randbytes(300_000)}
    return [base, middle, top]


@pytest.fixture(scope="module")
def killed_image(
    manager_registries: ManagerRegistries, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[bytes, Entry]]:
    """The pushed image and its tree, as a clean unpack builds it."""
    image = build_image(_specs(), compression="gzip")
    reference = f"{manager_registries.plain.host}/killunpack/{uuid.uuid4().hex[:8]}:v1"
    seed = push_with_ocistore(image, reference, tmp_path_factory.mktemp("killunpack-seed"))
    expected = walk(seed.unpack(reference, tmp_path_factory.mktemp("clean") / "rootfs"))
    assert b"etc/gone" not in expected and b"var/cache/old/a" not in expected
    assert expected[b"var/cache/old/new"].kind == "file"
    return reference, expected


def _kill_after(command: list[str], delay: float, wait_ready: bool) -> bool:
    """Starts ``command``, SIGKILLs it ``delay`` s later (after its "ready" line if asked);
    returns whether it was killed before finishing."""
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )
    try:
        if wait_ready:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
    finally:
        code = child.wait(timeout=120)
        if child.stdout is not None:
            child.stdout.close()
    return code == -signal.SIGKILL


def _timed(command: list[str], wait_ready: bool) -> float:
    """How long ``command`` runs (after its "ready" line if asked)."""
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )
    assert child.stdout is not None
    if wait_ready:
        assert child.stdout.readline().strip() == b"ready"
    start = time.monotonic()
    child.stdout.read()
    assert child.wait(timeout=300) == 0
    child.stdout.close()
    return time.monotonic() - start


class _KillPoints:
    """Seeded kill delays within the first 60 % of a measured run. A run that ends before its
    kill (the probe ran slower than this one: a loaded machine) halves the window, so most
    kills still land mid-operation; ends after KILLS kills or 3 * KILLS runs."""

    def __init__(self, duration: float, salt: str) -> None:
        self._rng = random.Random(f"{SEED}-{salt}")
        self._window = duration * 0.6
        self.killed = 0
        self.runs = 0

    def __iter__(self) -> Iterator[tuple[int, float]]:
        while self.killed < KILLS and self.runs < 3 * KILLS:
            yield self.runs, self._rng.uniform(0, self._window)

    def record(self, killed: bool) -> None:
        self.runs += 1
        if killed:
            self.killed += 1
        else:
            self._window /= 2


@pytest.mark.parametrize("into", ["directory", "cache"])
def test_killed_store_unpack_then_unpack_again(
    killed_image: tuple[str, dict[bytes, Entry]], into: str, tmp_path: Path
) -> None:
    reference, expected = killed_image
    store = Store(tmp_path / "store")
    ocistore.pull(reference, store=store, options=PLAIN)

    def command(dest: str) -> list[str]:
        return [sys.executable, "-c", UNPACK, str(store.root), reference, dest]

    probe = tmp_path / "probe"
    duration = _timed(command(str(probe) if into == "directory" else "-"), True)
    if into == "cache":
        for cached in store.unpacked_dir.iterdir():
            subprocess.run(["rm", "-rf", str(cached)], check=True)
    points = _KillPoints(duration, into)
    for number, delay in points:
        dest = tmp_path / f"rootfs-{number}"
        points.record(_kill_after(command(str(dest) if into == "directory" else "-"), delay, True))
        # A killed build never shows as the tree.
        if into == "directory":
            assert not dest.exists() or walk(dest) == expected
            again = store.unpack(reference, dest) if not dest.exists() else dest
        else:
            again = store.unpack(reference)
        assert walk(again) == expected
        if into == "cache":
            subprocess.run(["rm", "-rf", str(again)], check=True)
    assert points.killed >= KILLS // 2, f"only {points.killed} of {points.runs} runs were killed"
    print(f"killed unpack ({into}): {points.killed} of {points.runs} runs killed mid-unpack")
    # Half-built trees a kill left are garbage the next gc removes; the store is sound.
    store.gc()
    assert [p.name for p in store.unpacked_dir.iterdir()] == []
    report = store.fsck()
    assert report.ok and report.problems == [], report.problems


def test_killed_pull_unpack_then_pull_again(
    killed_image: tuple[str, dict[bytes, Entry]], tmp_path: Path
) -> None:
    reference, expected = killed_image

    def command(number: int | str, rootfs: Path | None = None) -> list[str]:
        rootfs = rootfs or tmp_path / f"rootfs-{number}"
        return [
            sys.executable, "-m", "ocistore", "--store", str(tmp_path / f"store-{number}"),
            "pull", reference, "--plain-http", "--unpack", str(rootfs),
        ]  # fmt: skip

    duration = _timed(command("probe"), False)
    points = _KillPoints(duration, "pull")
    for number, delay in points:
        points.record(_kill_after(command(number), delay, False))
        rootfs = tmp_path / f"rootfs-{number}"
        if rootfs.exists():  # killed after the tree was renamed into place: it is whole
            assert walk(rootfs) == expected
            rootfs = tmp_path / f"rootfs-{number}-again"
        again = subprocess.run(command(number, rootfs), capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        assert walk(rootfs) == expected
        assert Store(tmp_path / f"store-{number}").fsck(repair=True).ok
    assert points.killed >= KILLS // 2, f"only {points.killed} of {points.runs} runs were killed"
    print(f"killed pull --unpack: {points.killed} of {points.runs} runs killed mid-pull")
