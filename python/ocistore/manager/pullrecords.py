"""KEP-2535 "ensure secret pulled images": whether a pod must prove access before it may use an
image already on the node.

Which credentials pulled an image is kept in the store's index (:meth:`Store.record_pull`,
by credential hash and secret coordinates, never a secret). Pull *intents* are small files
under ``<store>/image_manager/pulling`` (0700), as kubelet keeps them, so an intent left by a
crash still marks the image as pulled by us (fail safe).
"""

from __future__ import annotations

import enum
import hashlib
import os
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ocistore.errors import OciStoreError
from ocistore.store.pullcredentials import PullCredential, PullCredentialKind

if TYPE_CHECKING:
    from ocistore.manager.interfaces import ImageStore

#: kubelet's ``writeRecordWhileMatchingLimit``.
WRITE_RECORD_WHILE_MATCHING_LIMIT = 100


class VerificationPolicy(enum.StrEnum):
    """kubelet's ``imagePullCredentialsVerificationPolicy``."""

    NEVER_VERIFY = "NeverVerify"
    NEVER_VERIFY_PRELOADED_IMAGES = "NeverVerifyPreloadedImages"
    NEVER_VERIFY_ALLOWLISTED_IMAGES = "NeverVerifyAllowlistedImages"
    ALWAYS_VERIFY = "AlwaysVerify"

    @classmethod
    def parse(cls, value: str | VerificationPolicy) -> VerificationPolicy:
        """Parses kubelet's spelling; an unknown value is an error, as in kubelet."""
        try:
            return cls(value)
        except ValueError:
            raise ValueError(
                f"unknown image pull credential verification policy: {value}"
            ) from None


