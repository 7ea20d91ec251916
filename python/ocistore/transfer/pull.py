"""``ocistore.pull``: resolve, fetch by digest, verify, store and unpack in one pass."""

from __future__ import annotations

import contextlib
import enum
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ocistore._valueclass import valueclass
from ocistore.errors import (
    DigestMismatchError,
    ManifestError,
    OciStoreError,
    PlatformNotFoundError,
    store_writes,
)
from ocistore.layer import LayerWriter, UnpackLimits
from ocistore.mediatypes import MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE
from ocistore.model import (
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    parse_image_config,
    parse_manifest_document,
)
from ocistore.platform import Platform, only
from ocistore.reference import Reference
from ocistore.registry.options import RegistryOptions
from ocistore.registry.session import RegistrySession, session_for

if TYPE_CHECKING:
    from concurrent.futures import Future

    from ocistore.store import ImageRecord, Ingest, Store

DEFAULT_CONCURRENT_DOWNLOADS = 3
_COPY_SIZE = 1024 * 1024


@valueclass
class PullEvent:
    """A progress report: ``kind`` is one of resolved, manifest, layer-skipped, layer-started,
    layer-progress, layer-downloaded, layer-applied, done."""

    kind: str
    reference: str
    digest: str | None = None
    index: int | None = None
    size: int | None = None
    completed: int = 0


ProgressCallback = Callable[[PullEvent], None]


@valueclass
class PulledImage:
    """What a pull produced."""

    reference: str
    digest: str
    index_digest: str | None
    platform: str | None
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    bytes_downloaded: int  # layer bytes received over the network
    layers_downloaded: int
    layers_skipped: int
    credential_hash: str | None
    host: str | None
    record: ImageRecord
    rootfs: Path | None = None
    metadata_bytes: int = 0  # manifest, index and config bytes received


def image_reference(ref: Reference | str) -> Reference:
    """What pull, push and copy act on: a parsed reference, ``:latest`` if it names no version."""
    return (ref if isinstance(ref, Reference) else Reference.parse(ref)).with_default_tag()


def resolve(ref: Reference | str, *, options: RegistryOptions | None = None) -> str:
    """The digest a reference names now: one HEAD (GET only if HEAD gives no digest)."""
    reference = image_reference(ref)
    if reference.digest is not None:
        return reference.digest
    with session_for(reference, options) as session:
        head = session.resolve(reference.identifier)
    assert head.digest is not None
    return head.digest


