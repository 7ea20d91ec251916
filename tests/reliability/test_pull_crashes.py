"""Proof under crashes and concurrency (issue 9): SIGKILL a pulling process at seeded byte
offsets, and run eight processes pulling images that share layers into one store."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from netns import Relay
from node_registries import ManagerRegistries
from publishing import push_with_ocistore
from regfixtures.registry import registry_requests

import ocistore
from ocistore.registry.options import RegistryOptions
from ocistore.store import ProblemKind, Store
from ocistore.testing.imagebuild import build_image

PULL = (
    "import sys, ocistore\n"
    "from ocistore.store import Store\n"
    "options = ocistore.RegistryOptions(plain_http=True)\n"
    "ocistore.pull(sys.argv[2], store=Store(sys.argv[1]), options=options)\n"
)
# One interpreter imports ocistore once and forks a pulling child per kill point (each child
# is its own process, SIGKILLed by its pid): the kill points no longer pay an import each.
PULL_FORKS = (
    "import os, sys, ocistore\n"
    "from ocistore.store import Store\n"
    "options = ocistore.RegistryOptions(plain_http=True)\n"
    "for line in sys.stdin:\n"
    "    root, ref = line.split()\n"
    "    pid = os.fork()\n"
    "    if pid == 0:\n"
    "        code = 1\n"
    "        try:\n"
    "            ocistore.pull(ref, store=Store(root), options=options)\n"
    "            code = 0\n"
    "        finally:\n"
    "            os._exit(code)\n"
    "    print(pid, flush=True)\n"
    "    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)\n"
)
KILL_POINTS = 200 if os.environ.get("OCISTORE_LONG") == "1" else 50
SEED = 20261127


def _layers_total(image: ocistore.testing.imagebuild.BuiltImage) -> int:
    return sum(layer.size for layer in image.layers)


@pytest.fixture(scope="module")
def crash_image(
    manager_registries: ManagerRegistries, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, ocistore.testing.imagebuild.BuiltImage]:
    """A four-layer image of incompressible data (byte offsets map straight to blobs)."""
    rng = random.Random(SEED)
    image = build_image(
        [
            {f"layer{i}.bin": rng.randbytes(size)}
            for i, size in enumerate((300_000, 900_000, 50_000, 1_200_000))
        ],
        compression="gzip",
    )
    reference = f"{manager_registries.plain.host}/crash/{uuid.uuid4().hex[:8]}:v1"
    push_with_ocistore(image, reference, tmp_path_factory.mktemp("crash-seed"))
    return reference, image


def _persisted_layer_bytes(root: Path, image: ocistore.testing.imagebuild.BuiltImage) -> int:
    """Bytes of the image's layers that a resumed pull need not fetch again."""
    store = Store(root)
    kept = 0
    for layer in image.layers:
        if store.has_blob(layer.digest):
            kept += layer.size
        else:
            partial = store._blobs.partial_path(layer.digest)
            if partial.exists():
                kept += partial.stat().st_size
    return kept


class PullForks:
    """The interpreter that forks a pulling child on demand (stopped by its pid)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", PULL_FORKS],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def start(self, root: Path, reference: str) -> int:
        """Forks a child pulling ``reference`` into ``root``; returns its pid."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{root} {reference}\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def exit_code(self) -> int:
        """Waits for the child's end: 0, or minus the signal that ended it."""
        assert self.process.stdout is not None
        return int(self.process.stdout.readline())

    def close(self) -> None:
        self.process.kill()  # by the pid we started
        self.process.communicate(timeout=30)


@pytest.fixture
def pull_forks() -> Iterator[PullForks]:
    forks = PullForks()
    try:
        yield forks
    finally:
        forks.close()


def _kill_at(forks: PullForks, reference: str, root: Path, upstream: str, mark: int) -> bool:
    """Runs a pull through a counting relay and SIGKILLs it once ``mark`` bytes went by.

    Returns whether the kill happened before the pull finished by itself.
    """
    child: list[int] = []
    reached = threading.Event()
    fired = threading.Lock()
    killed: list[bool] = []

    def kill_once() -> None:
        with fired:
            if child and reached.is_set() and not killed:
                killed.append(True)
                os.kill(child[0], signal.SIGKILL)  # the pid of the child we forked

    def on_bytes(total: int) -> None:
        if total >= mark:
            reached.set()
            kill_once()

    host, port = upstream.rsplit(":", 1)
    relay = Relay((host, int(port)), on_bytes=on_bytes)
    try:
        child.append(forks.start(root, reference.replace(upstream, relay.host)))
        kill_once()  # the mark may have gone by before the pid was known
        code = forks.exit_code()
    finally:
        relay.close()
    return bool(killed) and code == -signal.SIGKILL


