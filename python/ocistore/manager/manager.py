"""kubelet's ``EnsureImageExists`` for a Python program: pull policies, ImagePullBackOff,
serialized or parallel pulls, KEP-2535 credential verification, events."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ocistore._log import INFO, WARNING, get_logger
from ocistore._valueclass import valueclass
from ocistore.errors import (
    ErrImageInspect,
    ErrImageNeverPull,
    ErrImagePull,
    ImagePullBackOff,
    ImagePullError,
    InvalidImageName,
    OciStoreError,
    RegistryUnavailable,
    RegistryUnavailableError,
)
from ocistore.manager import events
from ocistore.manager.backoff import Backoff
from ocistore.manager.events import ImageEvent
from ocistore.manager.interfaces import ImageStore, Pulled, Puller
from ocistore.manager.throttle import (
    DEFAULT_REGISTRY_BURST,
    DEFAULT_REGISTRY_PULL_QPS,
    PullQPSExceeded,
    PullSlots,
    SingleFlight,
    TokenBucket,
)
from ocistore.platform import Platform
from ocistore.policy import PullPolicy, default_pull_policy, should_pull
from ocistore.reference import Reference
from ocistore.registry.options import RegistryOptions

if TYPE_CHECKING:
    from ocistore.credentials import Credential, Keyring
    from ocistore.manager.pods import ContainerImage, ContainerResult, PodImages
    from ocistore.manager.pullrecords import PullRecords, VerificationPolicy
    from ocistore.registry.auth import KeyringLike
    from ocistore.store.pullcredentials import PullCredential
    from ocistore.transfer.pull import PullEvent

logger = get_logger("ocistore.manager")

EventSink = Callable[[ImageEvent], None]


@valueclass
class ImageResult:
    """The outcome of ``ensure_image``: the image's ref (manifest digest) and what happened."""

    image: str
    reference: str
    digest: str
    pull_policy: PullPolicy
    pulled: bool
    credential_source: str | None
    events: tuple[ImageEvent, ...]
    size: int = 0
    bytes_downloaded: int = 0


@valueclass
class _PullOutcome:
    """What a pull gave ``ensure_image``: the digest, the credential that worked, the bytes."""

    digest: str
    credential: Credential | None
    bytes_downloaded: int


@valueclass
class _Context:
    """What one ``ensure_image`` call collects while it runs."""

    image: str
    pod: str | None
    container: str | None
    events: list[ImageEvent]


