"""Load (issue 17): 32 processes pull 16 different images that share base layers into one
store while another process runs image GC and fsck in a loop.

Every pull succeeds; each blob is downloaded once (the registry's access log); nothing an
image references is ever collected; fsck ends clean. CI uses small layers (a 2-core machine);
``OCISTORE_LONG=1`` uses layers ten times larger.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

from node_registries import ManagerRegistries
from regfixtures.registry import registry_requests

import ocistore
from ocistore.registry.options import RegistryOptions
from ocistore.store import Store
from ocistore.testing.imagebuild import build_image

SEED = 20261129
PLAIN = RegistryOptions(plain_http=True)
PROCESSES = 32
IMAGES = 16
SCALE = 10 if os.environ.get("OCISTORE_LONG") == "1" else 1

PULL = (
    "import sys, ocistore\n"
    "from ocistore.store import Store\n"
    "options = ocistore.RegistryOptions(plain_http=True)\n"
    "ocistore.pull(sys.argv[2], store=Store(sys.argv[1]), options=options)\n"
)
# GC and fsck over and over until the stop file appears; prints how many rounds ran and
# fails on any fsck problem that is damage, not a pull's in-flight state.
MAINTAIN = """
import sys, pathlib
from ocistore.store import ProblemKind as K, Store
damage = {K.CORRUPT_BLOB, K.MISSING_BLOB, K.SIZE_MISMATCH, K.DANGLING_REFERENCE, K.WRITABLE_BLOB}
store, stop, rounds = Store(sys.argv[1]), pathlib.Path(sys.argv[2]), 0
while not stop.exists():
    store.gc()
    report = store.fsck()
    bad = [p for p in report.problems if p.kind in damage]
    if bad:
        print("fsck problems:", bad, flush=True)
        sys.exit(1)
    rounds += 1
print(rounds)
"""


def test_32_processes_16_images_shared_layers_with_gc_and_fsck_running(
    manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    registry = manager_registries.plain
    rng = random.Random(SEED)
    base = {"base/lib.bin": rng.randbytes(150_000 * SCALE)}
    runtimes = [{f"runtime{n}/rt.bin": rng.randbytes(60_000 * SCALE)} for n in range(4)]
    seed = Store(tmp_path / "seed")
    images = []
    for number in range(IMAGES):
        image = build_image(
            [base, runtimes[number % 4], {f"app/{number}": rng.randbytes(8_000 * SCALE)}]
        )
        reference = f"{registry.host}/load/{uuid.uuid4().hex[:8]}:v{number}"
        image.write_to_store(seed, reference)
        ocistore.push(reference, store=seed, options=PLAIN)
        images.append((reference, image))
    before = len(registry_requests(registry))

    root = tmp_path / "store"
    Store(root)
    stop = tmp_path / "stop"
    maintainer = subprocess.Popen(
        [sys.executable, "-c", MAINTAIN, str(root), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pullers = [
        subprocess.Popen(
            [sys.executable, "-c", PULL, str(root), images[number % IMAGES][0]],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for number in range(PROCESSES)
    ]
    try:
        for child in pullers:
            _, err = child.communicate(timeout=400)
            assert child.returncode == 0, err
    finally:
        stop.touch()
        rounds, err = maintainer.communicate(timeout=300)
        for child in pullers:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert maintainer.returncode == 0, rounds + err
    assert int(rounds) >= 1, "GC and fsck never ran during the pulls"

    gets = Counter(
        path.rsplit("/", 1)[-1]
        for method, path in registry_requests(registry)[before:]
        if method == "GET" and "/blobs/" in path
    )
    blobs = {layer.digest for _, image in images for layer in image.layers}
    blobs |= {image.config_digest for _, image in images}
    assert set(gets) <= blobs
    assert {digest: count for digest, count in gets.items() if count != 1} == {}
    store = Store(root)
    assert sorted(r.reference for r in store.images()) == sorted(ref for ref, _ in images)
    for reference, image in images:
        assert store.image(reference).digest == image.digest
        for digest in [
            image.digest,
            image.config_digest,
            *(layer.digest for layer in image.layers),
        ]:
            assert store.has_blob(digest), f"{reference}: {digest} was collected"
    report = store.fsck()
    assert report.ok and report.problems == [], report.problems
    total = sum(store.blobs.size(d) for d in blobs)
    print(f"load: {PROCESSES} processes, {IMAGES} images, {len(blobs)} distinct blobs, "
          f"{total} bytes stored, {int(rounds)} GC+fsck rounds")  # fmt: skip
