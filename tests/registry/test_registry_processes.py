"""Whole processes: a pull killed mid-blob resumes; concurrent pulls download each blob once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from regfixtures.proxy import Fault, FaultProxy
from regfixtures.setups import FAST_RETRY, Registries, make_setup, unique_repository

from ocistore.registry.options import RegistryOptions
from ocistore.store import ProblemKind, Store
from ocistore.testing.imagebuild import build_image
from ocistore.transfer.pull import pull
from ocistore.transfer.push import push

PULL = (
    "import sys, ocistore\n"
    "options = ocistore.RegistryOptions(plain_http=True)\n"
    "ocistore.pull(sys.argv[2], store=ocistore.Store(sys.argv[1]), options=options)\n"
)


def seed_image(
    registries: Registries, tmp_path: Path, layers: list[dict[str, bytes]]
) -> tuple[str, list[str]]:
    setup = make_setup(registries, "plain")
    image = build_image(layers, compression="none")
    repository = unique_repository("proc")
    source = Store(tmp_path / "seed")
    image.write_to_store(source, f"{setup.host}/{repository}:v1")
    push(
        f"{setup.host}/{repository}:v1",
        store=source,
        options=RegistryOptions(plain_http=True, retry=FAST_RETRY),
    )
    return repository, [layer.digest for layer in image.layers]


def test_a_killed_pull_is_continued_from_its_partial_blob(
    registries: Registries, proxy: FaultProxy, tmp_path: Path
) -> None:
    repository, digests = seed_image(
        registries, tmp_path, [{"big.bin": os.urandom(1_500_000)}, {"small": b"s"}]
    )
    big = digests[0]
    # The blob arrives in part and then hangs, so the kill lands mid-blob whatever the load.
    proxy.add(Fault(path=f"/blobs/{big}", truncate_after=400_000, stall=120.0))
    store_root = tmp_path / "store"
    Store(store_root)
    name = f"{proxy.host}/{repository}:v1"
    child = subprocess.Popen([sys.executable, "-c", PULL, str(store_root), name])
    partial = store_root / "ingest" / f"{big.replace(':', '-')}.partial"
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size >= 100_000):
        assert child.poll() is None, "the pull ended before it could be killed"
        assert time.monotonic() < deadline, "the download never made progress"
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    kept = partial.stat().st_size
    assert kept >= 100_000
    proxy.reset()
    store = Store(store_root)
    pulled = pull(name, store=store, options=RegistryOptions(plain_http=True, retry=FAST_RETRY))
    assert pulled.digest
    resumed = proxy.requests("GET", f"/blobs/{big}")
    assert len(resumed) == 1
    offset = int(resumed[0].headers["range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < offset <= kept
    # The killed process left its lease file behind: harmless (its lock died with it) and
    # the only thing fsck may report; repair removes it.
    report = store.fsck()
    assert {problem.kind for problem in report.problems} <= {ProblemKind.STALE_LEASE}, report
    assert store.fsck(repair=True).ok and store.fsck().problems == []


def test_eight_processes_pulling_one_image_fetch_each_blob_once(
    registries: Registries, proxy: FaultProxy, tmp_path: Path
) -> None:
    repository, digests = seed_image(
        registries,
        tmp_path,
        [{"a": os.urandom(200_000)}, {"b": os.urandom(300_000)}, {"c": b"c" * 1000}],
    )
    store_root = tmp_path / "store"
    Store(store_root)
    name = f"{proxy.host}/{repository}:v1"
    children = [
        subprocess.Popen([sys.executable, "-c", PULL, str(store_root), name]) for _ in range(8)
    ]
    assert [child.wait(timeout=120) for child in children] == [0] * 8
    blob_gets = Counter(
        seen.path.rsplit("/", 1)[1].split("?")[0] for seen in proxy.requests("GET", "/blobs/")
    )
    for digest in digests:
        assert blob_gets[digest] == 1, blob_gets
    store = Store(store_root)
    assert store.image(name).digest
    assert store.fsck().ok
