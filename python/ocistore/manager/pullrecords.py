"""KEP-2535 "ensure secret pulled images": which credentials pulled an image, and whether a pod
must prove access before it may use an image already on the node.

Records are kept the way kubelet keeps them (``fs_pullrecords.go``): one small JSON file per key
under ``<store>/image_manager/{pulling,pulled}``, written atomically, directories 0700. They hold
credential *hashes* and secret coordinates, never a secret.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ocistore.errors import OciStoreError

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


@dataclass(frozen=True)
class SecretCoordinates:
    """A Secret that supplied a credential, and that credential's hash."""

    uid: str
    namespace: str
    name: str
    credential_hash: str = ""

    def same_object(self, other: SecretCoordinates) -> bool:
        return (self.uid, self.namespace, self.name) == (other.uid, other.namespace, other.name)


@dataclass(frozen=True)
class ServiceAccountCoordinates:
    """A ServiceAccount whose token-bound credential pulled an image."""

    uid: str
    namespace: str
    name: str


@dataclass(frozen=True)
class TrackedCredential:
    """What kubelet knows of a credential's origin: a secret, a service account, or the node."""

    secret: SecretCoordinates | None = None
    service_account: ServiceAccountCoordinates | None = None

    @property
    def node_wide(self) -> bool:
        return self.secret is None and self.service_account is None


@dataclass
class PullCredentials:
    """kubelet's ``ImagePullCredentials`` for one image name."""

    kubernetes_secrets: list[SecretCoordinates] = field(default_factory=list)
    kubernetes_service_accounts: list[ServiceAccountCoordinates] = field(default_factory=list)
    node_pods_accessible: bool = False
    preloaded: bool = False


