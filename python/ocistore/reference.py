"""Image references (``[registry/]repository[:tag][@digest]``) as Kubernetes reads them.

The grammar, the Docker Hub normalisation and the error texts follow ``distribution/reference``
(``ParseNormalizedNamed``), which the kubelet uses through ``ParseImageName``. Where that
library and a friendlier rule disagree, upstream wins so that an image name means here exactly
what it means to the kubelet and containerd; the few deliberate differences are listed on
:class:`Reference`.
"""

from __future__ import annotations

import re
from typing import Final

from ocistore._core import validate_digest
from ocistore._lazy import pattern
from ocistore._valueclass import valueclass
from ocistore.errors import InvalidDigestError, InvalidReferenceError

__all__ = [
    "DEFAULT_REGISTRY",
    "DEFAULT_TAG",
    "DOCKER_HUB_API_HOST",
    "NAME_TOTAL_LENGTH_MAX",
    "Reference",
    "apply_default_tag",
]

DEFAULT_REGISTRY: Final = "docker.io"
LEGACY_DEFAULT_REGISTRY: Final = "index.docker.io"
DOCKER_HUB_API_HOST: Final = "registry-1.docker.io"
OFFICIAL_REPO_PREFIX: Final = "library/"
DEFAULT_TAG: Final = "latest"
NAME_TOTAL_LENGTH_MAX: Final = 255
TAG_LENGTH_MAX: Final = 128

# --- the grammar (distribution/reference regexp.go), piece by piece -------------------------
_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_NAME_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_NAME_COMPONENT}(?:\.{_DOMAIN_NAME_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_NAME}|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_REMOTE_NAME}"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"

# re.ASCII keeps \w to [A-Za-z0-9_] as in RE2; fullmatch() stands in for Go's ^...$ (Python's
# $ would also match before a trailing newline). The patterns are compiled on first use (``re``
# caches them): compiling all ten at import cost more than parsing a reference does.
_REFERENCE: Final = rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?"
_ANCHORED_NAME: Final = rf"(?:({_DOMAIN})/)?({_REMOTE_NAME})"
_IDENTIFIER: Final = r"[a-f0-9]{64}"
# go-digest: the shape an unknown algorithm's digest must have to be "unsupported", not "invalid".
_GO_DIGEST_SHAPE: Final = r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+"


def _fullmatch(source: str, text: str) -> re.Match[str] | None:
    return pattern(source, re.ASCII).fullmatch(text)


_SUPPORTED_DIGEST_HEX_LENGTHS: Final = {"sha256": 64, "sha512": 128}

# The errors distribution/reference and go-digest return (their exact texts).
ERR_NAME_EMPTY: Final = "repository name must have at least one component"
ERR_REFERENCE_INVALID_FORMAT: Final = "invalid reference format"
ERR_NAME_CONTAINS_UPPERCASE: Final = "repository name must be lowercase"
ERR_NAME_TOO_LONG: Final = (
    f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
)
ERR_TAG_INVALID_FORMAT: Final = "invalid tag format"
ERR_DIGEST_INVALID_FORMAT: Final = "invalid checksum digest format"
ERR_DIGEST_INVALID_LENGTH: Final = "invalid checksum digest length"
ERR_DIGEST_UNSUPPORTED: Final = "unsupported digest algorithm"


