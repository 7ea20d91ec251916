"""ocistore: a daemonless, Rust-accelerated OCI image content store with Kubernetes semantics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocistore._core import __version__
from ocistore._lazy import lazy_attributes
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
    StoreWriteError,
    UnsafeLayerError,
    UnsupportedManifestError,
    UnsupportedMediaTypeError,
)
from ocistore.layer import LayerWriter, UnpackLimits, UnpackStats, unpack_layer
from ocistore.mediatypes import Compression, MediaType
from ocistore.model import (
    Annotations,
    Descriptor,
    History,
    ImageConfig,
    Index,
    Manifest,
    chain_ids,
    parse_image_config,
    parse_index,
    parse_manifest,
    parse_manifest_document,
)
from ocistore.platform import Platform, PlatformMatcher, only, only_strict
from ocistore.policy import PullPolicy, default_pull_policy
from ocistore.reference import Reference, apply_default_tag

if TYPE_CHECKING:
    from ocistore.credentials import Credential, Keyring, docker_registry_secret, url_matches
    from ocistore.manager import ImageGCManager, ImageGCPolicy, ImageManager, ImageResult
    from ocistore.registry.options import RegistryOptions
    from ocistore.store import (
        FsckReport,
        GcReport,
        ImageRecord,
        Ingest,
        PullCredential,
        PullRecord,
        Store,
    )
    from ocistore.transfer.copy import copy
    from ocistore.transfer.pull import PulledImage, PullEvent, pull, resolve
    from ocistore.transfer.push import push
    from ocistore.transfer.upload import TransferReport

# The registry client (httpx), credentials, the store and the image manager load on first
# use: a program that only parses references or unpacks layers does not pay for them.
_LAZY: dict[str, str] = {
    "Credential": "ocistore.credentials",
    "FsckReport": "ocistore.store",
    "GcReport": "ocistore.store",
    "ImageGCManager": "ocistore.manager",
    "ImageGCPolicy": "ocistore.manager",
    "ImageManager": "ocistore.manager",
    "ImageRecord": "ocistore.store",
    "ImageResult": "ocistore.manager",
    "Ingest": "ocistore.store",
    "Keyring": "ocistore.credentials",
    "PullCredential": "ocistore.store",
    "PullEvent": "ocistore.transfer.pull",
    "PullRecord": "ocistore.store",
    "RegistryOptions": "ocistore.registry.options",
    "PulledImage": "ocistore.transfer.pull",
    "Store": "ocistore.store",
    "TransferReport": "ocistore.transfer.upload",
    "copy": "ocistore.transfer.copy",
    "docker_registry_secret": "ocistore.credentials",
    "pull": "ocistore.transfer.pull",
    "push": "ocistore.transfer.push",
    "resolve": "ocistore.transfer.pull",
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
    "ImageGCManager",
    "ImageGCPolicy",
    "ImageManager",
    "ImageNotFoundError",
    "ImagePullBackOff",
    "ImagePullError",
    "ImageRecord",
    "ImageResult",
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
    "MediaType",
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
    "RegistryOptions",
    "RegistryUnavailable",
    "RegistryUnavailableError",
    "SecretFormatError",
    "SizeMismatchError",
    "Store",
    "StoreError",
    "StoreWriteError",
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
    "only",
    "only_strict",
    "parse_image_config",
    "parse_index",
    "parse_manifest",
    "parse_manifest_document",
    "pull",
    "push",
    "resolve",
    "unpack_layer",
    "url_matches",
    "validate_digest",
    "verify_file",
]

# A library logs; the application decides where the records go: the "ocistore" logger gets
# its NullHandler when logging is first used (ocistore/_log.py).


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