def test_sigkill_at_seeded_points_then_fsck_is_clean_and_the_pull_completes(
    manager_registries: ManagerRegistries,
    crash_image: tuple[str, ocistore.testing.imagebuild.BuiltImage],
    pull_forks: PullForks,
    tmp_path: Path,
) -> None:
    reference, image = crash_image
    upstream = manager_registries.plain.host
    total = _layers_total(image)
    rng = random.Random(SEED)
    # Response bytes include headers, manifests and the config; aim across the whole pull.
    marks = sorted(rng.randrange(200, total + 4000) for _ in range(KILL_POINTS))
    killed = 0
    resumed_partials = 0
    repaired_kinds: set[ProblemKind] = set()
    for number, mark in enumerate(marks):
        root = tmp_path / f"store-{number}"
        Store(root)  # exists before the child starts, as a node's store would
        if not _kill_at(pull_forks, reference, root, upstream, mark):
            continue  # the pull finished before the mark: nothing to prove here
        killed += 1
        store = Store(root)
        # Consistent as the kill left it: every visible blob is complete and matches its name
        # (fsck re-hashes all of them); a partial download is resumable state, not damage.
        report = store.fsck()
        if not report.ok:
            # A kill between a blob's rename and its index row, or with a lease open, leaves
            # something fsck can repair; nothing else may be wrong.
            kinds = {problem.kind for problem in report.problems}
            assert kinds <= {ProblemKind.UNINDEXED_BLOB, ProblemKind.STALE_LEASE}, report
            repaired_kinds.update(kinds)
            assert store.fsck(repair=True).ok
            assert store.fsck().ok
        persisted = _persisted_layer_bytes(root, image)
        resumed_partials += any(
            store._blobs.partial_path(layer.digest).exists() for layer in image.layers
        )
        pulled = ocistore.pull(reference, store=store, options=RegistryOptions(plain_http=True))
        assert pulled.digest == image.digest
        # Only what was missing is fetched: committed layers and partial bytes are kept.
        assert pulled.bytes_downloaded == total - persisted, f"kill point {mark}"
        assert store.fsck().ok
    assert killed >= KILL_POINTS * 0.8, f"only {killed} of {KILL_POINTS} kills landed mid-pull"
    assert resumed_partials > 0, "no kill ever left a partial blob to resume"
    print(
        f"kill points: {killed}; resumed partials: {resumed_partials}; repaired: {repaired_kinds}"
    )


def test_eight_processes_pulling_different_images_that_share_layers(
    manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    registry = manager_registries.plain
    rng = random.Random(SEED + 1)
    base = {"base.bin": rng.randbytes(400_000)}
    middle = {"runtime.bin": rng.randbytes(200_000)}
    seed_store = Store(tmp_path / "seed")
    references = []
    images = []
    for number in range(8):
        image = build_image([base, middle, {"app": f"app {number}".encode() * 1000}])
        reference = f"{registry.host}/shared/{uuid.uuid4().hex[:8]}:v{number}"
        image.write_to_store(seed_store, reference)
        ocistore.push(reference, store=seed_store, options=RegistryOptions(plain_http=True))
        references.append(reference)
        images.append(image)
    shared = {images[0].layers[0].digest, images[0].layers[1].digest}
    before = len(registry_requests(registry))

    root = tmp_path / "store"
    Store(root)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", PULL, str(root), reference],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for reference in references
    ]
    for child in children:
        _, err = child.communicate(timeout=180)
        assert child.returncode == 0, err.decode()

    gets = Counter(
        path.rsplit("/", 1)[-1]
        for method, path in registry_requests(registry)[before:]
        if method == "GET" and "/blobs/" in path
    )
    for digest in shared:
        assert gets[digest] == 1, f"shared layer {digest} fetched {gets[digest]} times"
    assert all(count == 1 for count in gets.values()), gets
    store = Store(root)
    assert sorted(r.reference for r in store.images()) == sorted(references)
    assert store.fsck().ok
    for image, reference in zip(images, references, strict=True):
        assert store.image(reference).digest == image.digest