@dataclass
class PulledRecord:
    """kubelet's ``ImagePulledRecord``: keyed by the image's ref (its digest)."""

    image_ref: str
    last_updated: float
    credential_mapping: dict[str, PullCredentials] = field(default_factory=dict)


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
    """Pull intents and pulled records on disk, with kubelet's ``MustAttemptImagePull`` logic."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        policy: VerificationPolicy | str = VerificationPolicy.NEVER_VERIFY_PRELOADED_IMAGES,
        allowlist: Sequence[str] = (),
    ) -> None:
        self.directory = Path(directory)
        self.policy = VerificationPolicy.parse(policy)
        self._allow_exact, self._allow_prefixes = parse_allowlist(allowlist)
        self._pulling = self.directory / "pulling"
        self._pulled = self.directory / "pulled"
        for path in (self.directory, self._pulling, self._pulled):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._intents: dict[str, int] = {}

    # --- files --------------------------------------------------------------------------

    @staticmethod
    def _file_name(key: str) -> str:
        return "sha256-" + hashlib.sha256(key.encode()).hexdigest()

    def _write(self, path: Path, document: dict[str, object]) -> None:
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    # --- intents ------------------------------------------------------------------------

    def record_pull_intent(self, image: str) -> None:
        """Notes, before a pull, that kubelet is pulling ``image`` (survives a crash)."""
        with self._lock:
            self._intents[image] = self._intents.get(image, 0) + 1
            self._write(self._pulling / self._file_name(image), {"image": image})

    def _drop_intent(self, image: str) -> None:
        count = self._intents.get(image, 0) - 1
        if count > 0:
            self._intents[image] = count
            return
        self._intents.pop(image, None)
        (self._pulling / self._file_name(image)).unlink(missing_ok=True)

    def has_intent(self, image: str) -> bool:
        """True while a pull of ``image`` is under way or was cut short by a crash."""
        return (self._pulling / self._file_name(image)).exists()

    def record_pull_failed(self, image: str) -> None:
        """Ends an intent after a failed pull."""
        with self._lock:
            self._drop_intent(image)

    # --- pulled records -----------------------------------------------------------------

    def get(self, image_ref: str) -> PulledRecord | None:
        """The pulled record of an image ref, or None."""
        path = self._pulled / self._file_name(image_ref)
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # a damaged record is treated as absent: the pod must re-verify
        return _record_from_json(document)

    def record_image_pulled(
        self, image: str, image_ref: str, credential: TrackedCredential | None
    ) -> PulledRecord:
        """Ends an intent and records which credential pulled ``image`` (merged into the record)."""
        with self._lock:
            record = self.get(image_ref) or PulledRecord(image_ref, time.time())
            entry = record.credential_mapping.setdefault(
                sanitize_image_name(image), PullCredentials()
            )
            entry.preloaded = False
            if credential is None or credential.node_wide:
                entry.node_pods_accessible = True
            elif credential.secret is not None:
                _merge_secret(entry, credential.secret)
            elif (
                credential.service_account is not None
                and credential.service_account not in entry.kubernetes_service_accounts
            ):
                entry.kubernetes_service_accounts.append(credential.service_account)
            record.last_updated = time.time()
            self._write(self._pulled / self._file_name(image_ref), _record_to_json(record))
            self._drop_intent(image)
            return record

    def forget(self, image_ref: str) -> None:
        """Deletes the pulled record of an image ref (when the image leaves the store)."""
        (self._pulled / self._file_name(image_ref)).unlink(missing_ok=True)

    def prune_unknown(self, known_refs: Iterable[str], until: float) -> int:
        """Deletes records of images no longer present that were last updated before ``until``."""
        known = {self._file_name(ref) for ref in known_refs}
        removed = 0
        for path in self._pulled.iterdir():
            if path.name in known or path.suffix == ".tmp":
                continue
            record = self.get_by_path(path)
            if record is None or record.last_updated < until:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def get_by_path(self, path: Path) -> PulledRecord | None:
        try:
            return _record_from_json(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # --- the decision -------------------------------------------------------------------

    def requires_verification(self, image: str, pulled_by_kubelet: bool) -> bool:
        """Whether the policy asks a pod to prove access to a present ``image``."""
        if self.policy is VerificationPolicy.NEVER_VERIFY:
            return False
        if self.policy is VerificationPolicy.ALWAYS_VERIFY:
            return True
        if self.policy is VerificationPolicy.NEVER_VERIFY_PRELOADED_IMAGES:
            return pulled_by_kubelet
        return not self.allowlisted(image)

    def allowlisted(self, image: str) -> bool:
        """Whether the raw pod image string is in the allowlist (exact or ``prefix/*``)."""
        if image in self._allow_exact:
            return True
        return any(image.startswith(prefix + "/") for prefix in self._allow_prefixes)

    def must_attempt_pull(
        self, image: str, image_ref: str, pod_credentials: Sequence[TrackedCredential]
    ) -> bool:
        """kubelet's ``MustAttemptImagePull``: True when the pod must pull to prove access."""
        if not image_ref:
            return True
        record = self.get(image_ref)
        pulled_by_kubelet = self.has_intent(image) or (
            record is not None
            and any(not entry.preloaded for entry in record.credential_mapping.values())
        )
        if not self.requires_verification(image, pulled_by_kubelet):
            return False
        if record is None:
            return True
        entry = record.credential_mapping.get(sanitize_image_name(image))
        if entry is None:
            return True
        if entry.node_pods_accessible:
            return False
        if not entry.kubernetes_secrets and not entry.kubernetes_service_accounts:
            return True
        for tracked in pod_credentials:
            secret = tracked.secret
            if secret is None:
                continue
            for known in entry.kubernetes_secrets:
                same_hash = bool(secret.credential_hash) and (
                    secret.credential_hash == known.credential_hash
                )
                if same_hash or secret.same_object(known):
                    # A rotated secret keeps access; another secret with the same credential
                    # gains it. Both are remembered.
                    self._remember_secret(image, image_ref, secret)
                    return False
        for tracked in pod_credentials:
            account = tracked.service_account
            if account is not None and account in entry.kubernetes_service_accounts:
                return False
        return True

    def _remember_secret(self, image: str, image_ref: str, secret: SecretCoordinates) -> None:
        with self._lock:
            record = self.get(image_ref)
            if record is None:
                return
            entry = record.credential_mapping.setdefault(
                sanitize_image_name(image), PullCredentials()
            )
            if secret in entry.kubernetes_secrets:
                return
            if len(entry.kubernetes_secrets) >= WRITE_RECORD_WHILE_MATCHING_LIMIT:
                return
            _merge_secret(entry, secret)
            record.last_updated = time.time()
            self._write(self._pulled / self._file_name(image_ref), _record_to_json(record))


def _merge_secret(entry: PullCredentials, secret: SecretCoordinates) -> None:
    """Adds a secret, replacing an older hash recorded for the same Secret object."""
    entry.kubernetes_secrets = [s for s in entry.kubernetes_secrets if not s.same_object(secret)]
    entry.kubernetes_secrets.append(secret)


def _record_to_json(record: PulledRecord) -> dict[str, object]:
    return {
        "kind": "ImagePulledRecord",
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "imageRef": record.image_ref,
        "lastUpdatedTime": record.last_updated,
        "credentialMapping": {
            name: {
                "kubernetesSecrets": [
                    {
                        "uid": s.uid,
                        "namespace": s.namespace,
                        "name": s.name,
                        "credentialHash": s.credential_hash,
                    }
                    for s in entry.kubernetes_secrets
                ],
                "kubernetesServiceAccounts": [
                    {"uid": a.uid, "namespace": a.namespace, "name": a.name}
                    for a in entry.kubernetes_service_accounts
                ],
                "nodePodsAccessible": entry.node_pods_accessible,
                "preloaded": entry.preloaded,
            }
            for name, entry in record.credential_mapping.items()
        },
    }


def _record_from_json(document: dict[str, object]) -> PulledRecord:
    mapping_json = document.get("credentialMapping") or {}
    if not isinstance(mapping_json, dict):
        raise ValueError("credentialMapping is not an object")
    mapping: dict[str, PullCredentials] = {}
    for name, raw in mapping_json.items():
        mapping[str(name)] = PullCredentials(
            kubernetes_secrets=[
                SecretCoordinates(
                    str(s["uid"]), str(s["namespace"]), str(s["name"]), str(s["credentialHash"])
                )
                for s in raw.get("kubernetesSecrets", [])
            ],
            kubernetes_service_accounts=[
                ServiceAccountCoordinates(str(a["uid"]), str(a["namespace"]), str(a["name"]))
                for a in raw.get("kubernetesServiceAccounts", [])
            ],
            node_pods_accessible=bool(raw.get("nodePodsAccessible", False)),
            preloaded=bool(raw.get("preloaded", False)),
        )
    last_updated = document.get("lastUpdatedTime", 0.0)
    return PulledRecord(
        image_ref=str(document["imageRef"]),
        last_updated=float(last_updated) if isinstance(last_updated, (int, float)) else 0.0,
        credential_mapping=mapping,
    )