def sanitize_image_name(image: str) -> str:
    """The pod's image string with its tag and digest stripped (kubelet's mapping key)."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name = name[:colon]
    return name


def parse_allowlist(entries: Iterable[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    """Validates ``preloadedImagesVerificationAllowlist`` entries (exact names and ``host/…/*``).

    Returns the exact names and the wildcard prefixes (without the ``/*``).
    """
    from ocistore.reference import Reference

    exact: set[str] = set()
    prefixes: list[str] = []
    for entry in entries:
        if entry != entry.strip():
            raise ValueError(f"allowlist entry {entry!r} has leading or trailing spaces")
        if entry.endswith("/*"):
            prefix = entry[:-2]
            if not prefix or "*" in prefix:
                raise ValueError(
                    f"allowlist entry {entry!r}: a wildcard needs a registry host before '/*'"
                )
            prefixes.append(prefix)
            continue
        if "*" in entry:
            raise ValueError(f"allowlist entry {entry!r}: '*' is only allowed as a final '/*'")
        try:
            ref = Reference.parse(entry)
        except OciStoreError as error:
            raise ValueError(f"allowlist entry {entry!r} is not an image name: {error}") from None
        if ref.name != entry:
            raise ValueError(
                f"allowlist entry {entry!r} must be a fully qualified repository name "
                f"without tag or digest, e.g. {ref.name!r}"
            )
        exact.add(entry)
    return frozenset(exact), tuple(prefixes)


class PullRecords:
    """Pull intents and the store's pulled records, with kubelet's ``MustAttemptImagePull``."""

    def __init__(
        self,
        store: ImageStore,
        policy: VerificationPolicy | str = VerificationPolicy.NEVER_VERIFY_PRELOADED_IMAGES,
        allowlist: Sequence[str] = (),
    ) -> None:
        self.store = store
        self.policy = VerificationPolicy.parse(policy)
        self._allow_exact, self._allow_prefixes = parse_allowlist(allowlist)
        self._pulling = Path(store.root) / "image_manager" / "pulling"
        self._pulling.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._pulling.parent.chmod(0o700)
        self._lock = threading.Lock()
        self._intents: dict[str, int] = {}

    # --- intents ------------------------------------------------------------------------

    def _intent_path(self, image: str) -> Path:
        return self._pulling / ("sha256-" + hashlib.sha256(image.encode()).hexdigest())

    def record_pull_intent(self, image: str) -> None:
        """Notes, before a pull, that we are pulling ``image`` (it survives a crash)."""
        with self._lock:
            self._intents[image] = self._intents.get(image, 0) + 1
            path = self._intent_path(image)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(image)
                handle.flush()
                os.fsync(handle.fileno())

    def _drop_intent(self, image: str) -> None:
        count = self._intents.get(image, 0) - 1
        if count > 0:
            self._intents[image] = count
            return
        self._intents.pop(image, None)
        self._intent_path(image).unlink(missing_ok=True)

    def has_intent(self, image: str) -> bool:
        """True while a pull of ``image`` is under way or was cut short by a crash."""
        return self._intent_path(image).exists()

    def record_pull_failed(self, image: str) -> None:
        """Ends an intent after a failed pull."""
        with self._lock:
            self._drop_intent(image)

    def record_image_pulled(
        self, image: str, image_ref: str, credential: PullCredential | None
    ) -> None:
        """Ends an intent and records which credential pulled ``image`` (merged)."""
        with self._lock:
            used = credential or PullCredential.node()
            self.store.record_pull(image_ref, sanitize_image_name(image), [used])
            self._drop_intent(image)

    def prune_unknown(self, until: datetime) -> list[str]:
        """Deletes records of images no longer in the store last updated before ``until``."""
        return list(self.store.prune_pull_records(until))

    # --- the decision -------------------------------------------------------------------

    def requires_verification(self, image: str, pulled_by_us: bool) -> bool:
        """Whether the policy asks a pod to prove access to a present ``image``."""
        if self.policy is VerificationPolicy.NEVER_VERIFY:
            return False
        if self.policy is VerificationPolicy.ALWAYS_VERIFY:
            return True
        if self.policy is VerificationPolicy.NEVER_VERIFY_PRELOADED_IMAGES:
            return pulled_by_us
        return not self.allowlisted(image)

    def allowlisted(self, image: str) -> bool:
        """Whether the raw pod image string is in the allowlist (exact or ``prefix/*``)."""
        if image in self._allow_exact:
            return True
        return any(image.startswith(prefix + "/") for prefix in self._allow_prefixes)

    def must_attempt_pull(
        self, image: str, image_ref: str, pod_credentials: Sequence[PullCredential]
    ) -> bool:
        """kubelet's ``MustAttemptImagePull``: True when the pod must pull to prove access.

        ``pod_credentials`` are the pod's own credentials (secrets, service accounts); node-wide
        ones do not count, as in kubelet.
        """
        if not image_ref:
            return True
        record = self.store.pull_record(image_ref)
        pulled_by_us = self.has_intent(image) or (
            record is not None
            and any(
                cred.kind is not PullCredentialKind.PRELOADED
                for creds in record.credentials.values()
                for cred in creds
            )
        )
        if not self.requires_verification(image, pulled_by_us):
            return False
        if record is None:
            return True
        name = sanitize_image_name(image)
        known = record.credentials.get(name)
        if not known:
            return True
        if record.node_pods_accessible(name):
            return False
        secrets = [c for c in known if c.kind is PullCredentialKind.SECRET]
        accounts = [c for c in known if c.kind is PullCredentialKind.SERVICE_ACCOUNT]
        if not secrets and not accounts:
            return True
        for offered in pod_credentials:
            if offered.kind is not PullCredentialKind.SECRET:
                continue
            for recorded in secrets:
                same_hash = bool(offered.credential_hash) and (
                    offered.credential_hash == recorded.credential_hash
                )
                if same_hash or _same_object(offered, recorded):
                    # A rotated secret keeps access; another secret holding the same credential
                    # gains it. Either way the pod's secret is remembered.
                    if offered not in secrets and len(secrets) < WRITE_RECORD_WHILE_MATCHING_LIMIT:
                        self.store.record_pull(image_ref, name, [offered])
                    return False
        for offered in pod_credentials:
            if offered.kind is PullCredentialKind.SERVICE_ACCOUNT and any(
                _same_object(offered, account) for account in accounts
            ):
                return False
        return True


def _same_object(a: PullCredential, b: PullCredential) -> bool:
    return (a.uid, a.namespace, a.name) == (b.uid, b.namespace, b.name)
