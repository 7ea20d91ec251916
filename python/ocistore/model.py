"""The OCI / Docker image model: descriptors, manifests, indexes and configs.

Documents come from registries, i.e. from strangers, so parsing is strict: every field has its
type checked, digests are validated, sizes are non-negative, documents that could be read as
both an index and a manifest are refused (containerd GHSA-5j5w-g665-5m35), a ``mediaType`` that
contradicts the ``Content-Type`` is refused, duplicate JSON keys are refused (two parsers could
pick different values), and Docker schema 1 is refused with :class:`UnsupportedManifestError`.
Every failure is a :class:`ManifestError` subclass, never a ``KeyError`` or ``TypeError``.

The serialisers (``to_json``) write the fields this model knows, compactly and in a fixed
order, for images built here. To re-push a pulled document, push its original bytes: they are
what its digest names.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Final, NoReturn

from ocistore import mediatypes
from ocistore._core import validate_digest
from ocistore._valueclass import field, valueclass
from ocistore.digest import digest_bytes
from ocistore.errors import (
    AmbiguousManifestError,
    InvalidDigestError,
    InvalidPlatformError,
    ManifestError,
    ManifestTooLargeError,
    MediaTypeMismatchError,
    PlatformNotFoundError,
    UnsupportedManifestError,
)
from ocistore.mediatypes import MediaType
from ocistore.platform import Platform, PlatformMatcher, only

__all__ = [
    "ANNOTATION_REFERENCE_TYPE",
    "ATTESTATION_MANIFEST",
    "Annotations",
    "Descriptor",
    "History",
    "ImageConfig",
    "Index",
    "Manifest",
    "chain_ids",
    "parse_image_config",
    "parse_index",
    "parse_manifest",
    "parse_manifest_document",
]

# Content-Types that say nothing about which document this is.
_UNSPECIFIC_CONTENT_TYPES: Final = frozenset(
    {"", "application/json", "application/octet-stream", "text/plain", "binary/octet-stream"}
)

ANNOTATION_REFERENCE_TYPE: Final = "vnd.docker.reference.type"
ATTESTATION_MANIFEST: Final = "attestation-manifest"
_SCHEMA1_MESSAGE: Final = (
    "Docker image manifest schema 1 is not supported (deprecated signed format without a "
    "config or layer diff IDs; containerd 2 refuses it too): rebuild or re-push the image "
    "with a current client"
)


# --- descriptors --------------------------------------------------------------------------------

# RFC 6838 type/subtype, as the image-spec's descriptor schema spells it.
_MEDIA_TYPE_RE: Final = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}", re.ASCII
)
_MAX_SIZE: Final = 2**63 - 1  # Go's int64: what every registry and runtime can represent


class Annotations(Mapping[str, str]):
    """An immutable, hashable ``str -> str`` mapping (annotations, labels)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._items: dict[str, str] = dict(items)

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._items) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"Annotations({self._items!r})"

    def to_dict(self) -> dict[str, str]:
        """A plain dict, keys sorted (a stable serialisation)."""
        return dict(sorted(self._items.items()))


def _annotations(value: Mapping[str, str] | Annotations | None) -> Annotations:
    if isinstance(value, Annotations):
        return value
    return Annotations(value or {})


