"""ocistore: a daemonless, Rust-accelerated OCI image content store with Kubernetes semantics."""

from __future__ import annotations

import importlib
import logging
import sys
from typing import TYPE_CHECKING, Any

# httpx imports its own command line (click, rich, pygments) whenever those are installed, which
# is half of its import time; ocistore never runs it. (``httpx.main`` then only says so.)
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

from ocistore._core import __version__
from ocistore.digest import Digester, digest_bytes, digest_file, validate_digest, verify_file
from ocistore.errors import (
    AmbiguousManifestError,
    AuthenticationError,
    BlobNotFoundError,
    CredentialError,
    CredentialHelperError,
    CredentialProviderError,
    DigestMismatchError,
    ErrImageInspect,
    ErrImageNeverPull,
    ErrImagePull,
    ImageNotFoundError,
    ImagePullBackOff,
    ImagePullError,
    InvalidDigestError,
    InvalidImageName,
    InvalidPlatformError,
    InvalidPullPolicyError,
    InvalidReferenceError,
    LayerFormatError,
    LayerLimitError,
    LayerSourceError,
    LayerWriteError,
    LayoutError,
    ManifestError,
    ManifestTooLargeError,
    MediaTypeMismatchError,
    OciStoreError,
    PlatformNotFoundError,
    RegistryError,
    RegistryUnavailable,
    RegistryUnavailableError,
    SecretFormatError,
    SizeMismatchError,
    StoreError,
    UnsafeLayerError,
    UnsupportedManifestError,
    UnsupportedMediaTypeError,
)
from ocistore.layer import LayerWriter, UnpackLimits, UnpackStats, unpack_layer
from ocistore.model import (
    Annotations,
    Compression,
    Descriptor,
    History,
    ImageConfig,
    Index,
    Manifest,
    chain_ids,
    is_index_media_type,
    is_layer_media_type,
    is_manifest_media_type,
    layer_compression,
    parse_image_config,
    parse_index,
    parse_manifest,
    parse_manifest_document,
    sniff_compression,
)
from ocistore.platform import Platform, PlatformMatcher, only, only_strict
from ocistore.policy import PullPolicy, default_pull_policy
from ocistore.reference import Reference, apply_default_tag

if TYPE_CHECKING:
    from ocistore.credentials import Credential, Keyring, docker_registry_secret, url_matches
    from ocistore.registry.pull import PulledImage, PullEvent, pull, resolve
    from ocistore.registry.push import TransferReport, copy, push
    from ocistore.store import (
        FsckReport,
        GcReport,
        ImageRecord,
        Ingest,
        PullCredential,
        PullRecord,
        Store,
    )

# The registry client (httpx), credentials and the store load on first use: a program
# that only parses references or unpacks layers does not pay for them.
_LAZY: dict[str, str] = {
    "Credential": "ocistore.credentials",
    "FsckReport": "ocistore.store",
    "GcReport": "ocistore.store",
    "ImageRecord": "ocistore.store",
    "Ingest": "ocistore.store",
    "Keyring": "ocistore.credentials",
    "PullCredential": "ocistore.store",
    "PullEvent": "ocistore.registry.pull",
    "PullRecord": "ocistore.store",
    "PulledImage": "ocistore.registry.pull",
    "Store": "ocistore.store",
    "TransferReport": "ocistore.registry.push",
    "copy": "ocistore.registry.push",
    "docker_registry_secret": "ocistore.credentials",
    "pull": "ocistore.registry.pull",
    "push": "ocistore.registry.push",
    "resolve": "ocistore.registry.pull",
    "url_matches": "ocistore.credentials",
}

__all__ = [
    "AmbiguousManifestError",
    "Annotations",
    "AuthenticationError",
    "BlobNotFoundError",
    "Compression",
    "Credential",
    "CredentialError",
    "CredentialHelperError",
    "CredentialProviderError",
    "Descriptor",
    "DigestMismatchError",
    "Digester",
    "ErrImageInspect",
    "ErrImageNeverPull",
    "ErrImagePull",
    "FsckReport",
    "GcReport",
    "History",
    "ImageConfig",
    "ImageNotFoundError",
    "ImagePullBackOff",
    "ImagePullError",
    "ImageRecord",
    "Index",
    "Ingest",
    "InvalidDigestError",
    "InvalidImageName",
    "InvalidPlatformError",
    "InvalidPullPolicyError",
    "InvalidReferenceError",
    "Keyring",
    "LayerFormatError",
    "LayerLimitError",
    "LayerSourceError",
    "LayerWriteError",
    "LayerWriter",
    "LayoutError",
    "Manifest",
    "ManifestError",
    "ManifestTooLargeError",
    "MediaTypeMismatchError",
    "OciStoreError",
    "Platform",
    "PlatformMatcher",
    "PlatformNotFoundError",
    "PullCredential",
    "PullEvent",
    "PullPolicy",
    "PullRecord",
    "PulledImage",
    "Reference",
    "RegistryError",
    "RegistryUnavailable",
    "RegistryUnavailableError",
    "SecretFormatError",
    "SizeMismatchError",
    "Store",
    "StoreError",
    "TransferReport",
    "UnpackLimits",
    "UnpackStats",
    "UnsafeLayerError",
    "UnsupportedManifestError",
    "UnsupportedMediaTypeError",
    "__version__",
    "apply_default_tag",
    "chain_ids",
    "copy",
    "default_pull_policy",
    "digest_bytes",
    "digest_file",
    "docker_registry_secret",
    "is_index_media_type",
    "is_layer_media_type",
    "is_manifest_media_type",
    "layer_compression",
    "only",
    "only_strict",
    "parse_image_config",
    "parse_index",
    "parse_manifest",
    "parse_manifest_document",
    "pull",
    "push",
    "resolve",
    "sniff_compression",
    "unpack_layer",
    "url_matches",
    "validate_digest",
    "verify_file",
]

# A library logs; the application decides where the records go.
logging.getLogger("ocistore").addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ocistore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
