"""The exceptions ocistore raises. Every one derives from :class:`OciStoreError`.

Errors that describe bad input also derive from :class:`ValueError`, so code that already
catches ``ValueError`` keeps working. The native module raises these same classes.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator


class OciStoreError(Exception):
    """Base class of every error ocistore raises."""


# --- input validation -------------------------------------------------------------------


class InvalidReferenceError(OciStoreError, ValueError):
    """An image reference does not follow the distribution reference grammar."""


class InvalidDigestError(OciStoreError, ValueError):
    """A digest string is malformed or names an unsupported algorithm."""


class InvalidPlatformError(OciStoreError, ValueError):
    """A platform string is not ``os/arch[/variant]``."""


class InvalidPullPolicyError(OciStoreError, ValueError):
    """An ``imagePullPolicy`` is not exactly ``Always``, ``IfNotPresent`` or ``Never``."""


# --- content integrity ------------------------------------------------------------------


class DigestMismatchError(OciStoreError, ValueError):
    """Content does not hash to the digest it was expected to have."""

    def __init__(self, message: str, expected: str | None = None, actual: str | None = None):
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class SizeMismatchError(OciStoreError, ValueError):
    """Content is not the size its descriptor declared."""


# --- layers -----------------------------------------------------------------------------


class UnsupportedMediaTypeError(OciStoreError, ValueError):
    """A layer or manifest media type that ocistore does not handle."""


class LayerFormatError(OciStoreError, ValueError):
    """A layer is not a valid tar stream (or its compression is corrupt).

    ``entry`` names the tar entry at fault when there is one.
    """

    entry: str | None = None


class UnsafeLayerError(OciStoreError):
    """A layer entry would write, follow or delete something outside the root.

    ``entry`` names the refused tar entry.
    """

    entry: str | None = None


class LayerLimitError(OciStoreError):
    """A layer exceeds an unpack limit (bytes, entries, file size, path length)."""

    entry: str | None = None


class LayerWriteError(OciStoreError, OSError):
    """The destination failed while a layer was applied (not a directory, disk full, read-only).

    ``errno`` is set; ``filename`` too when the destination itself is unusable.
    """

    entry: str | None = None


class LayerSourceError(OciStoreError, OSError):
    """The layer blob could not be read (missing, unreadable, a directory, an I/O error).

    ``errno`` and ``filename`` are set as for the ``OSError`` the system call raised.
    """


# --- the content store ------------------------------------------------------------------


class StoreError(OciStoreError):
    """The content store is unusable or an operation on it failed."""


class StoreWriteError(StoreError, OSError):
    """The store could not be written: disk full, out of inodes, an I/O error, read-only.

    ``errno`` and ``filename`` are those of the failed call. What was written and verified
    before stays in the store; nothing partial becomes visible.
    """


#: errno values meaning the filesystem failed a write (as opposed to a wrong path). EINTR is
#: one too: Python retries only calls that block (PEP 475), not ``rename``/``fsync`` on a
#: filesystem that can be interrupted (NFS, FUSE); the store is left as it was, so the caller
#: may simply pull again.
WRITE_FAILURES = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EFBIG, errno.EINTR}
)


@contextlib.contextmanager
def store_writes(path: str | os.PathLike[str]) -> Iterator[None]:
    """Raises a write failure under ``path`` (disk full, I/O error) as :class:`StoreWriteError`."""
    try:
        yield
    except OciStoreError:
        raise
    except OSError as exc:
        if exc.errno not in WRITE_FAILURES:
            raise
        filename = os.fspath(exc.filename if exc.filename is not None else path)
        raise StoreWriteError(exc.errno, exc.strerror or str(exc), filename) from exc


class BlobNotFoundError(StoreError, KeyError):
    """A blob is not in the store."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "blob not found"


class ImageNotFoundError(StoreError, KeyError):
    """An image is not in the store."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "image not found"


class LayoutError(StoreError, ValueError):
    """A directory is not a valid OCI image layout (or holds malformed metadata)."""


# --- manifests and registries -----------------------------------------------------------


class ManifestError(OciStoreError, ValueError):
    """A manifest, index or config is malformed or contradicts its media type."""


class UnsupportedManifestError(ManifestError, UnsupportedMediaTypeError):
    """A manifest format ocistore refuses (e.g. Docker schema 1)."""


class ManifestTooLargeError(ManifestError):
    """A manifest is over the size limit (4 MiB)."""


class AmbiguousManifestError(ManifestError):
    """A document reads as both an index and a manifest (GHSA-5j5w-g665-5m35)."""


class MediaTypeMismatchError(ManifestError):
    """A document's ``mediaType`` contradicts the Content-Type it was served with."""


class PlatformNotFoundError(OciStoreError, LookupError):
    """No manifest in an index matches the requested platform."""


class RegistryError(OciStoreError):
    """A registry answered with an error.

    ``code`` is the first OCI error code (``MANIFEST_UNKNOWN``, ``UNAUTHORIZED``, ...) when the
    registry sent one, ``status`` the HTTP status.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        codes: tuple[str, ...] = (),
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.codes = codes or ((code,) if code else ())


class AuthenticationError(RegistryError):
    """The registry refused the credentials (or none were accepted)."""


class RegistryUnavailableError(RegistryError):
    """The registry could not be reached or kept failing after retries."""


class MalformedResponseError(RegistryError, ValueError):
    """A server's answer is not valid HTTP/1.x."""


# --- credentials ------------------------------------------------------------------------


class CredentialError(OciStoreError):
    """A credential source (config file, secret, helper, plugin) could not be used."""


class SecretFormatError(CredentialError, ValueError):
    """A Kubernetes Secret is of the wrong type or lacks its key."""


class CredentialHelperError(CredentialError):
    """A docker-credential-* helper failed, timed out or is missing."""


class CredentialProviderError(CredentialError):
    """A kubelet credential-provider plugin failed, timed out or answered badly."""


# --- kubelet's image manager ------------------------------------------------------------


class ImagePullError(OciStoreError):
    """A container's image could not be made available; ``reason`` is kubelet's reason."""

    reason: str = "ErrImagePull"

    def __init__(self, message: str, *, image: str | None = None):
        super().__init__(message)
        self.message = message
        self.image = image


class ErrImagePull(ImagePullError):
    """The pull failed (kubelet's ``ErrImagePull``)."""

    reason = "ErrImagePull"


class ImagePullBackOff(ImagePullError):
    """The pull is backing off after failures (kubelet's ``ImagePullBackOff``)."""

    reason = "ImagePullBackOff"


class ErrImageNeverPull(ImagePullError):
    """The policy is Never and the image is absent (kubelet's ``ErrImageNeverPull``)."""

    reason = "ErrImageNeverPull"


class InvalidImageName(ImagePullError):
    """The image name cannot be parsed (kubelet's ``InvalidImageName``)."""

    reason = "InvalidImageName"


class RegistryUnavailable(ImagePullError):
    """The registry is unreachable (kubelet's ``RegistryUnavailable``)."""

    reason = "RegistryUnavailable"


class ErrImageInspect(ImagePullError):
    """The local image could not be inspected (kubelet's ``ImageInspectError``)."""

    reason = "ImageInspectError"
