"""Which repository a mirror request names: the path's name plus containerd's ``ns`` parameter.

containerd asks a mirror for ``/v2/team/app/manifests/1?ns=127.0.0.1:5000``: the path holds the
repository as the upstream registry knows it, ``ns`` the registry the image belongs to. Without
``ns`` (Docker Engine's ``registry-mirrors``, skopeo and podman mirrors in ``registries.conf``)
the request is for the server's default registry, Docker Hub unless configured otherwise, so
``/v2/nginx/...`` means ``docker.io/library/nginx`` as it does for Docker.

Everything here is untrusted: a name must be a valid repository path and ``ns`` a valid
registry host (``InvalidReferenceError`` otherwise). No file path is ever built from a name.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocistore.errors import InvalidReferenceError
from ocistore.reference import DEFAULT_REGISTRY, OFFICIAL_REPO_PREFIX, Reference

__all__ = ["DEFAULT_REGISTRY", "MirrorRequest", "parse_mirror_path", "repository_name"]

_V2 = "/v2/"


@dataclass(frozen=True)
class MirrorRequest:
    """A ``/v2/<name>/manifests/<reference>`` or ``/v2/<name>/blobs/<digest>`` request."""

    kind: str
    """``manifests`` or ``blobs``."""
    name: str
    """The repository path as sent (``team/app``)."""
    reference: str
    """A tag or digest (manifests), a digest (blobs); not validated yet."""


def parse_mirror_path(path: str) -> MirrorRequest | None:
    """Splits a pull path of the distribution API; None for any other path."""
    if not path.startswith(_V2):
        return None
    rest = path[len(_V2) :]
    for kind in ("manifests", "blobs"):
        name, found, reference = rest.rpartition(f"/{kind}/")
        if found and name and reference and "/" not in reference:
            return MirrorRequest(kind, name, reference)
    return None


def repository_name(name: str, ns: str | None, default_registry: str = DEFAULT_REGISTRY) -> str:
    """The full repository (``registry/path``) a request means, validated.

    ``ns`` names the registry; without it ``default_registry`` does. Docker Hub names of one
    component get ``library/`` as Docker's normalisation gives them.
    """
    registry = ns if ns is not None else default_registry
    if name.lower() != name:
        raise InvalidReferenceError(f"repository name {name!r} must be lowercase")
    if registry == DEFAULT_REGISTRY and "/" not in name:
        name = OFFICIAL_REPO_PREFIX + name
    reference = Reference(registry, name)
    if Reference.parse(reference.name) != reference:
        # "ns=team": a single label would read back as a Docker Hub path, not a registry.
        raise InvalidReferenceError(f"ns {registry!r} does not name a registry host")
    return reference.name
