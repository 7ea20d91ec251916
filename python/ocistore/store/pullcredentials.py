"""KEP-2535 records: which credentials pulled an image (a secret by hash, a service account,
the node, or none). Only pulls with credentials and the pull-record policy need them."""

from __future__ import annotations

import enum
from datetime import datetime

from ocistore._valueclass import valueclass

__all__ = ["PullCredential", "PullCredentialKind", "PullRecord"]


class PullCredentialKind(enum.StrEnum):
    """Which kind of credential pulled an image (KEP-2535)."""

    SECRET = "secret"
    SERVICE_ACCOUNT = "service-account"
    NODE = "node"
    """No credentials, or node-wide ones: any pod on the node may use the image."""
    PRELOADED = "preloaded"
    """Not pulled by the kubelet (pre-loaded onto the node)."""


@valueclass
class PullCredential:
    """One credential that pulled an image: a secret by hash (never its value), an SA, or none."""

    kind: PullCredentialKind
    namespace: str = ""
    name: str = ""
    uid: str = ""
    credential_hash: str = ""
    """Hash of the auth config (kubelet's ``AuthConfigHash``): never the secret itself."""

    @classmethod
    def secret(cls, *, namespace: str, name: str, uid: str, credential_hash: str) -> PullCredential:
        """A Kubernetes pull secret identified by its coordinates and credential hash."""
        return cls(PullCredentialKind.SECRET, namespace, name, uid, credential_hash)

    @classmethod
    def service_account(cls, *, namespace: str, name: str, uid: str) -> PullCredential:
        """A service account whose token pulled the image."""
        return cls(PullCredentialKind.SERVICE_ACCOUNT, namespace, name, uid)

    @classmethod
    def node(cls) -> PullCredential:
        """No credentials, or node-wide ones (``nodePodsAccessible``)."""
        return cls(PullCredentialKind.NODE)

    @classmethod
    def preloaded(cls) -> PullCredential:
        """The image was not pulled by the kubelet."""
        return cls(PullCredentialKind.PRELOADED)


@valueclass
class PullRecord:
    """KEP-2535 "pulled record": which credentials pulled an image, per image name."""

    image_ref: str
    """The image the runtime reports (its manifest digest here)."""
    last_updated: datetime
    credentials: dict[str, tuple[PullCredential, ...]]
    """Image name without tag or digest (as the pod wrote it) -> credentials that pulled it."""

    def node_pods_accessible(self, image_name: str) -> bool:
        """Whether any pod may use the image under this name without presenting credentials."""
        return any(c.kind is PullCredentialKind.NODE for c in self.credentials.get(image_name, ()))
