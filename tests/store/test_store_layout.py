"""OCI image layouts: export/import round trips, naming, verification, skopeo and umoci."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ocistore.digest import digest_bytes, digest_file
from ocistore.errors import (
    DigestMismatchError,
    InvalidDigestError,
    LayoutError,
    ManifestError,
)
from ocistore.store import ProblemKind, Store
from ocistore.testing.imagebuild import BuiltImage, BuiltIndex, build_image


def index_json(layout: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((layout / "index.json").read_text())
    return data


def annotations_of(layout: Path) -> list[dict[str, str]]:
    manifests = index_json(layout)["manifests"]
    assert isinstance(manifests, list)
    return [m.get("annotations", {}) for m in manifests]


def test_export_writes_a_valid_layout(
    store: Store, small_image: BuiltImage, tmp_path: Path
) -> None:
    small_image.write_to_store(store, "example.com/app:v1")
    layout = tmp_path / "layout"
    store.export_layout(["example.com/app:v1"], layout)
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    (entry,) = index_json(layout)["manifests"]  # type: ignore[misc]
    assert entry["digest"] == small_image.digest
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
    assert entry["annotations"] == {
        "io.containerd.image.name": "example.com/app:v1",
        "org.opencontainers.image.ref.name": "v1",
    }
    for digest in small_image.blobs():
        path = layout / "blobs" / "sha256" / digest.split(":")[1]
        assert digest_file(path) == digest


def test_round_trip_keeps_names_and_content(store: Store, tmp_path: Path) -> None:
    one = build_image([{"one": b"1"}])
    two = build_image([{"two": b"2"}], compression="zstd")
    one.write_to_store(store, "example.com/one:latest")
    two.write_to_store(store, "registry.local:5000/team/two:latest")
    layout = tmp_path / "layout"
    store.export_layout(["example.com/one", "registry.local:5000/team/two:latest"], layout)
    # The tags collide, so ref.name holds the full references.
    names = sorted(a["org.opencontainers.image.ref.name"] for a in annotations_of(layout))
    assert names == ["example.com/one:latest", "registry.local:5000/team/two:latest"]
    other = Store(tmp_path / "other")
    records = other.import_layout(layout)
    assert sorted((r.reference, r.digest) for r in records) == sorted(
        [
            ("example.com/one:latest", one.digest),
            ("registry.local:5000/team/two:latest", two.digest),
        ]
    )
    assert all(r.source == "import" for r in records)
    assert {r.reference for r in other.images()} == {r.reference for r in records}
    assert other.fsck().ok


def test_export_adds_to_an_existing_layout(store: Store, tmp_path: Path) -> None:
    one = build_image([{"one": b"1"}])
    two = build_image([{"two": b"2"}])
    one.write_to_store(store, "example.com/app:one")
    two.write_to_store(store, "example.com/app:two")
    layout = tmp_path / "layout"
    store.export_layout("example.com/app:one", layout)
    store.export_layout("example.com/app:two", layout)
    store.export_layout("example.com/app:two", layout)  # replaces, does not duplicate
    names = sorted(a["org.opencontainers.image.ref.name"] for a in annotations_of(layout))
    assert names == ["one", "two"]


def write_plain_layout(image: BuiltImage, layout: Path, ref_name: str | None) -> None:
    image.write_layout(layout, ref_name)


@pytest.mark.parametrize(
    ("ref_name", "name", "expected"),
    [
        ("example.com/full/name:v3", None, "example.com/full/name:v3"),
        ("example.com/full/name:v3", "other.io/ignored", "example.com/full/name:v3"),
        ("v3", "example.com/given", "example.com/given:v3"),
        ("v3", None, "DIGEST"),
        (None, None, "DIGEST"),
        (None, "example.com/given", "example.com/given@DIGEST"),
    ],
)
def test_import_naming_rules(
    tmp_path: Path, small_image: BuiltImage, ref_name: str | None, name: str | None, expected: str
) -> None:
    layout = tmp_path / "layout"
    write_plain_layout(small_image, layout, ref_name)
    store = Store(tmp_path / "store")
    (record,) = store.import_layout(layout, name)
    assert record.reference == expected.replace("DIGEST", small_image.digest)
    assert store.images() == [record]


def test_import_of_an_index_chooses_the_platform(tmp_path: Path, multi_arch: BuiltIndex) -> None:
    index = multi_arch
    amd, arm = index.images
    layout = tmp_path / "layout"
    index.write_layout(layout, "example.com/multi:1")
    store = Store(tmp_path / "store")
    (record,) = store.import_layout(layout, platform="linux/arm64")
    assert record.digest == arm.digest
    assert record.index_digest == index.digest
    assert record.platform == "linux/arm64"
    assert not store.has_blob(amd.layers[0].digest)  # only the chosen platform is copied
    assert store.fsck().ok


def test_corrupt_layout_blob_is_refused_and_nothing_recorded(
    tmp_path: Path, small_image: BuiltImage
) -> None:
    layout = tmp_path / "layout"
    write_plain_layout(small_image, layout, "example.com/app:v1")
    victim = layout / "blobs" / "sha256" / small_image.layers[1].digest.split(":")[1]
    data = bytearray(victim.read_bytes())
    data[-5] ^= 0xFF
    victim.write_bytes(bytes(data))
    store = Store(tmp_path / "store")
    with pytest.raises(DigestMismatchError):
        store.import_layout(layout)
    assert store.images() == []
    assert not store.has_blob(small_image.layers[1].digest)
    assert store.fsck().ok


@pytest.mark.parametrize(
    "bad_digest", ["sha256:../../../../etc/passwd", "sha256:" + "Z" * 64, "sha1:" + "0" * 40]
)
def test_hostile_digest_in_index_json(
    tmp_path: Path, small_image: BuiltImage, bad_digest: str
) -> None:
    layout = tmp_path / "layout"
    write_plain_layout(small_image, layout, "example.com/app:v1")
    document = index_json(layout)
    document["manifests"][0]["digest"] = bad_digest  # type: ignore[index]
    (layout / "index.json").write_text(json.dumps(document))
    store = Store(tmp_path / "store")
    with pytest.raises((InvalidDigestError, ManifestError)):
        store.import_layout(layout)
    assert store.images() == []


def test_symlinked_blob_is_refused(tmp_path: Path, small_image: BuiltImage) -> None:
    layout = tmp_path / "layout"
    write_plain_layout(small_image, layout, "example.com/app:v1")
    blob = layout / "blobs" / "sha256" / small_image.config_digest.split(":")[1]
    outside = tmp_path / "outside"
    shutil.move(blob, outside)
    blob.symlink_to(outside)
    store = Store(tmp_path / "store")
    with pytest.raises(LayoutError):
        store.import_layout(layout)
    assert store.images() == []


@pytest.mark.parametrize("victim", ["config", "index.json"])
def test_fifo_in_a_layout_is_refused_without_hanging(
    tmp_path: Path, small_image: BuiltImage, victim: str
) -> None:
    layout = tmp_path / "layout"
    write_plain_layout(small_image, layout, "example.com/app:v1")
    if victim == "config":
        target = layout / "blobs" / "sha256" / small_image.config_digest.split(":")[1]
    else:
        target = layout / "index.json"
    target.unlink()
    os.mkfifo(target)
    store = Store(tmp_path / "store")
    with pytest.raises(LayoutError, match="not a regular file"):
        store.import_layout(layout)
    assert store.images() == []


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "oci-layout"),
        ({"oci-layout": "{}"}, "imageLayoutVersion"),
        ({"oci-layout": '{"imageLayoutVersion":"1.0.0"}'}, "index.json"),
        ({"oci-layout": '{"imageLayoutVersion":"1.0.0"}', "index.json": "[]"}, "JSON object"),
        ({"oci-layout": "not json"}, "JSON"),
    ],
)
def test_not_a_layout(tmp_path: Path, files: dict[str, str], message: str) -> None:
    layout = tmp_path / "layout"
    layout.mkdir()
    for name, text in files.items():
        (layout / name).write_text(text)
    with pytest.raises((LayoutError, ManifestError), match=message):
        Store(tmp_path / "store").import_layout(layout)


# --- interoperability with real tools ---------------------------------------------------


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} is not installed (scripts/setup installs it)"
    return path


def run(*args: str) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"{args}: {proc.stderr}"
    return proc.stdout


@pytest.fixture
def exported(store: Store, tmp_path: Path) -> tuple[Store, BuiltImage, Path]:
    image = build_image(
        [
            {"etc/hostname": b"box\n", "bin/tool": b"#!/bin/sh\necho hi\n"},
            {"etc/hostname": b"changed\n", "srv/data.txt": b"payload\n", "etc/.wh.gone": b""},
        ],
        compression=["gzip", "none"],  # umoci 0.4.7 (Debian 12) predates zstd layers
    )
    image.write_to_store(store, "example.com/interop/app:v1")
    layout = tmp_path / "exported"
    store.export_layout(["example.com/interop/app:v1"], layout)
    return store, image, layout


def test_skopeo_copies_our_layout_and_we_import_its_copy(
    exported: tuple[Store, BuiltImage, Path], tmp_path: Path
) -> None:
    _, image, layout = exported
    skopeo = tool("skopeo")
    # Byte-for-byte copy: the same manifest digest comes back.
    exact = tmp_path / "exact"
    run(
        skopeo,
        "--insecure-policy",
        "copy",
        "--preserve-digests",
        "--dest-oci-accept-uncompressed-layers",
        f"oci:{layout}:v1",
        f"oci:{exact}:copied",
    )
    other = Store(tmp_path / "other")
    (record,) = other.import_layout(exact, "example.com/interop/app")
    assert record.reference == "example.com/interop/app:copied"
    assert record.digest == image.digest
    # Default copy: skopeo gzips our plain layer, so a new manifest with the same diff_ids.
    recompressed = tmp_path / "recompressed"
    run(skopeo, "--insecure-policy", "copy", f"oci:{layout}:v1", f"oci:{recompressed}:v2")
    raw = json.loads(run(skopeo, "inspect", "--raw", f"oci:{recompressed}:v2"))
    assert raw["layers"][1]["mediaType"].endswith("tar+gzip")
    (second,) = other.import_layout(recompressed, "example.com/interop/app")
    assert second.reference == "example.com/interop/app:v2"
    assert second.digest != image.digest
    assert list(other.config(second.reference).diff_ids) == image.diff_ids
    assert other.fsck().ok


def test_umoci_unpacks_our_layout(exported: tuple[Store, BuiltImage, Path], tmp_path: Path) -> None:
    _, _, layout = exported
    bundle = tmp_path / "bundle"
    run(tool("umoci"), "unpack", "--rootless", "--image", f"{layout}:v1", str(bundle))
    rootfs = bundle / "rootfs"
    assert (rootfs / "etc" / "hostname").read_bytes() == b"changed\n"
    assert (rootfs / "srv" / "data.txt").read_bytes() == b"payload\n"
    assert (rootfs / "bin" / "tool").is_file()
    assert os.path.isfile(bundle / "config.json")


# --- the store root is itself an OCI image layout ------------------------------------------


def test_store_root_is_a_layout_that_tracks_the_records(
    store: Store, small_image: BuiltImage
) -> None:
    assert json.loads((store.root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert index_json(store.root)["manifests"] == []
    small_image.write_to_store(store, "example.com/app:v1")
    (entry,) = index_json(store.root)["manifests"]  # type: ignore[misc]
    assert entry["digest"] == small_image.digest
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "example.com/app:v1"
    store.remove("example.com/app:v1")
    assert index_json(store.root)["manifests"] == []


def test_skopeo_and_umoci_read_the_store_root(
    exported: tuple[Store, BuiltImage, Path], tmp_path: Path
) -> None:
    store, image, _ = exported
    raw = run(tool("skopeo"), "inspect", "--raw", f"oci:{store.root}:example.com/interop/app:v1")
    assert digest_bytes(raw.encode()) == image.digest
    bundle = tmp_path / "bundle"
    run(
        tool("umoci"),
        "unpack",
        "--rootless",
        "--image",
        f"{store.root}:example.com/interop/app:v1",
        str(bundle),
    )
    assert (bundle / "rootfs" / "srv" / "data.txt").read_bytes() == b"payload\n"


def test_fsck_repairs_a_stale_root_index(store: Store, small_image: BuiltImage) -> None:
    small_image.write_to_store(store, "example.com/app:v1")
    (store.root / "index.json").write_text('{"schemaVersion":2,"manifests":[]}')
    report = store.fsck()
    assert [p.kind for p in report.problems] == [ProblemKind.STALE_LAYOUT_INDEX]
    assert store.fsck(repair=True).ok
    assert store.fsck().problems == []
    assert index_json(store.root)["manifests"][0]["digest"] == small_image.digest  # type: ignore[index]
