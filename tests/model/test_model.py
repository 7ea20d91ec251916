"""The image model: media types, descriptors, manifests, indexes, configs and strict parsing."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocistore import (
    AmbiguousManifestError,
    Annotations,
    Descriptor,
    History,
    ImageConfig,
    Index,
    Manifest,
    ManifestError,
    ManifestTooLargeError,
    MediaTypeMismatchError,
    Platform,
    PlatformNotFoundError,
    UnsupportedManifestError,
    chain_ids,
    digest_bytes,
    only,
    parse_image_config,
    parse_index,
    parse_manifest,
    parse_manifest_document,
)
from ocistore.mediatypes import Compression, compression

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def oci_manifest(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": D1,
            "size": 7,
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D2, "size": 32},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": D3, "size": 0},
        ],
        "annotations": {"org.opencontainers.image.title": "demo"},
    }
    document.update(overrides)
    return document


def oci_index(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": D1,
                "size": 100,
                "platform": {"architecture": "amd64", "os": "linux"},
            },
            {
                "mediaType": OCI_MANIFEST,
                "digest": D2,
                "size": 100,
                "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
            },
            {
                "mediaType": OCI_MANIFEST,
                "digest": D3,
                "size": 100,
                "platform": {"architecture": "unknown", "os": "unknown"},
                "annotations": {
                    "vnd.docker.reference.type": "attestation-manifest",
                    "vnd.docker.reference.digest": D1,
                },
            },
        ],
    }
    document.update(overrides)
    return document


def encode(document: object) -> bytes:
    return json.dumps(document).encode()


# --- manifests ------------------------------------------------------------------------------


def test_parse_oci_manifest() -> None:
    manifest = parse_manifest(encode(oci_manifest()), OCI_MANIFEST)
    assert manifest.media_type == OCI_MANIFEST
    assert manifest.config.digest == D1 and manifest.config.size == 7
    assert [layer.digest for layer in manifest.layers] == [D2, D3]
    assert [compression(layer.media_type) for layer in manifest.layers] == [
        Compression.GZIP,
        Compression.ZSTD,
    ]
    assert all(layer.is_layer for layer in manifest.layers)
    assert manifest.annotations == {"org.opencontainers.image.title": "demo"}
    assert not manifest.is_docker
    assert hash(manifest) == hash(parse_manifest(encode(oci_manifest())))


def test_parse_docker_manifest_with_content_type_parameters() -> None:
    document = oci_manifest(mediaType=DOCKER_MANIFEST)
    document["layers"][0]["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    manifest = parse_manifest(encode(document), f"{DOCKER_MANIFEST}; charset=utf-8")
    assert manifest.is_docker
    del document["mediaType"]
    untyped = parse_manifest(encode(document), f" {DOCKER_MANIFEST.upper()} ; charset=utf-8")
    assert untyped.media_type == DOCKER_MANIFEST  # parameters dropped, canonical case
    assert compression(manifest.layers[0].media_type) is Compression.GZIP


def test_manifest_round_trip_through_json() -> None:
    manifest = Manifest(
        config=Descriptor.of("application/vnd.oci.image.config.v1+json", b"{}"),
        layers=(
            Descriptor.of("application/vnd.oci.image.layer.v1.tar", b"layer"),
            Descriptor(
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                D2,
                10,
                urls=("https://example.com/blob",),
            ),
        ),
        annotations={"b": "2", "a": "1"},
        subject=Descriptor(OCI_MANIFEST, D1, 3),
        artifact_type="application/vnd.example+type",
    )
    data = manifest.to_json()
    assert data.startswith(b'{"schemaVersion":2,"mediaType":"' + OCI_MANIFEST.encode())
    assert b" " not in data  # compact
    assert b'"annotations":{"a":"1","b":"2"}' in data  # sorted keys
    assert parse_manifest_document(data, OCI_MANIFEST) == manifest
    assert manifest.layers[1].is_nondistributable
    assert manifest.config.digest == "sha256:" + hashlib.sha256(b"{}").hexdigest()


def test_index_round_trip_and_selection() -> None:
    index = parse_index(encode(oci_index()), OCI_INDEX)
    assert parse_index(index.to_json()) == index
    assert index.select("linux/amd64").digest == D1
    assert index.select(Platform.parse("linux/arm64")).digest == D2
    assert index.select(only("linux/arm64/v8.2")).digest == D2
    assert index.select("linux/amd64/v3").digest == D1
    assert [d.digest for d in index.runnable()] == [D1, D2]  # attestation skipped
    host = Platform.host()
    if host.architecture in ("amd64", "arm64"):
        assert index.select().platform is not None
    with pytest.raises(PlatformNotFoundError, match=r"linux/s390x .*offers: linux/amd64"):
        index.select("linux/s390x")
    # "unknown/unknown" is never chosen, even when asked for: attestation entries are skipped.
    with pytest.raises(PlatformNotFoundError):
        index.select(Platform("unknown", "unknown"))


def test_index_prefers_first_entry_among_equals_and_skips_entries_without_platform() -> None:
    document = oci_index()
    document["manifests"] = [
        {"mediaType": OCI_MANIFEST, "digest": D3, "size": 1},
        {"mediaType": "application/vnd.example.unknown", "digest": D3, "size": 1,
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": OCI_MANIFEST, "digest": D1, "size": 1,
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": OCI_MANIFEST, "digest": D2, "size": 1,
         "platform": {"os": "linux", "architecture": "amd64"}},
    ]  # fmt: skip
    index = parse_index(encode(document))
    assert index.select("linux/amd64").digest == D1
    assert len(index.matching("linux/amd64")) == 2


def test_docker_manifest_list() -> None:
    document = oci_index(mediaType=DOCKER_LIST)
    for entry in document["manifests"]:
        entry["mediaType"] = DOCKER_MANIFEST
    index = parse_manifest_document(encode(document), DOCKER_LIST)
    assert isinstance(index, Index) and index.media_type == DOCKER_LIST
    assert index.select("linux/arm64").digest == D2


def test_documents_without_media_type_are_sniffed() -> None:
    manifest = oci_manifest()
    del manifest["mediaType"]
    parsed = parse_manifest_document(encode(manifest), "application/json")
    assert isinstance(parsed, Manifest) and parsed.media_type == OCI_MANIFEST
    index = oci_index()
    del index["mediaType"]
    parsed_index = parse_manifest_document(encode(index))
    assert isinstance(parsed_index, Index) and parsed_index.media_type == OCI_INDEX
    # The Content-Type names the type when the body does not.
    typed = parse_manifest_document(encode(manifest), DOCKER_MANIFEST)
    assert isinstance(typed, Manifest) and typed.is_docker


def test_parse_manifest_and_parse_index_check_the_kind() -> None:
    with pytest.raises(ManifestError, match="expected an image manifest, got an index"):
        parse_manifest(encode(oci_index()))
    with pytest.raises(ManifestError, match="expected an image index, got a manifest"):
        parse_index(encode(oci_manifest()))


SCHEMA1 = {
    "schemaVersion": 1,
    "name": "library/hello",
    "tag": "latest",
    "architecture": "amd64",
    "fsLayers": [{"blobSum": D1}],
    "history": [{"v1Compatibility": "{}"}],
    "signatures": [],
}


@pytest.mark.parametrize(
    ("document", "content_type"),
    [
        (SCHEMA1, "application/vnd.docker.distribution.manifest.v1+prettyjws"),
        (SCHEMA1, "application/vnd.docker.distribution.manifest.v1+json"),
        (SCHEMA1, None),
        (SCHEMA1, "text/plain"),
        (oci_manifest(), "application/vnd.docker.distribution.manifest.v1+prettyjws"),
        (
            oci_manifest(mediaType="application/vnd.docker.distribution.manifest.v1+json"),
            None,
        ),
    ],
)
def test_schema1_is_refused_clearly(document: dict[str, Any], content_type: str | None) -> None:
    with pytest.raises(UnsupportedManifestError, match="schema 1 is not supported"):
        parse_manifest_document(encode(document), content_type)


# (document, content type, error class, message fragment)
MALFORMED: list[tuple[object, str | None, type[ManifestError], str]] = [
    # GHSA-5j5w-g665-5m35: a document that is both an index and a manifest
    ({**oci_manifest(), "manifests": []}, None, AmbiguousManifestError, "both 'manifests'"),
    ({**oci_manifest(), "manifests": []}, OCI_MANIFEST, AmbiguousManifestError, "both"),
    ({**oci_index(), "layers": []}, OCI_INDEX, AmbiguousManifestError, "both"),
    ({**oci_index(), "config": {}}, None, AmbiguousManifestError, "both"),
    (
        {k: v for k, v in oci_index().items() if k != "mediaType"} | {"config": {}},
        OCI_INDEX,
        AmbiguousManifestError,
        "both",
    ),
    # the index media type on a manifest body and the other way round
    (oci_manifest(mediaType=OCI_INDEX), None, AmbiguousManifestError, "must not have 'config'"),
    (oci_index(mediaType=OCI_MANIFEST), None, AmbiguousManifestError, "must not have 'manifests'"),
    # mediaType contradicting Content-Type
    (oci_manifest(), DOCKER_MANIFEST, MediaTypeMismatchError, "served as"),
    (oci_manifest(), OCI_INDEX, MediaTypeMismatchError, "served as"),
    (oci_index(), DOCKER_LIST, MediaTypeMismatchError, "served as"),
    # unknown document types
    (oci_manifest(mediaType="application/vnd.oci.artifact.manifest.v1+json"), None,
     UnsupportedManifestError, "unsupported manifest media type"),
    (oci_manifest(), "application/vnd.example+json", MediaTypeMismatchError, "served as"),
    ({k: v for k, v in oci_manifest().items() if k != "mediaType"},
     "application/vnd.example+json", UnsupportedManifestError, "unsupported manifest media type"),
    # top level
    ([], None, ManifestError, "must be a JSON object, not an array"),
    ("text", None, ManifestError, "must be a JSON object, not a string"),
    (None, None, ManifestError, "must be a JSON object, not null"),
    ({}, None, ManifestError, "schemaVersion must be 2, not None"),
    (oci_manifest(schemaVersion=3), None, ManifestError, "schemaVersion must be 2, not 3"),
    (oci_manifest(schemaVersion="2"), None, ManifestError, "schemaVersion must be 2"),
    (oci_manifest(schemaVersion=True), None, ManifestError, "schemaVersion must be 2"),
    (oci_manifest(schemaVersion=2.0), None, ManifestError, "schemaVersion must be 2, not 2.0"),
    ({"schemaVersion": 2}, None, ManifestError, "neither an image manifest nor an index"),
    (oci_manifest(mediaType=5), None, ManifestError, "mediaType must be a string, not a number"),
    # manifest fields
    (oci_manifest(config=None), None, ManifestError, "config is required"),
    (oci_manifest(config=[]), None, ManifestError, "config must be an object, not an array"),
    (oci_manifest(layers=None), None, ManifestError, "layers is required"),
    (oci_manifest(layers={}), None, ManifestError, "layers must be an array, not an object"),
    (oci_manifest(layers=["x"]), None, ManifestError, "layers[0] must be an object, not a string"),
    (oci_manifest(annotations={"a": 1}), None, ManifestError, "annotations.a must be a string"),
    (oci_manifest(annotations=[]), None, ManifestError, "annotations must be an object"),
    (oci_manifest(subject="x"), None, ManifestError, "subject must be an object"),
    (oci_manifest(artifactType="not a type"), None, ManifestError, "artifactType is not a"),
    (oci_index(manifests=None), None, ManifestError, "manifests is required"),
    (oci_index(manifests=[1]), None, ManifestError, "manifests[0] must be an object"),
]  # fmt: skip


def _layer(**fields: Any) -> dict[str, Any]:
    return oci_manifest(layers=[fields])


GOOD_LAYER = {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": D1, "size": 1}
DESCRIPTOR_PROBLEMS: list[tuple[dict[str, Any], str]] = [
    ({**GOOD_LAYER, "size": -1}, "layers[0].size is out of range"),
    ({**GOOD_LAYER, "size": 2**63}, "layers[0].size is out of range"),
    ({**GOOD_LAYER, "size": 1.5}, "layers[0].size must be an integer, not a number"),
    ({**GOOD_LAYER, "size": True}, "layers[0].size must be an integer, not a boolean"),
    ({**GOOD_LAYER, "size": "1"}, "layers[0].size must be an integer, not a string"),
    ({k: v for k, v in GOOD_LAYER.items() if k != "size"}, "layers[0].size is required"),
    ({k: v for k, v in GOOD_LAYER.items() if k != "digest"}, "layers[0].digest is required"),
    ({**GOOD_LAYER, "digest": "sha256:abc"}, "layers[0].digest"),
    ({**GOOD_LAYER, "digest": "sha256:" + "A" * 64}, "layers[0].digest"),
    ({**GOOD_LAYER, "digest": "md5:" + "a" * 32}, "layers[0].digest"),
    ({**GOOD_LAYER, "digest": "sha256:../../../etc/passwd"}, "layers[0].digest"),
    ({**GOOD_LAYER, "digest": 5}, "layers[0].digest must be a string"),
    ({**GOOD_LAYER, "mediaType": "tar"}, "layers[0].mediaType is not a media type"),
    ({**GOOD_LAYER, "mediaType": ""}, "layers[0].mediaType is not a media type"),
    ({**GOOD_LAYER, "mediaType": None}, "layers[0].mediaType is required"),
    ({**GOOD_LAYER, "urls": "http://x"}, "layers[0].urls must be an array"),
    ({**GOOD_LAYER, "urls": [1]}, "layers[0].urls[0] must be a string"),
    ({**GOOD_LAYER, "platform": {"os": "linux"}}, "layers[0].platform: platform 'architecture'"),
    ({**GOOD_LAYER, "platform": []}, "layers[0].platform must be an object"),
    ({**GOOD_LAYER, "data": "!!!"}, "layers[0].data is not valid base64"),
    ({**GOOD_LAYER, "data": base64.b64encode(b"x").decode()}, "does not match"),
]


@pytest.mark.parametrize(("document", "content_type", "error", "fragment"), MALFORMED)
def test_malformed_documents_give_typed_errors(
    document: object, content_type: str | None, error: type[ManifestError], fragment: str
) -> None:
    with pytest.raises(error) as caught:
        parse_manifest_document(encode(document), content_type)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(("layer", "fragment"), DESCRIPTOR_PROBLEMS)
def test_malformed_descriptors_give_typed_errors(layer: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest_document(encode(oci_manifest(layers=[layer])))
    assert fragment in str(caught.value)


def test_embedded_data_is_checked_and_kept() -> None:
    payload = b"{}"
    layer = {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "digest": digest_bytes(payload),
        "size": 2,
        "data": base64.b64encode(payload).decode(),
    }
    manifest = parse_manifest(encode(oci_manifest(layers=[layer])))
    assert manifest.layers[0].data == payload
    assert parse_manifest(manifest.to_json()) == manifest


@pytest.mark.parametrize(
    ("data", "error", "fragment"),
    [
        (b"", ManifestError, "not valid JSON"),
        (b"{", ManifestError, "not valid JSON"),
        (b"\xff\xfe{}", ManifestError, "not UTF-8"),
        (b'{"schemaVersion": 2, "schemaVersion": 2}', ManifestError, "duplicate JSON key"),
        (
            b'{"schemaVersion":2,"config":{},"layers":[{"size":1,"size":2}]}',
            ManifestError,
            "duplicate JSON key 'size'",
        ),
        (b'{"schemaVersion": NaN}', ManifestError, "NaN is not valid JSON"),
        (b'{"schemaVersion": Infinity}', ManifestError, "Infinity is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, ManifestError, "nested too deeply"),
        (b" " * (4 * 1024 * 1024 + 1), ManifestTooLargeError, "over the 4194304 limit"),
    ],
)
def test_malformed_bytes(data: bytes, error: type[ManifestError], fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        parse_manifest_document(data)


def test_non_bytes_input_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="must be bytes"):
        parse_manifest_document("{}")  # type: ignore[arg-type]


def test_direct_construction_is_validated() -> None:
    with pytest.raises(ManifestError, match="digest"):
        Descriptor(OCI_MANIFEST, "sha256:nothex", 1)
    with pytest.raises(ManifestError, match="out of range"):
        Descriptor(OCI_MANIFEST, D1, -5)
    with pytest.raises(ManifestError, match="must be an integer"):
        Descriptor(OCI_MANIFEST, D1, True)
    with pytest.raises(ManifestError, match="invalid media type"):
        Descriptor("nonsense", D1, 1)
    with pytest.raises(ManifestError, match="embedded data is 1 bytes"):
        Descriptor(OCI_MANIFEST, D1, 5, data=b"x")
    with pytest.raises(UnsupportedManifestError):
        Manifest(Descriptor(OCI_MANIFEST, D1, 1), (), media_type=OCI_INDEX)
    with pytest.raises(UnsupportedManifestError):
        Index((), media_type=OCI_MANIFEST)
    with pytest.raises(ManifestError, match="diff_ids"):
        ImageConfig("amd64", "linux", ("sha256:bad",))


def test_descriptors_are_immutable_and_hashable() -> None:
    descriptor = Descriptor(OCI_MANIFEST, D1, 1, annotations={"k": "v"}, urls=["u"])  # type: ignore[arg-type]
    assert isinstance(descriptor.annotations, Annotations)
    assert descriptor.urls == ("u",)
    assert {descriptor, Descriptor(OCI_MANIFEST, D1, 1, annotations={"k": "v"}, urls=("u",))} == {
        descriptor
    }
    with pytest.raises(AttributeError):
        descriptor.size = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        descriptor.annotations["k"] = "w"  # type: ignore[index]


# --- image config ---------------------------------------------------------------------------

CONFIG = {
    "created": "2026-01-01T00:00:00Z",
    "architecture": "arm64",
    "variant": "v8",
    "os": "linux",
    "config": {
        "User": "1000:1000",
        "Env": ["PATH=/usr/bin", "A=b"],
        "Entrypoint": ["/bin/app"],
        "Cmd": ["--serve"],
        "WorkingDir": "/srv",
        "Labels": {"org.example": "yes"},
        "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
        "Volumes": {"/data": {}},
        "StopSignal": "SIGTERM",
    },
    "rootfs": {"type": "layers", "diff_ids": [D1, D2]},
    "history": [
        {"created": "2026-01-01T00:00:00Z", "created_by": "ADD rootfs"},
        {"created_by": "ENV A=b", "empty_layer": True},
        {"created_by": "COPY app", "comment": "buildkit"},
    ],
}


def test_parse_image_config() -> None:
    config = parse_image_config(encode(CONFIG))
    assert config.platform == Platform("linux", "arm64", "v8")
    assert config.diff_ids == (D1, D2)
    assert config.env == ("PATH=/usr/bin", "A=b")
    assert config.entrypoint == ("/bin/app",) and config.cmd == ("--serve",)
    assert config.user == "1000:1000" and config.working_dir == "/srv"
    assert config.labels == {"org.example": "yes"}
    assert config.exposed_ports == ("53/udp", "8080/tcp")
    assert config.volumes == ("/data",)
    assert config.stop_signal == "SIGTERM"
    assert config.history[1] == History(created_by="ENV A=b", empty_layer=True)
    assert parse_image_config(config.to_json()) == config


def test_minimal_config_and_absent_entrypoint_differs_from_empty() -> None:
    minimal = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    config = parse_image_config(encode(minimal))
    assert config.entrypoint is None and config.cmd is None and config.env == ()
    empty = parse_image_config(encode({**minimal, "config": {"Entrypoint": [], "Cmd": None}}))
    assert empty.entrypoint == () and empty.cmd is None
    assert parse_image_config(empty.to_json()) == empty


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"rootfs": {"type": "other", "diff_ids": []}}, "rootfs.type must be 'layers'"),
        ({"rootfs": {"diff_ids": []}}, "rootfs.type is required"),
        ({"rootfs": {"type": "layers"}}, "rootfs.diff_ids is required"),
        ({"rootfs": {"type": "layers", "diff_ids": ["sha256:x"]}}, "rootfs.diff_ids[0]"),
        ({"rootfs": None}, "rootfs is required"),
        ({"architecture": None}, "architecture is required"),
        ({"os": 1}, "os must be a string"),
        ({"config": {"Env": "A=b"}}, "config.Env must be an array"),
        ({"config": {"Entrypoint": [1]}}, "config.Entrypoint[0] must be a string"),
        ({"config": {"Labels": {"a": None}}}, "config.Labels.a must be a string, not null"),
        ({"history": {}}, "history must be an array"),
        ({"history": [{"empty_layer": "yes"}]}, "history[0].empty_layer must be a boolean"),
    ],
)
def test_malformed_configs(change: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_image_config(encode({**CONFIG, **change}))
    assert fragment in str(caught.value)


def test_config_size_limit_is_separate_and_adjustable() -> None:
    data = encode(CONFIG)
    with pytest.raises(ManifestTooLargeError, match="image config"):
        parse_image_config(data, max_size=len(data) - 1)
    assert parse_image_config(data, max_size=len(data)).os == "linux"


def test_chain_ids() -> None:
    first = "sha256:" + hashlib.sha256(b"layer one").hexdigest()
    second = "sha256:" + hashlib.sha256(b"layer two").hexdigest()
    expected_second = "sha256:" + hashlib.sha256(f"{first} {second}".encode()).hexdigest()
    assert chain_ids([]) == []
    assert chain_ids([first]) == [first]
    assert chain_ids([first, second]) == [first, expected_second]
    config = ImageConfig("amd64", "linux", (first, second))
    assert config.chain_ids() == [first, expected_second]
    with pytest.raises(ManifestError):
        chain_ids(["nope"])


def test_check_config_counts_layers() -> None:
    manifest = parse_manifest(encode(oci_manifest()))
    manifest.check_config(ImageConfig("amd64", "linux", (D1, D2)))
    with pytest.raises(ManifestError, match="2 layers but the config lists 1 diff IDs"):
        manifest.check_config(ImageConfig("amd64", "linux", (D1,)))


# --- fuzzing ----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from([D1, OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, "sha256:", "linux"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(
        st.sampled_from(
            [
                "schemaVersion", "mediaType", "config", "layers", "manifests", "digest", "size",
                "platform", "os", "architecture", "annotations", "urls", "subject", "data",
                "artifactType", "variant", "os.features", "x",
            ]
        ),
        children,
        max_size=6,
    ),
    max_leaves=30,
)  # fmt: skip


def _mutations() -> st.SearchStrategy[dict[str, Any]]:
    """Valid documents with one field replaced by random JSON."""

    @st.composite
    def mutate(draw: st.DrawFn) -> dict[str, Any]:
        document = draw(st.sampled_from([oci_manifest, oci_index]))()
        path = draw(
            st.sampled_from(
                [
                    ("schemaVersion",), ("mediaType",), ("config",), ("layers",),
                    ("manifests",), ("annotations",), ("config", "size"), ("config", "digest"),
                    ("layers", 0), ("layers", 0, "mediaType"), ("manifests", 0, "platform"),
                    ("manifests", 1, "platform", "variant"), ("manifests", 0, "size"),
                ]
            )
        )  # fmt: skip
        target: Any = document
        try:
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = draw(json_values)
        except (KeyError, IndexError, TypeError):
            document[str(path[0])] = draw(json_values)
        return document

    return mutate()


CONTENT_TYPES = st.sampled_from(
    [None, "", OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST, "application/json", "x/y"]
)


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        json_values.map(lambda v: {"schemaVersion": 2, **v} if isinstance(v, dict) else v),
        _mutations(),
    ),
    CONTENT_TYPES,
)
def test_fuzz_only_manifest_errors_escape(document: object, content_type: str | None) -> None:
    try:
        parsed = parse_manifest_document(encode(document), content_type)
    except ManifestError as err:
        assert str(err)
        return
    # Whatever parsed must serialise and parse back to the same thing.
    assert parse_manifest_document(parsed.to_json(), parsed.media_type) == parsed


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), CONTENT_TYPES)
def test_fuzz_random_bytes(data: bytes, content_type: str | None) -> None:
    try:
        parsed = parse_manifest_document(data, content_type)
    except ManifestError as err:
        assert str(err)
        return
    assert isinstance(parsed, Manifest | Index)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_fuzz_configs(value: object) -> None:
    document = value if not isinstance(value, dict) else {**CONFIG, **value}
    try:
        config = parse_image_config(encode(document))
    except ManifestError:
        return
    assert parse_image_config(config.to_json()) == config
