"""Stored manifests, indexes and configs as the store sees them (parsed by ``ocistore.model``).

This module adapts the model's documents into the flat views the store keeps in its index:
children with a kind (config, layer, manifest), platforms as strings, diff_ids and chain IDs.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ocistore import mediatypes, model
from ocistore._lazy import pattern
from ocistore._valueclass import field, valueclass
from ocistore.digest import digest_bytes
from ocistore.errors import DigestMismatchError, ManifestError
from ocistore.model import ImageConfig, Index, Manifest
from ocistore.platform import Platform

__all__ = ["Child", "chain_id", "verified_config", "verified_index", "verified_manifest"]

# Compiled on first use (by ``re``'s cache): only a pull with credentials checks a hash.
_HASH_PATTERN = r"(?:[a-z0-9]+:)?[0-9a-f]{32,128}"


_NO_ANNOTATIONS: Mapping[str, str] = MappingProxyType({})


@valueclass
class Child:
    """A descriptor as the store sees it: what it points at, and in which role."""

    digest: str
    size: int
    media_type: str | None
    kind: str
    """``config``, ``layer``, ``manifest`` (an index entry) or ``subject``."""
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=lambda: _NO_ANNOTATIONS)
    urls: tuple[str, ...] = ()
    nondistributable: bool = False


def _child(descriptor: model.Descriptor, kind: str) -> Child:
    return Child(
        digest=descriptor.digest,
        size=descriptor.size,
        media_type=descriptor.media_type,
        kind=kind,
        platform=descriptor.platform,
        annotations=descriptor.annotations.to_dict(),
        urls=descriptor.urls,
        nondistributable=descriptor.is_nondistributable,
    )


def _verify(data: bytes, digest: str | None) -> None:
    if digest is None:
        return
    actual = digest_bytes(data, digest.partition(":")[0])
    if actual != digest:
        raise DigestMismatchError(f"document {digest} hashes to {actual}", digest, actual)


def verified_manifest(data: bytes, digest: str | None) -> Manifest:
    """A stored image manifest, checked against its digest (``ManifestError`` if an index)."""
    _verify(data, digest)
    return model.parse_manifest(data)


def verified_index(data: bytes, digest: str | None) -> Index:
    """A stored image index, checked against its digest (``ManifestError`` if a manifest)."""
    _verify(data, digest)
    return model.parse_index(data)


def verified_config(data: bytes, digest: str | None) -> ImageConfig:
    """A stored image configuration, checked against its digest."""
    _verify(data, digest)
    return model.parse_image_config(data)


def manifest_children(manifest: Manifest) -> list[Child]:
    """The config and layers a manifest references (deduplicated, in order)."""
    children = [_child(manifest.config, "config")]
    children += [_child(layer, "layer") for layer in manifest.layers]
    seen: set[str] = set()
    unique = []
    for child in children:
        if child.digest not in seen:
            seen.add(child.digest)
            unique.append(child)
    return unique


def index_children(index: Index) -> list[Child]:
    """The manifests (or nested indexes) an index lists."""
    return [_child(d, "manifest") for d in index.manifests]


def may_be_absent(child: Child) -> bool:
    """Whether a store may lack this blob (non-distributable layers fetched from ``urls``)."""
    return child.kind == "layer" and child.nondistributable


def chain_id(ids: list[str]) -> str | None:
    """The ChainID of a whole layer stack (image-spec config.md); None for no layers."""
    chain = model.chain_ids(ids)
    return chain[-1] if chain else None


def config_platform(config: ImageConfig) -> str | None:
    """``os/arch[/variant]`` from a config."""
    if not config.os or not config.architecture:
        return None
    return str(config.platform)


def platform_string(platform: Platform | None) -> str | None:
    """``os/arch[/variant]`` or None."""
    return None if platform is None else str(platform)


def platform_in_index(index: Index, manifest_digest: str) -> str | None:
    """The platform an index lists for a manifest."""
    for descriptor in index.manifests:
        if descriptor.digest == manifest_digest and descriptor.platform is not None:
            return str(descriptor.platform)
    return None


def platform_descriptor(platform: str | None) -> dict[str, object] | None:
    """A descriptor ``platform`` object from ``os/arch[/variant]``."""
    if not platform:
        return None
    return Platform.parse(platform).to_dict()


def choose_platform(index: Index, platform: str | None) -> Child:
    """The index entry to use for ``platform`` (default: this host), containerd-style."""
    chosen = index.select(platform)
    if not mediatypes.is_manifest(chosen.media_type):
        raise ManifestError(f"nested index {chosen.digest} is not supported here")
    return _child(chosen, "manifest")


def looks_like_hash(text: str) -> bool:
    """Whether ``text`` looks like a hex hash (so we never store a secret by mistake)."""
    return bool(pattern(_HASH_PATTERN).fullmatch(text))
