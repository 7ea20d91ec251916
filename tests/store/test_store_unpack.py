"""store.unpack: layers applied in order by the Rust engine, diff_ids verified, trees cached."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocistore import model
from ocistore.digest import digest_bytes
from ocistore.errors import DigestMismatchError, ManifestError, StoreError
from ocistore.mediatypes import MediaType
from ocistore.store import Store
from ocistore.testing.imagebuild import BuiltImage, Symlink, build_image


@pytest.fixture
def layered() -> BuiltImage:
    return build_image(
        [
            {"etc/hostname": b"base\n", "etc/old.conf": b"old\n", "usr/bin/tool": b"v1"},
            {"etc/hostname": b"middle\n", "etc/.wh.old.conf": b"", "usr/bin/link": Symlink("tool")},
            {"usr/bin/tool": b"v3", "srv/new.txt": b"top\n"},
        ],
        compression=["gzip", "zstd", "none"],
    )


def test_layers_apply_in_order_with_whiteouts(store: Store, layered: BuiltImage) -> None:
    layered.write_to_store(store, "example.com/app:v1")
    root = store.unpack("example.com/app:v1")
    assert (root / "etc" / "hostname").read_bytes() == b"middle\n"
    assert not (root / "etc" / "old.conf").exists()
    assert not (root / "etc" / ".wh.old.conf").exists()
    assert (root / "usr" / "bin" / "tool").read_bytes() == b"v3"
    assert (root / "usr" / "bin" / "link").is_symlink()
    assert (root / "srv" / "new.txt").read_bytes() == b"top\n"
    record = store.image("example.com/app:v1")
    assert record.chain_id == model.chain_ids(layered.diff_ids)[-1]
    assert root == store.unpacked_dir / record.chain_id.replace(":", "-")


def test_unpacked_tree_is_cached_and_shared(store: Store, layered: BuiltImage) -> None:
    layered.write_to_store(store, "example.com/app:v1")
    first = store.unpack("example.com/app:v1")
    marker = first / "marker-from-first-unpack"
    marker.write_text("x")
    # Another name for an image with the same layers reuses the tree.
    twin = build_image(
        [
            {"etc/hostname": b"base\n", "etc/old.conf": b"old\n", "usr/bin/tool": b"v1"},
            {"etc/hostname": b"middle\n", "etc/.wh.old.conf": b"", "usr/bin/link": Symlink("tool")},
            {"usr/bin/tool": b"v3", "srv/new.txt": b"top\n"},
        ],
        compression=["gzip", "zstd", "none"],
        config={"Cmd": ["/other"]},
    )
    assert twin.config_digest != layered.config_digest
    twin.write_to_store(store, "example.com/twin:v1")
    assert store.unpack("example.com/twin:v1") == first
    assert marker.exists()


def test_unpack_into_a_given_directory(store: Store, layered: BuiltImage, tmp_path: Path) -> None:
    layered.write_to_store(store, "example.com/app:v1")
    dest = tmp_path / "rootfs"
    assert store.unpack("example.com/app:v1", dest) == dest
    assert (dest / "usr" / "bin" / "tool").read_bytes() == b"v3"
    with pytest.raises(StoreError, match="not an empty directory"):
        store.unpack("example.com/app:v1", dest)


def test_a_config_that_lies_about_diff_ids_is_caught(store: Store, tmp_path: Path) -> None:
    honest = build_image([{"file": b"real content"}])
    lying_config = model.ImageConfig(
        architecture="amd64", os="linux", diff_ids=(digest_bytes(b"something else"),)
    ).to_json()
    manifest = model.Manifest(
        config=model.Descriptor.of(MediaType.OCI_CONFIG, lying_config),
        layers=tuple(layer.descriptor() for layer in honest.layers),
    ).to_json()
    for layer in honest.layers:
        store.put_blob(layer.data, media_type=layer.media_type)
    store.put_blob(lying_config)
    digest = store.put_blob(manifest)
    store.record_image("example.com/liar:v1", manifest_digest=digest)
    with pytest.raises(DigestMismatchError):
        store.unpack("example.com/liar:v1")
    with pytest.raises(DigestMismatchError):
        store.unpack("example.com/liar:v1", tmp_path / "dest")
    assert list(store.unpacked_dir.iterdir()) == []  # no half-built tree is left
    assert not (tmp_path / "dest").exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".dest")] == []
    assert store.fsck().ok


def test_layer_count_must_match_the_config(store: Store) -> None:
    image = build_image([{"a": b"1"}, {"b": b"2"}])
    config = model.ImageConfig(
        architecture="amd64", os="linux", diff_ids=(image.layers[0].diff_id,)
    ).to_json()
    manifest = model.Manifest(
        config=model.Descriptor.of(MediaType.OCI_CONFIG, config),
        layers=tuple(layer.descriptor() for layer in image.layers),
    ).to_json()
    for layer in image.layers:
        store.put_blob(layer.data)
    store.put_blob(config)
    digest = store.put_blob(manifest)
    with pytest.raises(ManifestError, match="diff"):
        store.record_image("example.com/bad:v1", manifest_digest=digest)
    assert store.images() == []


def test_artifacts_are_stored_but_not_unpacked(store: Store) -> None:
    empty = b"{}"
    payload = b"an SBOM, say"
    manifest = model.Manifest(
        config=model.Descriptor.of("application/vnd.oci.empty.v1+json", empty),
        layers=(model.Descriptor.of("application/spdx+json", payload),),
        artifact_type="application/spdx+json",
    ).to_json()
    store.put_blob(empty)
    store.put_blob(payload)
    digest = store.put_blob(manifest)
    record = store.record_image("example.com/sbom:v1", manifest_digest=digest)
    assert record.chain_id is None
    with pytest.raises(ManifestError, match="not a runnable image"):
        store.unpack("example.com/sbom:v1")


def test_gc_removes_the_tree_with_its_last_image(store: Store, layered: BuiltImage) -> None:
    layered.write_to_store(store, "example.com/app:v1")
    root = store.unpack("example.com/app:v1")
    assert store.gc().removed_unpacked == []
    store.remove("example.com/app:v1")
    report = store.gc()
    assert report.removed_unpacked == [root.name]
    assert not root.exists()
    assert store.fsck().ok