@valueclass(slots=True)
class Descriptor:
    """A content descriptor: what a blob is (media type), its digest and its size."""

    media_type: str
    digest: str
    size: int
    annotations: Annotations = field(default_factory=Annotations)
    platform: Platform | None = None
    urls: tuple[str, ...] = ()
    artifact_type: str | None = None
    data: bytes | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.annotations, Annotations):
            object.__setattr__(self, "annotations", _annotations(self.annotations))
        if not isinstance(self.urls, tuple):
            object.__setattr__(self, "urls", tuple(self.urls))
        if not isinstance(self.media_type, str) or not _MEDIA_TYPE_RE.fullmatch(self.media_type):
            raise ManifestError(f"invalid media type {self.media_type!r}")
        _check_digest(self.digest, "digest")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise ManifestError(f"size must be an integer, not {self.size!r}")
        if not 0 <= self.size <= _MAX_SIZE:
            raise ManifestError(f"size {self.size} is out of range (0 to 2^63-1)")
        if self.data is not None and len(self.data) != self.size:
            raise ManifestError(f"embedded data is {len(self.data)} bytes, size says {self.size}")

    @classmethod
    def of(
        cls,
        media_type: str,
        content: bytes,
        *,
        annotations: Mapping[str, str] | None = None,
        platform: Platform | None = None,
    ) -> Descriptor:
        """The descriptor of ``content`` (hashed here)."""
        return cls(
            media_type,
            digest_bytes(content),
            len(content),
            annotations=_annotations(annotations),
            platform=platform,
        )

    @property
    def is_layer(self) -> bool:
        """Whether this describes an image layer."""
        return mediatypes.is_layer(self.media_type)

    @property
    def is_nondistributable(self) -> bool:
        """A non-distributable (foreign) layer, usually fetched from ``urls``."""
        return mediatypes.is_nondistributable(self.media_type)

    @property
    def is_attestation(self) -> bool:
        """A BuildKit attestation manifest in an index: never an image to run."""
        return self.annotations.get(ANNOTATION_REFERENCE_TYPE) == ATTESTATION_MANIFEST

    def to_dict(self) -> dict[str, object]:
        """The OCI JSON object (Go struct field order, empty fields left out)."""
        data: dict[str, object] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.urls:
            data["urls"] = list(self.urls)
        if self.annotations:
            data["annotations"] = self.annotations.to_dict()
        if self.data is not None:
            data["data"] = base64.b64encode(self.data).decode("ascii")
        if self.platform is not None:
            data["platform"] = self.platform.to_dict()
        if self.artifact_type is not None:
            data["artifactType"] = self.artifact_type
        return data


# --- manifests, indexes -------------------------------------------------------------------------


@valueclass(slots=True)
class Manifest:
    """An image manifest (OCI image manifest or Docker schema 2)."""

    config: Descriptor
    layers: tuple[Descriptor, ...]
    media_type: str = MediaType.OCI_MANIFEST
    annotations: Annotations = field(default_factory=Annotations)
    subject: Descriptor | None = None
    artifact_type: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.layers, tuple):
            object.__setattr__(self, "layers", tuple(self.layers))
        if not isinstance(self.annotations, Annotations):
            object.__setattr__(self, "annotations", _annotations(self.annotations))
        if not mediatypes.is_manifest(self.media_type):
            raise UnsupportedManifestError(f"{self.media_type!r} is not an image manifest type")

    @property
    def is_docker(self) -> bool:
        """A Docker schema 2 manifest (rather than OCI)."""
        return mediatypes.base(self.media_type) == MediaType.DOCKER_MANIFEST

    def check_config(self, config: ImageConfig) -> None:
        """Raises ManifestError unless the config lists one diff ID per layer."""
        if len(config.diff_ids) != len(self.layers):
            raise ManifestError(
                f"the manifest has {len(self.layers)} layers but the config lists "
                f"{len(config.diff_ids)} diff IDs"
            )

    def to_dict(self) -> dict[str, object]:
        """The JSON object."""
        data: dict[str, object] = {"schemaVersion": 2, "mediaType": self.media_type}
        if self.artifact_type is not None:
            data["artifactType"] = self.artifact_type
        data["config"] = self.config.to_dict()
        data["layers"] = [layer.to_dict() for layer in self.layers]
        if self.subject is not None:
            data["subject"] = self.subject.to_dict()
        if self.annotations:
            data["annotations"] = self.annotations.to_dict()
        return data

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON in a fixed field order, ready to push."""
        return _dump(self.to_dict())


@valueclass(slots=True)
class Index:
    """An image index (OCI image index or Docker manifest list)."""

    manifests: tuple[Descriptor, ...]
    media_type: str = MediaType.OCI_INDEX
    annotations: Annotations = field(default_factory=Annotations)
    subject: Descriptor | None = None
    artifact_type: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.manifests, tuple):
            object.__setattr__(self, "manifests", tuple(self.manifests))
        if not isinstance(self.annotations, Annotations):
            object.__setattr__(self, "annotations", _annotations(self.annotations))
        if not mediatypes.is_index(self.media_type):
            raise UnsupportedManifestError(f"{self.media_type!r} is not an image index type")

    def runnable(self) -> list[Descriptor]:
        """Entries that can be an image to run: manifests with a platform, not attestations."""
        return [
            entry
            for entry in self.manifests
            if entry.platform is not None
            and not entry.is_attestation
            and (mediatypes.is_manifest(entry.media_type) or mediatypes.is_index(entry.media_type))
        ]

    def matching(
        self, platform: Platform | str | PlatformMatcher | None = None
    ) -> list[Descriptor]:
        """Entries that run on ``platform`` (default: this host), best first."""
        matcher = _matcher(platform)
        return matcher.ordered(self.runnable(), key=lambda entry: entry.platform)

    def select(self, platform: Platform | str | PlatformMatcher | None = None) -> Descriptor:
        """The entry containerd would pull for ``platform``; PlatformNotFoundError if none."""
        matcher = _matcher(platform)
        candidates = self.matching(matcher)
        if not candidates:
            offered = ", ".join(str(e.platform) for e in self.runnable()) or "none"
            raise PlatformNotFoundError(
                f"no image in the index runs on {matcher.wanted} (the index offers: {offered})"
            )
        return candidates[0]

    def to_dict(self) -> dict[str, object]:
        """The JSON object."""
        data: dict[str, object] = {"schemaVersion": 2, "mediaType": self.media_type}
        if self.artifact_type is not None:
            data["artifactType"] = self.artifact_type
        data["manifests"] = [entry.to_dict() for entry in self.manifests]
        if self.subject is not None:
            data["subject"] = self.subject.to_dict()
        if self.annotations:
            data["annotations"] = self.annotations.to_dict()
        return data

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON in a fixed field order, ready to push."""
        return _dump(self.to_dict())


