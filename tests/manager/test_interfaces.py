"""The manager's seams: any ImageStore and any Puller will do (kubelet's decisions stay the same).

These are unit tests of the decision logic with an in-memory store and puller; the manager
against real registries is tests/manager/test_manager.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ocistore import ErrImageNeverPull, PullPolicy, Reference
from ocistore.manager import ImageManager
from ocistore.manager.interfaces import ImageStore, Pulled, Puller
from ocistore.registry.options import RegistryOptions
from ocistore.store.pullcredentials import PullCredential, PullRecord
from ocistore.store.records import ImageRecord
from ocistore.transfer.pull import PullEvent

DIGEST = "sha256:" + "ab" * 32
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class MemoryStore:
    """An ImageStore that is a dict: what a test (or another runtime) could give the manager."""

    root: Path
    images: dict[str, ImageRecord] = field(default_factory=dict)
    touched: list[str] = field(default_factory=list)

    def add(self, reference: str, digest: str = DIGEST) -> None:
        ref = Reference.parse(reference).with_default_tag()
        self.images[str(ref)] = ImageRecord(
            reference=str(ref),
            repository=ref.name,
            tag=ref.tag,
            digest=digest,
            index_digest=None,
            platform=None,
            media_type="application/vnd.oci.image.manifest.v1+json",
            size=123,
            created=EPOCH,
            last_used=EPOCH,
            pinned=False,
            source="test",
        )

    def find_image(self, ref: Reference | str) -> ImageRecord | None:
        return self.images.get(str(Reference.parse(str(ref)).with_default_tag()))

    def touch(self, ref: Reference | str) -> None:
        self.touched.append(str(ref))

    def unpack(self, ref: Reference | str, dest: str | os.PathLike[str] | None = None) -> Path:
        raise AssertionError("not asked to unpack")

    def record_pull(
        self, image_ref: str, image_name: str, credentials: list[PullCredential]
    ) -> None:
        raise AssertionError("no pull records without a verification policy")

    def pull_record(self, image_ref: str) -> PullRecord | None:
        return None

    def prune_pull_records(self, until: datetime) -> list[str]:
        return []


@dataclass(frozen=True)
class FakePulled:
    digest: str
    bytes_downloaded: int


def recording_puller(store: MemoryStore, calls: list[tuple[str, RegistryOptions]]) -> Puller:
    def pull(
        reference: str,
        *,
        options: RegistryOptions,
        platform: str | None,
        unpack: str | os.PathLike[str] | None,
        progress: Callable[[PullEvent], None] | None,
    ) -> Pulled:
        calls.append((reference, options))
        store.add(reference)
        return FakePulled(DIGEST, 42)

    return pull


def test_a_store_that_is_not_ocistores_is_an_image_store(tmp_path: Path) -> None:
    store: ImageStore = MemoryStore(tmp_path)
    assert store.find_image("app:1") is None


@pytest.mark.parametrize(
    ("policy", "present", "pulled"),
    [
        (PullPolicy.ALWAYS, True, True),
        (PullPolicy.ALWAYS, False, True),
        (PullPolicy.IF_NOT_PRESENT, True, False),
        (PullPolicy.IF_NOT_PRESENT, False, True),
        (PullPolicy.NEVER, True, False),
    ],
)
def test_the_manager_follows_should_pull_through_its_seams(
    tmp_path: Path, policy: PullPolicy, present: bool, pulled: bool
) -> None:
    store = MemoryStore(tmp_path)
    if present:
        store.add("registry.test/app:1")
    calls: list[tuple[str, RegistryOptions]] = []
    options = RegistryOptions(plain_http=True, timeout=5.0)
    manager = ImageManager(store, registry=options, puller=recording_puller(store, calls))
    result = manager.ensure_image("registry.test/app:1", pull_policy=policy)
    assert result.pulled is pulled and result.digest == DIGEST
    assert [reference for reference, _ in calls] == (["registry.test/app:1"] if pulled else [])
    if pulled:
        # The manager's RegistryOptions reach the puller, with the credential of the attempt.
        assert calls[0][1] == options.with_auth(None)
        assert result.bytes_downloaded == 42
    else:
        assert store.touched == ["registry.test/app:1"]


def test_never_and_absent_is_err_image_never_pull_without_a_pull(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path)
    calls: list[tuple[str, RegistryOptions]] = []
    manager = ImageManager(store, puller=recording_puller(store, calls))
    with pytest.raises(ErrImageNeverPull):
        manager.ensure_image("registry.test/app:1", pull_policy="Never")
    assert calls == []


def test_another_image_store_needs_a_puller(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="needs a puller"):
        ImageManager(MemoryStore(tmp_path))