class ImageManager:
    """Ensures images exist in a store exactly as kubelet's image manager would.

    ``registry`` says how to reach registries (its ``auth`` is replaced by each credential the
    keyring and pull secrets offer); ``puller`` replaces ``ocistore.pull`` into ``store``.
    """

    def __init__(
        self,
        store: ImageStore,
        keyring: Keyring | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        serialize_image_pulls: bool = True,
        max_parallel_image_pulls: int | None = None,
        registry_pull_qps: float = DEFAULT_REGISTRY_PULL_QPS,
        registry_burst: int = DEFAULT_REGISTRY_BURST,
        always_pull_images: bool = False,
        image_pull_credentials_verification_policy: VerificationPolicy | str | None = None,
        preloaded_images_verification_allowlist: Sequence[str] = (),
        on_event: EventSink | None = None,
        platform: str | None = None,
        registry: RegistryOptions | None = None,
        puller: Puller | None = None,
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.clock = clock
        self.always_pull_images = always_pull_images
        self.platform = platform
        self.on_event = on_event
        self._backoff = Backoff(clock=clock)
        self._previous_errors: dict[str, str] = {}
        self._errors_lock = threading.Lock()
        self._slots = PullSlots(serialize_image_pulls, max_parallel_image_pulls)
        self._qps = TokenBucket(registry_pull_qps, registry_burst, clock)
        self._flight: SingleFlight[_PullOutcome] = SingleFlight()
        self._puller = puller if puller is not None else store_puller(store)
        self.registry = registry if registry is not None else RegistryOptions()
        self.records: PullRecords | None = None
        if image_pull_credentials_verification_policy is not None:
            from ocistore.manager.pullrecords import PullRecords  # KEP-2535 only when asked

            self.records = PullRecords(
                store,
                image_pull_credentials_verification_policy,
                preloaded_images_verification_allowlist,
            )

    # --- events -------------------------------------------------------------------------

    def _emit(self, ctx: _Context, type_: events.EventType, reason: str, message: str) -> None:
        event = ImageEvent(type_, reason, message, ctx.image, ctx.pod, ctx.container)
        ctx.events.append(event)
        level = WARNING if type_ == "Warning" else INFO
        logger.log(
            level,
            "%s: %s",
            reason,
            message,
            extra={"event_reason": reason, "event_type": type_, "image": ctx.image, "pod": ctx.pod},
        )
        if self.on_event is not None:
            self.on_event(event)

    # --- the entry point ----------------------------------------------------------------

    def ensure_image(
        self,
        image: str,
        *,
        pull_policy: PullPolicy | str | None = None,
        pull_secrets: Sequence[Mapping[str, Any]] = (),
        pod_uid: str | None = None,
        namespace: str | None = None,
        pod_name: str | None = None,
        container: str | None = None,
        platform: str | None = None,
        unpack: str | os.PathLike[str] | None = None,
        progress: Callable[[PullEvent], None] | None = None,
    ) -> ImageResult:
        """Makes ``image`` available as kubelet would, or raises an ``ImagePullError``.

        ``unpack`` also writes the image's root filesystem there (in the same pass as the
        download when a pull happens).
        """
        policy = self._effective_policy(image, pull_policy)
        pod = f"{namespace or 'default'}/{pod_name}" if pod_name else None
        ctx = _Context(image=image, pod=pod, container=container, events=[])

        try:
            reference = Reference.parse(image).with_default_tag()
        except OciStoreError as error:
            message = f"Failed to apply default image tag {events.go_quote(image)}: {error}"
            self._emit(ctx, "Warning", events.INSPECT_FAILED, message)
            raise InvalidImageName(message, image=image) from None

        image_ref = ""
        if policy is not PullPolicy.ALWAYS:
            try:
                record = self.store.find_image(reference)
            except OciStoreError as error:
                message = events.inspect_failed(image, str(error))
                self._emit(ctx, "Warning", events.INSPECT_FAILED, message)
                raise ErrImageInspect(message, image=image) from error
            if record is not None and not _same_platform(
                record.platform, platform or self.platform
            ):
                record = None  # present, but for another platform than the one asked for
            image_ref = record.digest if record is not None else ""

        credentials_cache: list[list[Credential]] = []

        def credentials() -> list[Credential]:
            # Looked up lazily and at most once, as kubelet does.
            if not credentials_cache:
                credentials_cache.append(self._lookup_credentials(reference, pull_secrets))
            return credentials_cache[0]

        verified_access = False
        if image_ref and self.records is not None:
            pod_credentials = [
                tracked for cred in credentials() if (tracked := _tracked(cred)) is not None
            ]
            if self.records.must_attempt_pull(image, image_ref, pod_credentials):
                image_ref = ""  # present, but this pod must prove access first (KEP-2535)
            else:
                verified_access = True
        if not should_pull(policy, present=bool(image_ref)):
            if not image_ref:
                # Also when the image is there but unverified: nothing is revealed.
                message = events.never_pull(image)
                self._emit(ctx, "Warning", events.ERR_IMAGE_NEVER_PULL, message)
                raise ErrImageNeverPull(message, image=image)
            self._emit(
                ctx,
                "Normal",
                events.PULLED,
                events.already_present(image, verified_access=verified_access),
            )
            return self._present_result(ctx, reference, image_ref, policy, unpack)

        request = _PullRequest(platform or self.platform, unpack, progress)
        return self._pull(ctx, reference, policy, credentials, pod_uid, request)

    def _effective_policy(self, image: str, pull_policy: PullPolicy | str | None) -> PullPolicy:
        if self.always_pull_images:
            return PullPolicy.ALWAYS
        if pull_policy is None or pull_policy == "":
            return default_pull_policy(image)
        if isinstance(pull_policy, PullPolicy):
            return pull_policy
        return PullPolicy.parse(pull_policy)

    def _present_result(
        self,
        ctx: _Context,
        reference: Reference,
        digest: str,
        policy: PullPolicy,
        unpack: str | os.PathLike[str] | None,
    ) -> ImageResult:
        if unpack is not None:
            self.store.unpack(reference, unpack)
        record = self.store.find_image(reference)
        size = int(record.size) if record is not None else 0
        with contextlib.suppress(OciStoreError):
            self.store.touch(reference)
        return ImageResult(
            image=ctx.image,
            reference=str(reference),
            digest=digest,
            pull_policy=policy,
            pulled=False,
            credential_source=None,
            events=tuple(ctx.events),
            size=size,
        )

    # --- pulling ------------------------------------------------------------------------

    def _pull(
        self,
        ctx: _Context,
        reference: Reference,
        policy: PullPolicy,
        credentials: Callable[[], list[Credential]],
        pod_uid: str | None,
        request: _PullRequest,
    ) -> ImageResult:
        image = ctx.image
        key = f"{pod_uid or ''}_{image}"
        now = self.clock()
        if self._backoff.is_in_backoff_since_update(key, now):
            with self._errors_lock:
                previous = self._previous_errors.get(key)
            message = events.back_off(image, previous)
            self._emit(ctx, "Normal", events.BACK_OFF, message)
            raise ImagePullBackOff(message, image=image)

        with self._errors_lock:
            self._previous_errors.pop(key, None)
        self._emit(ctx, "Normal", events.PULLING, events.pulling(image))
        if self.records is not None:
            self.records.record_pull_intent(image)
        started = self.clock()
        try:
            if not self._qps.try_accept():
                raise PullQPSExceeded()
            with self._slots:
                waited_until = self.clock()
                outcome, _shared = self._flight.do(
                    f"{reference}|{request.platform or ''}",
                    lambda: self._pull_with_credentials(reference, credentials(), request),
                )
        except (OciStoreError, PullQPSExceeded, OSError) as error:
            reason_cls, message = _classify_pull_error(image, error)
            self._emit(ctx, "Warning", events.FAILED, events.failed(image, message))
            self._backoff.next(key, self.clock())
            with self._errors_lock:
                self._previous_errors[key] = f"{reason_cls.reason}: {message}"
            if self.records is not None:
                self.records.record_pull_failed(image)
            raise reason_cls(message, image=image) from error

        finished = self.clock()
        record = self.store.find_image(reference)
        size = int(record.size) if record is not None else 0
        self._emit(
            ctx,
            "Normal",
            events.PULLED,
            events.pulled(image, finished - waited_until, finished - started, size),
        )
        self._backoff.gc(finished)
        if self.records is not None:
            self.records.record_image_pulled(image, outcome.digest, _tracked(outcome.credential))
        return ImageResult(
            image=image,
            reference=str(reference),
            digest=outcome.digest,
            pull_policy=policy,
            pulled=True,
            credential_source=_source_name(outcome.credential),
            events=tuple(ctx.events),
            size=size,
            bytes_downloaded=outcome.bytes_downloaded,
        )

    def _pull_with_credentials(
        self,
        reference: Reference,
        credentials: list[Credential],
        request: _PullRequest,
    ) -> _PullOutcome:
        """kubelet's CRI pull: no credentials → one anonymous pull; else each in order."""

        def pull(auth: KeyringLike | None) -> Pulled:
            return self._puller(
                str(reference),
                options=self.registry.with_auth(auth),
                platform=request.platform,
                unpack=request.unpack,
                progress=request.progress,
            )

        if not credentials:
            pulled = pull(None)
            return _PullOutcome(pulled.digest, None, int(pulled.bytes_downloaded))
        errors: list[OciStoreError] = []
        for credential in credentials:
            try:
                pulled = pull(_Only(credential))
            except OciStoreError as error:
                errors.append(error)
                continue
            return _PullOutcome(pulled.digest, credential, int(pulled.bytes_downloaded))
        if len(errors) == 1:
            raise errors[0]
        # kubelet aggregates the errors of every credential it tried.
        aggregate = "[" + ", ".join(str(e) for e in errors) + "]"
        if all(isinstance(e, RegistryUnavailableError) for e in errors):
            raise RegistryUnavailableError(aggregate)
        raise OciStoreError(aggregate)

    # --- credentials --------------------------------------------------------------------

    def _lookup_credentials(
        self, reference: Reference, pull_secrets: Sequence[Mapping[str, Any]]
    ) -> list[Credential]:
        keyring = self.keyring
        if pull_secrets:
            from ocistore.credentials import Keyring  # only pods with pull secrets need it

            secrets_keyring = Keyring.from_secrets(list(pull_secrets))
            keyring = Keyring.merge(secrets_keyring, keyring) if keyring else secrets_keyring
        if keyring is None:
            return []
        return list(keyring.lookup(reference.name))

    # --- pods ---------------------------------------------------------------------------

    def ensure_pod(
        self,
        pod_manifest: str | bytes | Mapping[str, Any] | Sequence[Any],
        secrets: Iterable[Mapping[str, Any]] = (),
        service_accounts: Iterable[Mapping[str, Any]] = (),
    ) -> list[ContainerResult]:
        """Ensures every image of every Pod/workload in a manifest, one result per container."""
        from ocistore.manager.pods import load_documents, pod_images, resolve_pull_secrets

        secrets = list(secrets)
        service_accounts = list(service_accounts)
        results: list[ContainerResult] = []
        for document in load_documents(pod_manifest):
            if document.get("kind") in ("Secret", "ServiceAccount"):
                continue
            pod = pod_images(document)
            found, _missing = resolve_pull_secrets(pod, secrets, service_accounts)
            for container in pod.containers:
                results.append(self._ensure_container(pod, container, found))
        return results

    def _ensure_container(
        self, pod: PodImages, container: ContainerImage, found: list[Mapping[str, Any]]
    ) -> ContainerResult:
        from ocistore.manager.pods import ContainerResult

        def outcome(
            result: ImageResult | None = None,
            reason: str | None = None,
            message: str | None = None,
        ) -> ContainerResult:
            return ContainerResult(
                pod=pod.name,
                namespace=pod.namespace,
                container=container.name,
                image=container.image,
                pull_policy=container.pull_policy,
                result=result,
                reason=reason,
                message=message,
            )

        try:
            result = self.ensure_image(
                container.image,
                pull_policy=container.pull_policy,
                pull_secrets=found,
                pod_uid=pod.uid,
                namespace=pod.namespace,
                pod_name=pod.name,
                container=container.name,
            )
        except ImagePullError as error:
            return outcome(reason=error.reason, message=error.message)
        return outcome(result=result)


class _Only:
    """A keyring of exactly one credential, so the puller tries just that one."""

    def __init__(self, credential: Credential) -> None:
        self._credential = credential

    def lookup(self, image: str) -> list[Credential]:
        return [self._credential]


@valueclass
class _PullRequest:
    """What one ``ensure_image`` call asks the puller for, besides the image."""

    platform: str | None
    unpack: str | os.PathLike[str] | None
    progress: Callable[[PullEvent], None] | None


def _tracked(credential: Credential | None) -> PullCredential | None:
    """The pull-record form of a pod's credential; None for node-wide ones (no Source)."""
    if credential is None or credential.source.kind != "secret":
        return None
    from ocistore.store.pullcredentials import PullCredential

    source = credential.source
    return PullCredential.secret(
        namespace=source.namespace,
        name=source.name,
        uid=source.uid,
        credential_hash=credential.hash,
    )


def _same_platform(recorded: str | None, wanted: str | None) -> bool:
    """Whether a stored image serves the platform asked for (no request: any)."""
    if wanted is None or recorded is None:
        return True
    return str(Platform.parse(recorded)) == str(Platform.parse(wanted))


def store_puller(store: ImageStore) -> Puller:
    """The default Puller: ``ocistore.pull`` into ``store`` (an ``ocistore.store.Store``)."""
    from ocistore.store import Store

    if not isinstance(store, Store):
        raise TypeError("an ImageManager over another ImageStore needs a puller")

    def pull_into_store(
        reference: str,
        *,
        options: RegistryOptions,
        platform: str | None,
        unpack: str | os.PathLike[str] | None,
        progress: Callable[[PullEvent], None] | None,
    ) -> Pulled:
        from ocistore.transfer.pull import pull

        return pull(
            reference,
            store=store,
            options=options,
            platform=platform,
            unpack=unpack,
            progress=progress,
        )

    return pull_into_store


def _source_name(credential: Credential | None) -> str | None:
    return None if credential is None else str(credential.source)


def _classify_pull_error(image: str, error: BaseException) -> tuple[type[ImagePullError], str]:
    """kubelet's ``evalCRIPullErr``: registry-unavailable errors get their own reason."""
    if isinstance(error, (RegistryUnavailableError, ConnectionError)):
        return (
            RegistryUnavailable,
            f"image pull failed for {image} because the registry is unavailable: {error}",
        )
    return ErrImagePull, str(error)