def _matcher(platform: Platform | str | PlatformMatcher | None) -> PlatformMatcher:
    if isinstance(platform, PlatformMatcher):
        return platform
    return only(platform if platform is not None else Platform.host())


# --- image config -------------------------------------------------------------------------------


@valueclass(slots=True)
class History:
    """One entry of a config's history (``empty_layer`` entries made no layer)."""

    created: str | None = None
    created_by: str | None = None
    author: str | None = None
    comment: str | None = None
    empty_layer: bool = False

    def to_dict(self) -> dict[str, object]:
        """The JSON object."""
        data: dict[str, object] = {}
        for key, value in (
            ("created", self.created),
            ("created_by", self.created_by),
            ("author", self.author),
            ("comment", self.comment),
        ):
            if value is not None:
                data[key] = value
        if self.empty_layer:
            data["empty_layer"] = True
        return data


@valueclass(slots=True)
class ImageConfig:
    """An image configuration (OCI config or Docker container image config)."""

    architecture: str
    os: str
    diff_ids: tuple[str, ...]
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = ()
    created: str | None = None
    author: str | None = None
    user: str = ""
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    working_dir: str = ""
    labels: Annotations = field(default_factory=Annotations)
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    stop_signal: str = ""
    history: tuple[History, ...] = ()

    def __post_init__(self) -> None:
        for name in ("diff_ids", "os_features", "env", "exposed_ports", "volumes", "history"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        for name in ("entrypoint", "cmd"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        if not isinstance(self.labels, Annotations):
            object.__setattr__(self, "labels", _annotations(self.labels))
        for position, diff_id in enumerate(self.diff_ids):
            _check_digest(diff_id, f"rootfs.diff_ids[{position}]")

    @property
    def platform(self) -> Platform:
        """The platform the image was built for."""
        return Platform(self.os, self.architecture, self.variant, self.os_version, self.os_features)

    def chain_ids(self) -> list[str]:
        """The layers' ChainIDs, base first (the keys of unpacked snapshots)."""
        return chain_ids(self.diff_ids)

    def to_dict(self) -> dict[str, object]:
        """The JSON object (OCI image config)."""
        data: dict[str, object] = {}
        if self.created is not None:
            data["created"] = self.created
        if self.author is not None:
            data["author"] = self.author
        data["architecture"] = self.architecture
        if self.variant:
            data["variant"] = self.variant
        data["os"] = self.os
        if self.os_version:
            data["os.version"] = self.os_version
        if self.os_features:
            data["os.features"] = list(self.os_features)
        config: dict[str, object] = {}
        if self.user:
            config["User"] = self.user
        if self.exposed_ports:
            config["ExposedPorts"] = {port: {} for port in self.exposed_ports}
        if self.env:
            config["Env"] = list(self.env)
        if self.entrypoint is not None:
            config["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            config["Cmd"] = list(self.cmd)
        if self.volumes:
            config["Volumes"] = {volume: {} for volume in self.volumes}
        if self.working_dir:
            config["WorkingDir"] = self.working_dir
        if self.labels:
            config["Labels"] = self.labels.to_dict()
        if self.stop_signal:
            config["StopSignal"] = self.stop_signal
        if config:
            data["config"] = config
        data["rootfs"] = {"type": "layers", "diff_ids": list(self.diff_ids)}
        if self.history:
            data["history"] = [entry.to_dict() for entry in self.history]
        return data

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON in a fixed field order, ready to push."""
        return _dump(self.to_dict())


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """ChainID(L0) = DiffID(L0); ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(n))."""
    result: list[str] = []
    for diff_id in diff_ids:
        _check_digest(diff_id, "diff ID")
        result.append(
            diff_id if not result else digest_bytes(f"{result[-1]} {diff_id}".encode("ascii"))
        )
    return result


# --- parsing ------------------------------------------------------------------------------------


def parse_manifest_document(data: bytes, content_type: str | None = None) -> Manifest | Index:
    """Parses a manifest or index from a registry; ``content_type`` is the response's.

    The kind is decided by the body's ``mediaType`` and the Content-Type (which must agree),
    falling back to the document's structure when neither names one (OCI's ``mediaType`` is
    optional). Raises a ManifestError subclass for anything malformed or ambiguous.
    """
    document = _load_json(data, mediatypes.MAX_MANIFEST_SIZE, "manifest")
    header_type = mediatypes.base(content_type or "")
    if mediatypes.is_schema1(header_type):
        raise UnsupportedManifestError(_SCHEMA1_MESSAGE)
    schema_version = document.get("schemaVersion")
    if schema_version == 1 and not isinstance(schema_version, bool):
        raise UnsupportedManifestError(_SCHEMA1_MESSAGE)
    if type(schema_version) is not int or schema_version != 2:
        raise ManifestError(f"schemaVersion must be 2, not {schema_version!r}")

    fields = _Fields(document, "")
    body_type = fields.optional_str("mediaType")
    if body_type is not None:
        body_base = mediatypes.base(body_type)
        if mediatypes.is_schema1(body_base):
            raise UnsupportedManifestError(_SCHEMA1_MESSAGE)
        if header_type not in _UNSPECIFIC_CONTENT_TYPES and body_base != header_type:
            raise MediaTypeMismatchError(
                f"the document says mediaType {body_type!r} but was served as {content_type!r}"
            )
    declared = body_type if body_type is not None else header_type
    declared_base = mediatypes.base(declared)
    is_index = mediatypes.is_index(declared_base)
    is_manifest = mediatypes.is_manifest(declared_base)
    if body_type is not None and not (is_index or is_manifest):
        raise UnsupportedManifestError(f"unsupported manifest media type {body_type!r}")

    looks_like_index = "manifests" in document
    looks_like_manifest = "config" in document or "layers" in document
    if looks_like_index and looks_like_manifest:
        raise AmbiguousManifestError(
            "the document has both 'manifests' (an index) and 'config'/'layers' (a manifest); "
            "refusing to guess (GHSA-5j5w-g665-5m35)"
        )
    if is_index:
        if looks_like_manifest:
            raise AmbiguousManifestError(f"a {declared} must not have 'config' or 'layers'")
        return _parse_index(fields, declared_base)
    if is_manifest:
        if looks_like_index:
            raise AmbiguousManifestError(f"a {declared} must not have 'manifests'")
        return _parse_manifest(fields, declared_base)
    if declared_base not in _UNSPECIFIC_CONTENT_TYPES:
        raise UnsupportedManifestError(f"unsupported manifest media type {declared!r}")
    # No type named anywhere: an OCI document without mediaType. Decide by structure.
    if looks_like_index:
        return _parse_index(fields, MediaType.OCI_INDEX)
    if looks_like_manifest:
        return _parse_manifest(fields, MediaType.OCI_MANIFEST)
    raise ManifestError("the document is neither an image manifest nor an index")


def parse_manifest(data: bytes, content_type: str | None = None) -> Manifest:
    """Parses an image manifest; a ManifestError if the document is an index."""
    document = parse_manifest_document(data, content_type)
    if not isinstance(document, Manifest):
        raise ManifestError("expected an image manifest, got an index")
    return document


def parse_index(data: bytes, content_type: str | None = None) -> Index:
    """Parses an image index; a ManifestError if the document is a manifest."""
    document = parse_manifest_document(data, content_type)
    if not isinstance(document, Index):
        raise ManifestError("expected an image index, got a manifest")
    return document


def parse_image_config(data: bytes, *, max_size: int = mediatypes.MAX_CONFIG_SIZE) -> ImageConfig:
    """Parses an image config blob (OCI or Docker); raises ManifestError when malformed."""
    fields = _Fields(_load_json(data, max_size, "image config"), "")
    rootfs = fields.required_object("rootfs")
    rootfs_type = rootfs.required_str("type")
    if rootfs_type != "layers":
        raise ManifestError(f"rootfs.type must be 'layers', not {rootfs_type!r}")
    diff_ids = tuple(rootfs.str_list("diff_ids", required=True) or ())
    for position, diff_id in enumerate(diff_ids):
        _check_digest(diff_id, f"rootfs.diff_ids[{position}]")

    runtime = fields.optional_object("config")
    entrypoint = runtime.str_list("Entrypoint") if runtime else None
    cmd = runtime.str_list("Cmd") if runtime else None
    history = tuple(
        History(
            created=entry.optional_str("created"),
            created_by=entry.optional_str("created_by"),
            author=entry.optional_str("author"),
            comment=entry.optional_str("comment"),
            empty_layer=entry.optional_bool("empty_layer"),
        )
        for entry in fields.object_list("history")
    )
    return ImageConfig(
        architecture=fields.required_str("architecture"),
        os=fields.required_str("os"),
        diff_ids=diff_ids,
        variant=fields.optional_str("variant") or "",
        os_version=fields.optional_str("os.version") or "",
        os_features=tuple(fields.str_list("os.features") or ()),
        created=fields.optional_str("created"),
        author=fields.optional_str("author"),
        user=(runtime.optional_str("User") if runtime else None) or "",
        env=tuple((runtime.str_list("Env") if runtime else None) or ()),
        entrypoint=tuple(entrypoint) if entrypoint is not None else None,
        cmd=tuple(cmd) if cmd is not None else None,
        working_dir=(runtime.optional_str("WorkingDir") if runtime else None) or "",
        labels=runtime.str_map("Labels") if runtime else Annotations(),
        exposed_ports=tuple(sorted(runtime.key_set("ExposedPorts"))) if runtime else (),
        volumes=tuple(sorted(runtime.key_set("Volumes"))) if runtime else (),
        stop_signal=(runtime.optional_str("StopSignal") if runtime else None) or "",
        history=history,
    )


def _parse_manifest(fields: _Fields, media_type: str) -> Manifest:
    config = _parse_descriptor(fields.required_object("config"))
    layer_fields = fields.object_list("layers", required=True)
    return Manifest(
        config=config,
        layers=tuple(_parse_descriptor(layer) for layer in layer_fields),
        media_type=media_type,
        annotations=fields.str_map("annotations"),
        subject=_optional_descriptor(fields, "subject"),
        artifact_type=_optional_media_type(fields, "artifactType"),
    )


def _parse_index(fields: _Fields, media_type: str) -> Index:
    return Index(
        manifests=tuple(
            _parse_descriptor(entry) for entry in fields.object_list("manifests", required=True)
        ),
        media_type=media_type,
        annotations=fields.str_map("annotations"),
        subject=_optional_descriptor(fields, "subject"),
        artifact_type=_optional_media_type(fields, "artifactType"),
    )


def _optional_descriptor(fields: _Fields, key: str) -> Descriptor | None:
    nested = fields.optional_object(key)
    return _parse_descriptor(nested) if nested is not None else None


def _optional_media_type(fields: _Fields, key: str) -> str | None:
    value = fields.optional_str(key)
    if value is not None and not _MEDIA_TYPE_RE.fullmatch(value):
        fields.fail(key, f"is not a media type: {value!r}")
    return value


def _parse_descriptor(fields: _Fields) -> Descriptor:
    media_type = fields.required_str("mediaType")
    if not _MEDIA_TYPE_RE.fullmatch(media_type):
        fields.fail("mediaType", f"is not a media type: {media_type!r}")
    digest = fields.required_str("digest")
    _check_digest(digest, fields.where("digest"))
    size = fields.required_int("size")
    if not 0 <= size <= _MAX_SIZE:
        fields.fail("size", f"is out of range (0 to 2^63-1): {size}")
    platform_fields = fields.optional_object("platform")
    platform = None
    if platform_fields is not None:
        try:
            platform = Platform.from_dict(platform_fields.document)
        except InvalidPlatformError as err:
            raise ManifestError(f"{fields.where('platform')}: {err}") from None
    encoded = fields.optional_str("data")
    data = None
    if encoded is not None:
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            fields.fail("data", "is not valid base64")
        if len(data) != size or digest_bytes(data, digest.split(":", 1)[0]) != digest:
            fields.fail("data", "does not match the descriptor's size and digest")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        annotations=fields.str_map("annotations"),
        platform=platform,
        urls=tuple(fields.str_list("urls") or ()),
        artifact_type=_optional_media_type(fields, "artifactType"),
        data=data,
    )


def _check_digest(digest: object, where: str) -> None:
    if not isinstance(digest, str):
        raise ManifestError(f"{where}: a digest must be a string, not {digest!r}")
    try:
        validate_digest(digest)
    except InvalidDigestError as err:
        raise ManifestError(f"{where}: {err}") from None


# --- strict JSON ------------------------------------------------------------------------------


def _load_json(data: bytes, max_size: int, what: str) -> dict[str, object]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"a {what} must be bytes, not {type(data).__name__}")
    if len(data) > max_size:
        raise ManifestTooLargeError(f"the {what} is {len(data)} bytes, over the {max_size} limit")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as err:
        raise ManifestError(f"the {what} is not UTF-8: {err}") from None
    try:
        document = json.loads(
            text, object_pairs_hook=_refuse_duplicate_keys, parse_constant=_refuse_constant
        )
    except json.JSONDecodeError as err:
        raise ManifestError(f"the {what} is not valid JSON: {err}") from None
    except RecursionError:
        raise ManifestError(f"the {what} is nested too deeply") from None
    if not isinstance(document, dict):
        raise ManifestError(f"the {what} must be a JSON object, not {_json_type(document)}")
    return document


def _refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    document: dict[str, object] = {}
    for key, value in pairs:
        if key in document:
            # Parsers disagree on which duplicate wins; that is a way to smuggle content.
            raise ManifestError(f"duplicate JSON key {key!r}")
        document[key] = value
    return document


def _refuse_constant(name: str) -> NoReturn:
    raise ManifestError(f"{name} is not valid JSON")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


class _Fields:
    """Typed access to one JSON object, with the path in every error message."""

    def __init__(self, document: Mapping[str, object], path: str) -> None:
        self.document = document
        self.path = path

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, problem: str) -> NoReturn:
        raise ManifestError(f"{self.where(key)} {problem}")

    def _typed(self, key: str, kind: type, kind_name: str, required: bool) -> object:
        value = self.document.get(key)
        if value is None:
            if required:
                self.fail(key, "is required")
            return None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.fail(key, f"must be {kind_name}, not {_json_type(value)}")
        return value

    def required_str(self, key: str) -> str:
        value = self._typed(key, str, "a string", True)
        assert isinstance(value, str)
        return value

    def optional_str(self, key: str) -> str | None:
        value = self._typed(key, str, "a string", False)
        return value if isinstance(value, str) else None

    def optional_bool(self, key: str) -> bool:
        return self._typed(key, bool, "a boolean", False) is True

    def required_int(self, key: str) -> int:
        value = self._typed(key, int, "an integer", True)
        assert isinstance(value, int)
        return value

    def required_object(self, key: str) -> _Fields:
        value = self._typed(key, dict, "an object", True)
        assert isinstance(value, dict)
        return _Fields(value, self.where(key))

    def optional_object(self, key: str) -> _Fields | None:
        value = self._typed(key, dict, "an object", False)
        return _Fields(value, self.where(key)) if isinstance(value, dict) else None

    def object_list(self, key: str, required: bool = False) -> list[_Fields]:
        value = self._typed(key, list, "an array", required)
        if not isinstance(value, list):
            return []
        items: list[_Fields] = []
        for position, item in enumerate(value):
            if not isinstance(item, dict):
                self.fail(f"{key}[{position}]", f"must be an object, not {_json_type(item)}")
            items.append(_Fields(item, f"{self.where(key)}[{position}]"))
        return items

    def str_list(self, key: str, required: bool = False) -> list[str] | None:
        value = self._typed(key, list, "an array", required)
        if not isinstance(value, list):
            return None
        for position, item in enumerate(value):
            if not isinstance(item, str):
                self.fail(f"{key}[{position}]", f"must be a string, not {_json_type(item)}")
        return [item for item in value if isinstance(item, str)]

    def str_map(self, key: str) -> Annotations:
        value = self._typed(key, dict, "an object", False)
        if not isinstance(value, dict):
            return Annotations()
        for name, item in value.items():
            if not isinstance(item, str):
                self.fail(f"{key}.{name}", f"must be a string, not {_json_type(item)}")
        return Annotations({name: item for name, item in value.items() if isinstance(item, str)})

    def key_set(self, key: str) -> set[str]:
        value = self._typed(key, dict, "an object", False)
        return set(value) if isinstance(value, dict) else set()


def _dump(document: dict[str, object]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
