"""A hypothesis state machine: random sequences of store operations keep every invariant.

Images are stored, re-tagged, removed, pinned and garbage-collected; loose blobs are ingested
partly and resumed. After every step the store's image list equals the model's, every named
image is complete on disk, GC never takes content a name or pin still needs, and fsck finds
nothing but the partial downloads the machine deliberately left behind.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ocistore.digest import digest_bytes
from ocistore.store import Store
from ocistore.testing.imagebuild import BuiltImage, build_image

TAGS = ["a", "b", "c", "d"]
_IMAGES: dict[int, BuiltImage] = {}


def image(seed: int) -> BuiltImage:
    """Small images whose layers overlap (layer contents come from a pool of four)."""
    if seed not in _IMAGES:
        pool = [{f"f{n}": bytes([n]) * (100 + n)} for n in range(4)]
        layers = [pool[seed % 4], pool[(seed // 4) % 4], {"own": str(seed).encode()}]
        _IMAGES[seed] = build_image(layers, compression="none")
    return _IMAGES[seed]


def loose(seed: int) -> bytes:
    return f"loose blob {seed} ".encode() * 50


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="ocistore-stateful-"))
        self.store = Store(self.dir / "store")
        self.named: dict[str, int] = {}  # tag -> image seed
        self.pinned_blobs: set[str] = set()
        self.partials: set[int] = set()  # loose blobs with a partial download left

    def teardown(self) -> None:
        self.store.close()
        for path in self.dir.rglob("*"):
            if path.is_file() and not path.is_symlink():
                path.chmod(0o644)
        shutil.rmtree(self.dir, ignore_errors=True)

    def ref(self, tag: str) -> str:
        return f"example.com/app:{tag}"

    @rule(tag=st.sampled_from(TAGS), seed=st.integers(0, 11))
    def store_image(self, tag: str, seed: int) -> None:
        record = image(seed).write_to_store(self.store, self.ref(tag))
        assert record.digest == image(seed).digest
        self.named[tag] = seed

    @rule(tag=st.sampled_from(TAGS))
    def remove(self, tag: str) -> None:
        if tag in self.named:
            self.store.remove(self.ref(tag))
            del self.named[tag]
        else:
            assert self.store.find_image(self.ref(tag)) is None

    @rule(seed=st.integers(0, 5), fraction=st.floats(0.1, 0.9))
    def partial_ingest(self, seed: int, fraction: float) -> None:
        data = loose(seed)
        digest = digest_bytes(data)
        with self.store.ingest(digest, len(data)) as ingest:
            if ingest.done:
                return
            cut = max(ingest.offset, int(len(data) * fraction))
            ingest.write(data[ingest.offset : cut])
        self.partials.add(seed)

    @precondition(lambda self: bool(self.partials))
    @rule(data=st.data())
    def resume_ingest(self, data: st.DataObject) -> None:
        seed = data.draw(st.sampled_from(sorted(self.partials)))
        blob = loose(seed)
        with self.store.ingest(digest_bytes(blob), len(blob)) as ingest:
            assert ingest.offset > 0
            ingest.write(blob[ingest.offset :])
            ingest.commit()
        self.partials.discard(seed)

    @rule(seed=st.integers(0, 5))
    def pin_loose(self, seed: int) -> None:
        digest = self.store.put_blob(loose(seed))
        self.store.pin_blob(digest)
        self.pinned_blobs.add(digest)
        self.partials.discard(seed)

    @precondition(lambda self: bool(self.pinned_blobs))
    @rule(data=st.data())
    def unpin(self, data: st.DataObject) -> None:
        digest = data.draw(st.sampled_from(sorted(self.pinned_blobs)))
        self.store.pin_blob(digest, False)
        self.pinned_blobs.discard(digest)

    @rule(dry_run=st.booleans())
    def gc(self, dry_run: bool) -> None:
        before = {p.name for p in (self.store.root / "blobs" / "sha256").iterdir()}
        report = self.store.gc(dry_run=dry_run)
        needed = set(self.pinned_blobs)
        for seed in self.named.values():
            needed |= set(image(seed).blobs())
        assert not needed & set(report.removed_blobs)
        after = {f"sha256:{p.name}" for p in (self.store.root / "blobs" / "sha256").iterdir()}
        if dry_run:
            assert {p.split(":")[1] for p in after} == before
        else:
            assert after == needed  # everything else was garbage

    @invariant()
    def images_match_the_model(self) -> None:
        records = {r.reference: r.digest for r in self.store.images()}
        assert records == {self.ref(t): image(s).digest for t, s in self.named.items()}
        for seed in self.named.values():
            assert all(self.store.has_blob(d) for d in image(seed).blobs())

    @invariant()
    def fsck_is_clean_and_lists_the_deliberate_partials(self) -> None:
        report = self.store.fsck()
        assert report.ok and report.problems == []
        assert len(report.resumable_ingests) == len(self.partials)


StoreMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestStoreMachine = StoreMachine.TestCase
