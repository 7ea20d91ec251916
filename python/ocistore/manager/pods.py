"""Pods and workloads as input: the containers whose images kubelet would ensure, with the API
server's pull-policy defaulting, and the pull secrets Kubernetes would hand to kubelet."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ocistore._valueclass import valueclass
from ocistore.errors import OciStoreError
from ocistore.policy import PullPolicy, default_pull_policy

if TYPE_CHECKING:
    from ocistore.manager.manager import ImageResult


class PodSpecError(OciStoreError, ValueError):
    """A manifest is not a Pod or workload that ocistore can read."""


#: Where each workload kind keeps its pod template spec.
_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "PodTemplate": ("template", "spec"),
}


@valueclass
class ContainerResult:
    """One container's outcome in ``ensure_pod``: a result or kubelet's reason and message."""

    pod: str
    namespace: str
    container: str
    image: str
    pull_policy: PullPolicy
    result: ImageResult | None = None
    reason: str | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None


@valueclass
class ContainerImage:
    """One container of a pod: its image and its (defaulted) pull policy."""

    name: str
    image: str
    pull_policy: PullPolicy
    kind: str  # "initContainers", "containers" or "ephemeralContainers"


@valueclass
class PodImages:
    """What kubelet needs from one pod (or pod template) to ensure its images."""

    kind: str
    name: str
    namespace: str
    uid: str
    service_account: str
    pull_secret_names: tuple[str, ...]
    containers: tuple[ContainerImage, ...]


def load_documents(source: str | bytes | Mapping[str, Any] | Sequence[Any]) -> list[dict[str, Any]]:
    """Kubernetes objects from YAML/JSON text (multi-document, ``List`` kinds) or dicts."""
    if isinstance(source, (str, bytes)):
        import yaml  # only here: most runs never parse YAML

        try:
            loaded = [doc for doc in yaml.safe_load_all(source) if doc is not None]
        except yaml.YAMLError as error:
            raise PodSpecError(f"manifest is not valid YAML/JSON: {error}") from None
    elif isinstance(source, Mapping):
        loaded = [source]
    else:
        loaded = list(source)
    documents: list[dict[str, Any]] = []
    for doc in loaded:
        if not isinstance(doc, Mapping):
            raise PodSpecError(f"expected a Kubernetes object, got {type(doc).__name__}")
        if doc.get("kind") == "List" or (doc.get("kind", "").endswith("List") and "items" in doc):
            documents.extend(load_documents(list(doc.get("items") or [])))
        else:
            documents.append(dict(doc))
    return documents


def _dig(obj: Mapping[str, Any], path: Iterable[str], where: str) -> Mapping[str, Any]:
    current: Any = obj
    for key in path:
        current = current.get(key) if isinstance(current, Mapping) else None
        if current is None:
            raise PodSpecError(f"{where}: missing {'.'.join(path)}")
    if not isinstance(current, Mapping):
        raise PodSpecError(f"{where}: {'.'.join(path)} is not an object")
    return current


def pod_images(document: Mapping[str, Any]) -> PodImages:
    """The containers of a Pod or workload, with the API server's defaulting applied."""
    kind = str(document.get("kind", ""))
    metadata = document.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise PodSpecError(f"{kind}: metadata is not an object")
    name = str(metadata.get("name", ""))
    where = f"{kind}/{name}" if name else kind or "object"
    path = _TEMPLATE_PATHS.get(kind)
    if path is None:
        raise PodSpecError(f"{where}: kind {kind!r} has no pod template")
    spec = _dig(document, path, where)
    containers: list[ContainerImage] = []
    for field_name in ("initContainers", "containers", "ephemeralContainers"):
        entries = spec.get(field_name) or []
        if not isinstance(entries, list):
            raise PodSpecError(f"{where}: {field_name} is not a list")
        for index, container in enumerate(entries):
            if not isinstance(container, Mapping):
                raise PodSpecError(f"{where}: {field_name}[{index}] is not an object")
            image = container.get("image")
            if not isinstance(image, str) or not image:
                raise PodSpecError(f"{where}: {field_name}[{index}] has no image")
            declared = container.get("imagePullPolicy") or ""
            if declared:
                try:
                    policy = PullPolicy.parse(str(declared))
                except (ValueError, OciStoreError):
                    raise PodSpecError(
                        f"{where}: {field_name}[{index}].imagePullPolicy: Unsupported value: "
                        f'"{declared}": supported values: "Always", "IfNotPresent", "Never"'
                    ) from None
            else:
                policy = default_pull_policy(image)
            containers.append(
                ContainerImage(
                    name=str(container.get("name", f"{field_name}[{index}]")),
                    image=image,
                    pull_policy=policy,
                    kind=field_name,
                )
            )
    secrets = spec.get("imagePullSecrets") or []
    if not isinstance(secrets, list):
        raise PodSpecError(f"{where}: imagePullSecrets is not a list")
    secret_names = tuple(
        str(s["name"]) for s in secrets if isinstance(s, Mapping) and s.get("name")
    )
    return PodImages(
        kind=kind,
        name=name,
        namespace=str(metadata.get("namespace") or "default"),
        uid=str(metadata.get("uid") or f"{metadata.get('namespace') or 'default'}/{name}"),
        service_account=str(
            spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        ),
        pull_secret_names=secret_names,
        containers=tuple(containers),
    )


def resolve_pull_secrets(
    pod: PodImages,
    secrets: Iterable[Mapping[str, Any]],
    service_accounts: Iterable[Mapping[str, Any]] = (),
) -> tuple[list[Mapping[str, Any]], list[str]]:
    """The Secret objects kubelet would get for a pod, and the names it could not find.

    Only secrets of the pod's namespace count. When the pod names no pull secrets, its
    ServiceAccount's ``imagePullSecrets`` are used (what service-account admission adds).
    """
    names = list(pod.pull_secret_names)
    if not names:
        for account in service_accounts:
            meta = account.get("metadata") or {}
            if (
                account.get("kind", "ServiceAccount") == "ServiceAccount"
                and meta.get("name") == pod.service_account
                and (meta.get("namespace") or "default") == pod.namespace
            ):
                names = [
                    str(s["name"])
                    for s in account.get("imagePullSecrets") or []
                    if isinstance(s, Mapping) and s.get("name")
                ]
                break
    by_name: dict[str, Mapping[str, Any]] = {}
    for secret in secrets:
        meta = secret.get("metadata") or {}
        if (meta.get("namespace") or "default") == pod.namespace and meta.get("name"):
            by_name.setdefault(str(meta["name"]), secret)
    found = [by_name[name] for name in names if name in by_name]
    missing = [name for name in names if name not in by_name]
    return found, missing