@valueclass(slots=True)
class Reference:
    """A normalised image reference: registry, repository, and an optional tag and/or digest.

    ``Reference.parse`` is ``ParseNormalizedNamed``: ``nginx`` is ``docker.io/library/nginx``,
    ``index.docker.io`` becomes ``docker.io``, no tag is added (see :meth:`with_default_tag`).
    Deliberate choices, where the issue or upstream left room:

    * Length: like current upstream, only the repository path is limited to 255 characters;
      the registry host does not count (older docker/distribution counted the whole name).
    * A first component that looks like a host (has ``.`` or ``:``) but is not a valid host,
      such as ``foo_bar.com/app``, is refused. Upstream quietly parses it as a registry-less
      path, which no client can pull from.
    * Digests: sha256 (64 hex) and sha512 (128 hex) are supported, sha384 and others are
      "unsupported digest algorithm" (the spec leaves sha384 to the implementation).
    * :attr:`familiar` keeps ``docker.io/`` where dropping it would make the short form mean
      another image or nothing (``docker.io/foo.bar/app``, ``docker.io/library/<64 hex>``),
      so it always parses back.
    * Error messages start with upstream's text; where the broken rule can be named, it
      follows after a colon (``invalid reference format: tag is longer than 128 characters``).
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        # Direct construction must not create references that parse() could never produce.
        if not _fullmatch(_DOMAIN, self.registry):
            raise InvalidReferenceError(f"invalid registry host {self.registry!r}")
        if self.registry == LEGACY_DEFAULT_REGISTRY:
            raise InvalidReferenceError(
                f"registry {LEGACY_DEFAULT_REGISTRY!r} must be written as {DEFAULT_REGISTRY!r}"
            )
        _check_path(self.repository)
        if self.registry == DEFAULT_REGISTRY and "/" not in self.repository:
            raise InvalidReferenceError(
                f"Docker Hub repository {self.repository!r} must be written as "
                f"{OFFICIAL_REPO_PREFIX}{self.repository!r}"
            )
        if self.tag is not None:
            _check_tag(self.tag)
        if self.digest is not None:
            _check_digest(self.digest)

    # --- parsing ---------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parses and normalises an image reference; raises InvalidReferenceError."""
        if not isinstance(text, str):
            raise TypeError(f"an image reference must be a str, not {type(text).__name__}")
        if text == "":
            raise InvalidReferenceError(ERR_NAME_EMPTY)
        if _fullmatch(_IDENTIFIER, text):
            raise InvalidReferenceError(
                f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
            )
        domain, remainder, written = _split_docker_domain(text)
        remote = remainder.split(":", 1)[0]
        if remote.lower() != remote:
            raise InvalidReferenceError(
                f"{ERR_REFERENCE_INVALID_FORMAT}: repository name ({remote}) must be lowercase"
            )
        return _parse_qualified(domain, remainder, written)

    # --- views -----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """``registry/repository``: the name without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def api_registry(self) -> str:
        """The host the registry API is served from (``registry-1.docker.io`` for Docker Hub)."""
        return DOCKER_HUB_API_HOST if self.registry == DEFAULT_REGISTRY else self.registry

    @property
    def identifier(self) -> str:
        """What to ask the manifests endpoint for: the digest, else the tag, else ``latest``."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def familiar_name(self) -> str:
        """The short name as ``docker`` prints it (``nginx``, ``user/app``, ``quay.io/x/y``)."""
        if self.registry != DEFAULT_REGISTRY:
            return self.name
        path = self.repository
        short = path.removeprefix(OFFICIAL_REPO_PREFIX)
        if short != path and "/" not in short:
            # A 64-hex name alone would be refused as an image ID; keep it unambiguous.
            return self.name if _fullmatch(_IDENTIFIER, short) else short
        first = path.split("/", 1)[0]
        if first == "localhost" or "." in first:
            return self.name  # without docker.io/ it would name another registry
        return path

    @property
    def familiar(self) -> str:
        """The short form (``nginx:1.27``); parses back to the same reference."""
        return self.familiar_name + self._suffix()

    def __str__(self) -> str:
        return self.name + self._suffix()

    def _suffix(self) -> str:
        tag = f":{self.tag}" if self.tag is not None else ""
        digest = f"@{self.digest}" if self.digest is not None else ""
        return tag + digest

    # --- derived references ----------------------------------------------------------------

    def with_default_tag(self) -> Reference:
        """This reference with tag ``latest`` when it has neither tag nor digest."""
        if self.tag is None and self.digest is None:
            return Reference(self.registry, self.repository, DEFAULT_TAG, None)
        return self

    def with_tag(self, tag: str) -> Reference:
        """This reference with another tag (a digest is kept, as upstream's WithTag does)."""
        return Reference(self.registry, self.repository, tag, self.digest)

    def with_digest(self, digest: str) -> Reference:
        """This reference with another digest (a tag is kept, as upstream's WithDigest does)."""
        return Reference(self.registry, self.repository, self.tag, digest)

    def without_tag_and_digest(self) -> Reference:
        """Just the repository."""
        return Reference(self.registry, self.repository)

    def to_docker_ref(self) -> Reference:
        """containerd's ``ParseDockerRef`` form: the digest wins over a tag, else ``latest``."""
        if self.digest is not None:
            return Reference(self.registry, self.repository, None, self.digest)
        return self.with_default_tag()


def apply_default_tag(image: str) -> str:
    """The kubelet's ``applyDefaultImageTag``: appends ``:latest`` to the *original* string.

    ``busybox`` becomes ``busybox:latest``; a reference with a tag or a digest is returned as
    it is. The runtime receives this un-normalised string. Raises InvalidReferenceError.
    """
    ref = Reference.parse(image)
    if ref.digest is None and ref.tag is None:
        return f"{image}:{DEFAULT_TAG}"
    return image


# --- the parsing steps ------------------------------------------------------------------------


def _split_docker_domain(text: str) -> tuple[str, str, str]:
    """distribution's ``splitDockerDomain``: decides whether the first component is a host.

    Returns the registry, the remainder to parse after it, and the part the user wrote after
    the registry (the remainder without an added ``library/``), for error messages.
    """
    first, slash, rest = text.partition("/")
    if not slash:
        # A single element is always a Docker Hub name, even "localhost" or "example.com".
        return DEFAULT_REGISTRY, OFFICIAL_REPO_PREFIX + text, text
    if first == "localhost":
        domain, remainder = first, rest
    elif first == LEGACY_DEFAULT_REGISTRY:
        domain, remainder = DEFAULT_REGISTRY, rest
    elif "." in first or ":" in first or first.lower() != first:
        domain, remainder = first, rest
    else:
        domain, remainder = DEFAULT_REGISTRY, text
    written = remainder
    if domain == DEFAULT_REGISTRY and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder, written


def _parse_qualified(domain: str, remainder: str, written: str) -> Reference:
    """distribution's ``Parse`` of ``domain/remainder``, then the checks on its parts."""
    text = f"{domain}/{remainder}"
    match = _fullmatch(_REFERENCE, text)
    if match is None:
        if text.lower() != text and _fullmatch(_REFERENCE, text.lower()):
            raise InvalidReferenceError(ERR_NAME_CONTAINS_UPPERCASE)
        raise InvalidReferenceError(_explain_format_error(domain, written))
    name, tag, digest = match.group(1), match.group(2), match.group(3)
    name_match = _fullmatch(_ANCHORED_NAME, name)
    assert name_match is not None  # the reference regex already matched this name
    parsed_domain, path = name_match.group(1), name_match.group(2)
    if parsed_domain != domain:
        # Only happens when the would-be host is not a valid host (``foo_bar.com/app``):
        # upstream then parses the whole name as a path with no registry (see class docs).
        raise InvalidReferenceError(
            f"{ERR_REFERENCE_INVALID_FORMAT}: {_explain_domain(domain) or 'invalid registry host'}"
        )
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReferenceError(ERR_NAME_TOO_LONG)
    if digest is not None:
        _check_digest(digest)
    return Reference(domain, path, tag, digest)


def _check_path(path: str) -> None:
    if not _fullmatch(_REMOTE_NAME, path):
        detail = _explain_path(path)
        raise InvalidReferenceError(
            f"{ERR_REFERENCE_INVALID_FORMAT}: {detail}" if detail else ERR_REFERENCE_INVALID_FORMAT
        )
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReferenceError(ERR_NAME_TOO_LONG)


def _check_tag(tag: str) -> None:
    if not _fullmatch(_TAG, tag):
        detail = _explain_tag(tag)
        raise InvalidReferenceError(f"{ERR_TAG_INVALID_FORMAT}: {detail}")


def _check_digest(digest: str) -> None:
    """go-digest's ``Digest.Validate`` with its error texts, then the Rust validator."""
    algorithm, colon, encoded = digest.partition(":")
    if not colon or not algorithm or not encoded:
        raise InvalidReferenceError(ERR_DIGEST_INVALID_FORMAT)
    hex_length = _SUPPORTED_DIGEST_HEX_LENGTHS.get(algorithm)
    if hex_length is None:
        if _fullmatch(_GO_DIGEST_SHAPE, digest) and _fullmatch(_DIGEST, digest):
            raise InvalidReferenceError(
                f"{ERR_DIGEST_UNSUPPORTED}: {algorithm!r} (sha256 and sha512 are supported)"
            )
        raise InvalidReferenceError(ERR_DIGEST_INVALID_FORMAT)
    if len(encoded) != hex_length:
        raise InvalidReferenceError(
            f"{ERR_DIGEST_INVALID_LENGTH}: {algorithm} needs {hex_length} hex digits, "
            f"got {len(encoded)}"
        )
    if not _fullmatch(_DIGEST, digest):
        raise InvalidReferenceError(ERR_DIGEST_INVALID_FORMAT)
    try:
        validate_digest(digest)
    except InvalidDigestError:
        raise InvalidReferenceError(
            f"{ERR_DIGEST_INVALID_FORMAT}: the hex digits must be lowercase"
        ) from None


# --- naming the broken rule -------------------------------------------------------------------
# These run only after the grammar has refused the input, to say why; they never decide validity.


def _explain_format_error(domain: str, written: str) -> str:
    """Names the broken rule; ``written`` is what the user wrote after the registry."""
    name_and_tag, at, digest = written.partition("@")
    if at:
        if "@" in digest:
            return f"{ERR_REFERENCE_INVALID_FORMAT}: more than one '@'"
        if not _fullmatch(_DIGEST, digest):
            return (
                f"{ERR_REFERENCE_INVALID_FORMAT}: digest {_quote(digest)} is not algorithm:hex "
                "with at least 32 hex digits"
            )
    if "/" not in written and written.startswith("[") and _fullmatch(_DOMAIN, written):
        return (
            f"{ERR_REFERENCE_INVALID_FORMAT}: registry host {_quote(written)} needs a '/repository'"
        )
    path, colon, after = name_and_tag.rpartition(":")
    tag: str | None = after
    if not colon or "/" in after:
        path, tag = name_and_tag, None
    if at and not path:
        return f"{ERR_REFERENCE_INVALID_FORMAT}: a digest needs a repository name"
    detail = (
        _explain_domain(domain)
        or _explain_path(path)
        or (_explain_tag(tag) if tag is not None else None)
    )
    return f"{ERR_REFERENCE_INVALID_FORMAT}: {detail}" if detail else ERR_REFERENCE_INVALID_FORMAT


def _explain_tag(tag: str) -> str | None:
    if tag == "":
        return "tag must not be empty"
    if len(tag) > TAG_LENGTH_MAX:
        return f"tag is longer than {TAG_LENGTH_MAX} characters"
    if not re.fullmatch(r"\w", tag[0], re.ASCII):
        return f"tag {_quote(tag)} must start with a letter, digit or '_'"
    if not re.fullmatch(r"[\w.-]*", tag, re.ASCII):
        return f"tag {_quote(tag)} may contain only letters, digits, '_', '.' and '-'"
    return None


def _explain_domain(domain: str) -> str | None:
    if _fullmatch(_DOMAIN, domain):
        return None
    host, port = domain, None
    if domain.startswith("["):
        end = domain.find("]")
        if end < 0:
            return f"registry host {_quote(domain)} has an unclosed '['"
        host, rest = domain[: end + 1], domain[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                return f"registry host {_quote(domain)} has characters after ']'"
            port = rest[1:]
        if not _fullmatch(_IPV6, host):
            return f"registry host {_quote(host)} is not an IPv6 address (hex digits and ':' only)"
    else:
        host, colon, after = domain.partition(":")
        if colon:
            port = after
        labels = host.split(".")
        if not all(_fullmatch(_DOMAIN_NAME_COMPONENT, label) for label in labels):
            return (
                f"registry host {_quote(host)} is not a valid host name (letters, digits and '-' "
                "between dots, not starting or ending with '-')"
            )
    if port is not None and not re.fullmatch(r"[0-9]+", port, re.ASCII):
        return f"registry port {_quote(port)} must be a number"
    return f"invalid registry host {_quote(domain)}"


def _explain_path(path: str) -> str | None:
    if path == "":
        return ERR_NAME_EMPTY
    for component in path.split("/"):
        if component == "":
            return "repository name must not have empty components ('//' or a trailing '/')"
        if _fullmatch(_PATH_COMPONENT, component):
            continue
        if component.lower() != component:
            return ERR_NAME_CONTAINS_UPPERCASE
        if not re.fullmatch(r"[a-z0-9._-]+", component, re.ASCII):
            return (
                f"repository name component {_quote(component)} may contain only lowercase "
                "letters, digits and the separators '.', '_', '__', '-'"
            )
        if not (component[0].isalnum() and component[-1].isalnum()):
            return (
                f"repository name component {_quote(component)} must start and end with a "
                "lowercase letter or digit"
            )
        return (
            f"repository name component {_quote(component)} may separate its parts only by "
            "one '.', one '_', '__' or a run of '-'"
        )
    return None


def _quote(value: str) -> str:
    """``repr`` of a piece of user input, cut short so that huge inputs make short errors."""
    return repr(value if len(value) <= 80 else value[:77] + "...")
