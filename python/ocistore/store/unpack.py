"""Unpacked images: apply an image's layers in order with the Rust layer engine.

Each layer's uncompressed stream is checked against the config's ``diff_ids`` while it is
applied (a manifest could otherwise pair verified compressed blobs with a lying config). Trees
are built in ``unpacked/.tmp-<chain>.<random>`` and renamed into ``unpacked/<chain>`` when
complete, keyed by the top layer's ChainID so images with the same layers share one tree.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ocistore import mediatypes
from ocistore.errors import BlobNotFoundError, LayerWriteError, ManifestError, StoreError
from ocistore.layer import PreparedLayer, UnpackLimits, UnpackStats
from ocistore.store.locks import FileLock
from ocistore.store.paths import TMP_PREFIX, remove_tree, unpack_dir_name, unpack_lock_path
from ocistore.store.records import ImageRecord

if TYPE_CHECKING:
    from ocistore.model import Descriptor
    from ocistore.store.store import Store

__all__ = ["LayerSequence", "building_tree", "unpack_image"]

#: Tar bytes of the next layer decompressed ahead, in memory, while the current one is applied.
AHEAD_BYTES = 16 << 20


class LayerSequence:
    """Applies an image's layers to one tree in order, each verified against its diff_id.

    While layer ``i`` is applied, layer ``i + 1`` (once ``ready``, i.e. committed) is already
    being decompressed and hashed on other threads, up to :data:`AHEAD_BYTES` ahead: one layer's
    file writes and the next one's inflating keep both cores busy. Use it as a context manager.
    """

    def __init__(
        self,
        store: Store,
        target: Path,
        layers: Sequence[Descriptor],
        diff_ids: Sequence[str],
        limits: UnpackLimits | None,
        ready: Callable[[int], bool] = lambda index: True,
    ) -> None:
        self.store = store
        self.target = target
        self.layers = layers
        self.diff_ids = diff_ids
        self.limits = limits
        self.ready = ready
        self._ahead: tuple[int, PreparedLayer] | None = None

    def __enter__(self) -> LayerSequence:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stops a layer decompressing ahead (nothing of it was written)."""
        if self._ahead is not None:
            _, prepared = self._ahead
            self._ahead = None
            prepared.close()

    def prefetch(self, index: int) -> None:
        """Starts decompressing layer ``index`` if it is ready and nothing else is ahead."""
        if self._ahead is None and index < len(self.layers) and self.ready(index):
            self._ahead = (index, self._prepare(index))

    def apply(self, index: int) -> UnpackStats:
        """Applies layer ``index`` (the previous ones must have been applied)."""
        if self._ahead is not None and self._ahead[0] == index:
            current = self._ahead[1]
            self._ahead = None
        else:
            self.close()
            current = self._prepare(index)
        self.prefetch(index + 1)
        return current.apply(self.target)

    def _prepare(self, index: int) -> PreparedLayer:
        layer = self.layers[index]
        path = self.store.blob_path(layer.digest)
        if not path.is_file():
            raise BlobNotFoundError(f"layer {layer.digest} is not in the store")
        return PreparedLayer(
            path,
            layer.media_type,
            diff_id=self.diff_ids[index],
            limits=self.limits,
            ahead_bytes=AHEAD_BYTES,
        )


def _apply_layers(
    store: Store, record: ImageRecord, target: Path, limits: UnpackLimits | None
) -> None:
    manifest = store.manifest(record.digest)
    if not mediatypes.is_config(manifest.config.media_type):
        raise ManifestError(
            f"{record.reference} is not a runnable image (config {manifest.config.media_type})"
        )
    config = store.config(record.digest)
    manifest.check_config(config)
    # The blobs were verified when committed (fsck re-checks); the diff_id check is new.
    with LayerSequence(store, target, manifest.layers, config.diff_ids, limits) as sequence:
        for index in range(len(manifest.layers)):
            try:
                sequence.apply(index)
            except BlobNotFoundError as exc:
                raise BlobNotFoundError(f"{record.reference}: {exc}") from None


def unpack_image(
    store: Store, record: ImageRecord, dest: Path | None, limits: UnpackLimits | None = None
) -> Path:
    """Implements :meth:`Store.unpack`."""
    if dest is not None:
        return _unpack_to(store, record, dest, limits)
    name = unpack_dir_name(record.chain_id or f"empty-{record.digest}")
    final = store.unpacked_dir / name
    with FileLock(unpack_lock_path(store, name)):
        if final.is_dir():
            return final
        tmp = store.unpacked_dir / f"{TMP_PREFIX}{name}.{os.urandom(6).hex()}"
        _build_then_rename(store, record, tmp, final, limits)
    return final


def _unpack_to(store: Store, record: ImageRecord, dest: Path, limits: UnpackLimits | None) -> Path:
    with building_tree(dest) as tmp:
        _apply_layers(store, record, tmp, limits)
    return dest


@contextlib.contextmanager
def building_tree(dest: Path) -> Iterator[Path]:
    """A fresh sibling of ``dest`` to build a tree in, renamed to ``dest`` when the block
    succeeds and removed when it fails: a tree at ``dest`` is always complete (a kill leaves
    only a hidden ``.<name>.*.tmp`` sibling). ``dest`` must not exist or be empty."""
    if dest.exists():
        if not dest.is_dir() or any(dest.iterdir()):
            raise StoreError(f"unpack destination {dest} exists and is not an empty directory")
        dest.rmdir()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{os.urandom(6).hex()}.tmp"
    with _built_then_renamed(tmp, dest):
        yield tmp


def _build_then_rename(
    store: Store, record: ImageRecord, tmp: Path, final: Path, limits: UnpackLimits | None
) -> None:
    with _built_then_renamed(tmp, final):
        _apply_layers(store, record, tmp, limits)


@contextlib.contextmanager
def _built_then_renamed(tmp: Path, final: Path) -> Iterator[None]:
    """Creates ``tmp`` for the block to fill, then renames it to ``final``: whole or absent."""
    tmp.mkdir()
    try:
        yield
        os.rename(tmp, final)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            remove_tree(tmp)
        if isinstance(exc, LayerWriteError) and exc.filename is None:
            # Name the tree (disk full, I/O error): the engine names only the entry.
            named = LayerWriteError(exc.errno, exc.strerror, os.fspath(final))
            named.entry = exc.entry
            raise named from exc
        raise