def pull(
    ref: Reference | str,
    *,
    store: Store | None = None,
    platform: Platform | str | None = None,
    options: RegistryOptions | None = None,
    unpack: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    max_concurrent_downloads: int = DEFAULT_CONCURRENT_DOWNLOADS,
    unpack_limits: UnpackLimits | None = None,
) -> PulledImage:
    """Pull an image into the store (and its root filesystem into ``unpack`` if given).

    The tag is resolved with one HEAD; everything else is fetched by digest, verified, and
    skipped when the store already has it. Layers download concurrently
    (``max_concurrent_downloads``, the biggest first unless unpacking) and, when unpacking, the
    next layer due is streamed through the Rust layer writer as it arrives while later layers
    keep downloading. An interrupted
    pull resumes its partial blobs with HTTP ``Range``. If unpacking fails, discard ``unpack``.
    """
    from ocistore.store import Store
    from ocistore.store.unpack import building_tree

    reference = image_reference(ref)
    store = store if store is not None else Store()
    emit = progress or (lambda event: None)
    name = str(reference)
    # The lease keeps a concurrent GC from deleting what this pull found or fetched before
    # record_image names it. Any write failing on a full or failing disk (a lease or lock
    # file, the unpack directory) is typed, naming the store when the call named no path.
    with (
        store_writes(store.root),
        store.lease(),
        session_for(reference, options) as session,
    ):
        if reference.digest is not None:
            top_digest = reference.digest
        else:
            head = session.resolve(reference.identifier)
            assert head.digest is not None
            top_digest = head.digest
        emit(PullEvent("resolved", name, top_digest))
        fetched_bytes: list[int] = []  # manifests and config
        document = _manifest(store, session, top_digest, fetched_bytes)
        emit(PullEvent("manifest", name, top_digest))
        index_digest: str | None = None
        platform_name: str | None = None
        if isinstance(document, Index):
            index_digest = top_digest
            chosen = document.select(platform)
            platform_name = str(chosen.platform) if chosen.platform is not None else None
            manifest_digest = chosen.digest
            child = _manifest(store, session, manifest_digest, fetched_bytes)
            if not isinstance(child, Manifest):
                raise ManifestError(f"index {top_digest} points to another index for a platform")
            manifest = child
            emit(PullEvent("manifest", name, manifest_digest))
        else:
            manifest, manifest_digest = document, top_digest
        config_descriptor = manifest.config
        configs: list[ImageConfig] = []

        def fetch_config() -> None:
            lone = index_digest is None
            config = _verified_config(store, session, manifest, fetched_bytes, platform, name, lone)
            configs.append(config)

        rootfs = Path(unpack) if unpack is not None else None
        # The config comes first when the layer writers need its diff_ids, or when it is what
        # says whether a lone manifest suits the platform (no layer traffic otherwise).
        config_first = rootfs is not None or index_digest is None
        if config_first:
            fetch_config()
        # The tree is built beside ``unpack`` and renamed into place once whole.
        with building_tree(rootfs) if rootfs is not None else contextlib.nullcontext() as building:
            pipeline = _LayerPipeline(
                store=store,
                session=session,
                layers=manifest.layers,
                diff_ids=configs[0].diff_ids if configs else (),
                rootfs=building,
                limits=unpack_limits,
                workers=max(1, max_concurrent_downloads),
                emit=emit,
                name=name,
            )
            # Else it is fetched and checked while the layers download (containerd fetches a
            # manifest's children together too), still before the image is recorded; its
            # failure cancels the downloads.
            pipeline.run(while_downloading=None if config_first else fetch_config)
        config = configs[0]
        if platform_name is None:
            platform_name = "/".join(
                p for p in (config.os, config.architecture, config.variant) if p
            )
        credential = session.credential
        record = store.record_image(
            reference,
            manifest_digest=manifest_digest,
            index_digest=index_digest,
            platform=platform_name,
            credential_hash=credential.hash if credential is not None else None,
            source="pull",
        )
        emit(PullEvent("done", name, manifest_digest, completed=pipeline.bytes_downloaded))
        return PulledImage(
            reference=name,
            digest=manifest_digest,
            index_digest=index_digest,
            platform=platform_name,
            media_type=manifest.media_type,
            config=config_descriptor,
            layers=manifest.layers,
            bytes_downloaded=pipeline.bytes_downloaded,
            metadata_bytes=sum(fetched_bytes),
            layers_downloaded=pipeline.downloaded,
            layers_skipped=pipeline.skipped,
            credential_hash=credential.hash if credential is not None else None,
            host=session.last_host.url if session.last_host is not None else None,
            record=record,
            rootfs=rootfs,
        )


def _verified_config(
    store: Store,
    session: RegistrySession,
    manifest: Manifest,
    fetched_bytes: list[int],
    platform: Platform | str | None,
    name: str,
    lone: bool,
) -> ImageConfig:
    """The image's config, fetched unless stored, checked against the manifest (and, for a
    ``lone`` manifest that no index chose by platform, against the platform asked for)."""
    descriptor = manifest.config
    data: bytes | None = None  # fetched and verified here, or read from the store
    if not store.has_blob(descriptor.digest):
        if descriptor.size > MAX_CONFIG_SIZE:
            raise ManifestError(f"config {descriptor.digest} is too large")
        # Under the digest's lock: a process pulling the same image meanwhile waits and
        # reuses it instead of downloading it too.
        with store.ingest(descriptor.digest, descriptor.size, media_type=descriptor.media_type) as (
            ingest
        ):
            if not ingest.done:
                data = session.read_blob(descriptor.digest, MAX_CONFIG_SIZE)
                fetched_bytes.append(len(data))
                ingest.truncate()
                ingest.write(data)
                ingest.commit()
    if data is None:
        data = store.read_blob(descriptor.digest, MAX_CONFIG_SIZE)
    config = parse_image_config(data)
    manifest.check_config(config)
    if lone:
        # A lone manifest must still suit the platform, as containerd checks its config.
        built_for = Platform(config.os, config.architecture, config.variant, config.os_version)
        matcher = only(platform if platform is not None else Platform.host())
        if not matcher.matches(built_for):
            raise PlatformNotFoundError(
                f"{name} is a single-platform image for {built_for}, which does not run on "
                f"{matcher.wanted}"
            )
    return config


def _put(store: Store, data: bytes, digest: str, media_type: str | None) -> None:
    stored = store.put_blob(data, media_type=media_type)
    if stored != digest:
        raise DigestMismatchError(
            f"content stored as {stored}, expected {digest}", expected=digest, actual=stored
        )


def _manifest(
    store: Store, session: RegistrySession, digest: str, fetched_bytes: list[int]
) -> Manifest | Index:
    if store.has_blob(digest):
        data = store.read_blob(digest, MAX_MANIFEST_SIZE)
        return parse_manifest_document(data)
    fetched = session.get_manifest(digest)
    fetched_bytes.append(len(fetched.data))
    document = parse_manifest_document(fetched.data, fetched.media_type)
    _put(store, fetched.data, digest, document.media_type)
    return document


class _State(enum.Enum):
    PENDING = "pending"
    STREAMING = "streaming"  # downloading and applying in the same pass
    DOWNLOADED = "downloaded"  # in the store, still to be applied
    APPLIED = "applied"
    FAILED = "failed"


class _Cancelled(OciStoreError):
    """Another layer failed; this one stops."""


def _first_failure(futures: Iterable[Future[None]]) -> BaseException | None:
    """The error of a download that failed on its own (not cancelled): what stopped the rest."""
    for future in futures:
        if future.done() and not future.cancelled():
            error = future.exception()
            if error is not None and not isinstance(error, _Cancelled):
                return error
    return None


class _TeeSink:
    """Writes downloaded bytes to the ingest and, when streaming, the layer writer."""

    def __init__(
        self,
        ingest: Ingest,
        writer: LayerWriter | None,
        cancelled: threading.Event,
        on_bytes: Callable[[int], None],
    ) -> None:
        self.ingest = ingest
        self.writer = writer
        self.cancelled = cancelled
        self.on_bytes = on_bytes

    @property
    def offset(self) -> int:
        return int(self.ingest.offset)

    def write(self, data: bytes | memoryview) -> None:
        if self.cancelled.is_set():
            raise _Cancelled("pull cancelled")
        self.ingest.write(data)
        if self.writer is not None:
            self.writer.write(data)

    def truncate(self) -> None:
        if self.writer is not None:
            # The writer has consumed a prefix we are about to discard: it cannot be rewound.
            raise ManifestError("blob restarted from zero while being unpacked")
        self.ingest.truncate()


class _LayerPipeline:
    """Concurrent layer downloads with in-order application to the root filesystem."""

    def __init__(
        self,
        *,
        store: Store,
        session: RegistrySession,
        layers: tuple[Descriptor, ...],
        diff_ids: tuple[str, ...],
        rootfs: Path | None,
        limits: UnpackLimits | None,
        workers: int,
        emit: ProgressCallback,
        name: str,
    ) -> None:
        self.store = store
        self.session = session
        self.layers = layers
        self.diff_ids = diff_ids
        self.rootfs = rootfs
        self.limits = limits
        self.workers = workers
        self.emit = emit
        self.name = name
        self.states = [_State.PENDING] * len(layers)
        self.next_to_apply = 0
        self.cond = threading.Condition()
        self.cancelled = threading.Event()
        self.bytes_downloaded = 0
        self.downloaded = 0
        self.skipped = 0

    def run(self, while_downloading: Callable[[], None] | None = None) -> None:
        """Download every missing layer; apply all of them in order when unpacking.

        ``while_downloading`` runs in this thread once the downloads have started; if it
        raises, they are cancelled."""
        if self.rootfs is None and all(self.store.has_blob(layer.digest) for layer in self.layers):
            # A re-pull of a present image: nothing to download, so no threads to start.
            if while_downloading is not None:
                while_downloading()
            for i, layer in enumerate(self.layers):
                self.skipped += 1
                self.states[i] = _State.DOWNLOADED
                self.emit(PullEvent("layer-skipped", self.name, layer.digest, i, layer.size))
            return
        from concurrent.futures import ThreadPoolExecutor

        executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="ocistore-pull")
        futures: dict[int, Future[None]] = {}
        try:
            for i in self.download_order():
                futures[i] = executor.submit(self._fetch, i)
            if while_downloading is not None:
                while_downloading()
            if self.rootfs is not None:
                self._apply_all(futures)
            for future in futures.values():
                future.result()
        except BaseException as error:
            self.cancelled.set()
            with self.cond:
                self.cond.notify_all()
            executor.shutdown(wait=True, cancel_futures=True)
            if isinstance(error, _Cancelled):
                raise _first_failure(futures.values()) or error from None
            raise
        finally:
            executor.shutdown(wait=True, cancel_futures=True)

    def download_order(self) -> list[int]:
        """The layers in the order their downloads start: as applied when unpacking (each is
        streamed through its writer as it arrives), else the biggest first, so the last to
        finish is a small one and the streams end together."""
        indices = range(len(self.layers))
        if self.rootfs is not None:
            return list(indices)
        return sorted(indices, key=lambda i: -self.layers[i].size)

    def _apply_all(self, futures: dict[int, Future[None]]) -> None:
        from ocistore.store.unpack import LayerSequence

        assert self.rootfs is not None
        done = (_State.DOWNLOADED, _State.APPLIED, _State.FAILED)
        with LayerSequence(
            self.store, self.rootfs, self.layers, self.diff_ids, self.limits, ready=self._committed
        ) as sequence:
            for i, layer in enumerate(self.layers):
                while True:
                    with self.cond:
                        state = self.states[i]
                        if state in done:
                            break
                        self.cond.wait(timeout=1.0)
                    # While layer i downloads (or streams), the next one, if already
                    # committed, starts decompressing.
                    sequence.prefetch(i + 1)
                if state is _State.FAILED:
                    futures[i].result()  # raises the layer's error
                    raise OciStoreError(f"layer {layer.digest} failed")
                if state is _State.APPLIED:
                    continue  # streamed through the writer while it downloaded
                sequence.apply(i)
                with self.cond:
                    self.states[i] = _State.APPLIED
                    self.next_to_apply = i + 1
                    self.cond.notify_all()
                self.emit(PullEvent("layer-applied", self.name, layer.digest, i, layer.size))

    def _committed(self, i: int) -> bool:
        with self.cond:
            return self.states[i] is _State.DOWNLOADED

    def _fetch(self, i: int) -> None:
        try:
            self._fetch_layer(i)
        except BaseException:
            # The other downloads stop at once, and one not started yet never opens its ingest.
            self.cancelled.set()
            with self.cond:
                self.states[i] = _State.FAILED
                self.cond.notify_all()
            raise

    def _fetch_layer(self, i: int) -> None:
        layer = self.layers[i]
        if self.cancelled.is_set():
            raise _Cancelled("pull cancelled")
        with self.store.ingest(layer.digest, layer.size, media_type=layer.media_type) as ingest:
            if ingest.done:
                with self.cond:
                    self.skipped += 1
                    self.states[i] = _State.DOWNLOADED
                    self.cond.notify_all()
                self.emit(PullEvent("layer-skipped", self.name, layer.digest, i, layer.size))
                return
            writer: LayerWriter | None = None
            if self.rootfs is not None:
                with self.cond:
                    if self.next_to_apply == i:
                        self.states[i] = _State.STREAMING
                        writer = LayerWriter(
                            self.rootfs,
                            layer.media_type,
                            diff_id=self.diff_ids[i],
                            limits=self.limits,
                        )
            try:
                if writer is not None and ingest.offset:
                    self._replay_partial(ingest, writer)
                self.emit(
                    PullEvent(
                        "layer-started", self.name, layer.digest, i, layer.size, ingest.offset
                    )
                )
                done = ingest.offset

                def on_bytes(n: int) -> None:
                    nonlocal done
                    done += n
                    self.emit(
                        PullEvent("layer-progress", self.name, layer.digest, i, layer.size, done)
                    )

                sink = _TeeSink(ingest, writer, self.cancelled, on_bytes)
                received = self.session.download_blob(
                    layer.digest, layer.size, sink, progress=on_bytes
                )
                ingest.commit()
                if writer is not None:
                    writer.close()
                    writer = None
            except BaseException:
                if writer is not None:
                    writer.abort()
                raise
        with self.cond:
            self.bytes_downloaded += received
            self.downloaded += 1
            if self.states[i] is _State.STREAMING:
                self.states[i] = _State.APPLIED
                self.next_to_apply = i + 1
                applied = True
            else:
                self.states[i] = _State.DOWNLOADED
                applied = False
            self.cond.notify_all()
        self.emit(PullEvent("layer-downloaded", self.name, layer.digest, i, layer.size, received))
        if applied:
            self.emit(PullEvent("layer-applied", self.name, layer.digest, i, layer.size))

    @staticmethod
    def _replay_partial(ingest: Ingest, writer: LayerWriter) -> None:
        # A previous run left part of this blob: the writer must see those bytes first.
        remaining = int(ingest.offset)
        with open(ingest.path, "rb") as partial:
            while remaining > 0:
                chunk = partial.read(min(_COPY_SIZE, remaining))
                if not chunk:
                    raise ManifestError(f"partial download {ingest.path} is shorter than recorded")
                writer.write(chunk)
                remaining -= len(chunk)
