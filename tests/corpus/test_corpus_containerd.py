"""Images made by buildah, skopeo and umoci: ocistore unpacks each exactly as containerd 1.6 does.

For every corpus image the private containerd pulls it (``ctr images pull --plain-http``) and
its snapshot is mounted read-only; ``ocistore pull --unpack`` writes its own tree; the two trees
must be equal in paths, types, contents, modes, owners, nanosecond mtimes, xattrs, hardlink
groups and device numbers; the one named exception is ``trees.ROOT_MTIME`` (the root
directory's own mtime).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from containerd_daemon import Containerd
from trees import differences, hardlink_groups, walk

from corpus.makers import Containers, ocistore_cli
from corpus.recipes import (
    CORPUS_NAMES,
    NET_BIND_CAPABILITY,
    OCI_INDEX,
    OCI_MANIFEST,
    PRECISE_MTIME_NS,
    ZSTD_CHUNKED_ANNOTATION,
    CorpusImage,
    raw_manifest,
)


def test_corpus_is_what_it_claims(containers: Containers, corpus: dict[str, CorpusImage]) -> None:
    """Each image is served in the manifest and layer format its maker was asked for."""
    for image in corpus.values():
        document = raw_manifest(containers, image.reference)
        # umoci omits the optional mediaType of an OCI manifest: the layout implies it.
        implied = OCI_INDEX if "manifests" in document else OCI_MANIFEST
        assert document.get("mediaType", implied) == image.media_type, image.name
        if "manifests" in document:
            manifests = document["manifests"]
            assert isinstance(manifests, list)
            platforms = {
                f"{m['platform']['os']}/{m['platform']['architecture']}" for m in manifests
            }
            assert platforms == {"linux/amd64", "linux/arm64"}, image.name
            amd64 = next(m for m in manifests if m["platform"]["architecture"] == "amd64")
            document = raw_manifest(
                containers, f"{image.reference.split(':multi')[0]}@{amd64['digest']}"
            )
        layers = document["layers"]
        assert isinstance(layers, list)
        assert {layer["mediaType"] for layer in layers} == {image.layer_media_type}, image.name
        chunked = [ZSTD_CHUNKED_ANNOTATION in layer.get("annotations", {}) for layer in layers]
        assert all(chunked) if image.chunked else not any(chunked), image.name
        config = json.loads(
            containers.skopeo(
                "inspect", "--tls-verify=false", "--config", f"docker://{image.reference}"
            )
        )
        assert ("history" in config) is image.history, image.name


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_ocistore_unpacks_what_containerd_mounts(
    name: str, corpus: dict[str, CorpusImage], containerd: Containerd, tmp_path: Path
) -> None:
    image = corpus[name]
    containerd.pull(image.reference, "--plain-http")
    rootfs = tmp_path / "rootfs"
    store = tmp_path / "store"
    ocistore_cli("--store", store, "pull", image.reference, "--plain-http", "--unpack", rootfs)
    record = ocistore_cli("--store", store, "inspect", image.reference)["record"]
    assert isinstance(record, dict)
    # The digest containerd records is the registry's: the index's for a multi-arch image.
    assert (record["index_digest"] or record["digest"]) == containerd.image_digest(image.reference)
    with containerd.mounted(image.reference) as view:
        expected = walk(view, with_root=True)
    actual = walk(rootfs, with_root=True)
    assert differences(expected, actual) == []
    assert len(actual) > 3


def test_the_comparison_sees_what_real_images_carry(
    corpus: dict[str, CorpusImage], containerd: Containerd, tmp_path: Path
) -> None:
    """The umoci image's tree holds every special entry, so the equality above is not vacuous."""
    image = corpus["umoci-oci-gzip"]
    containerd.pull(image.reference, "--plain-http")
    with containerd.mounted(image.reference) as view:
        entries = walk(view, with_root=True)
    assert entries[b"bin/setuid"].mode == 0o4755
    assert entries[b"bin/setgid"].mode == 0o2711
    assert entries[b"tmp"].mode == 0o1777
    assert dict(entries[b"bin/ping"].xattrs)[b"security.capability"] == NET_BIND_CAPABILITY
    assert dict(entries[b"etc/hello"].xattrs)[b"user.origin"] == b"corpus"
    assert dict(entries[b"etc/added"].xattrs)[b"user.layer"] == b"2"
    assert entries[b"dev/null"].kind == "char" and entries[b"dev/null"].rdev == (1, 3)
    assert entries[b"dev/loop0"].kind == "block" and entries[b"dev/loop0"].rdev == (7, 0)
    assert entries[b"dev/fifo"].kind == "fifo"
    assert entries[b"bin/absolute"].link == b"/etc/hello"
    assert (entries[b"srv/nobody"].uid, entries[b"srv/nobody"].gid) == (100_000, 70_000)
    assert (entries[b"srv"].uid, entries[b"srv"].gid) == (65_536, 65_537)
    assert entries[b"precise/file"].mtime_ns is not None
    assert entries[b"precise/file"].mtime_ns % 1_000_000_000 != 0
    assert entries[b"precise/file"].mtime_ns - PRECISE_MTIME_NS < 100_000_000
    assert (b"etc/hostname", b"etc/hostname.hardlink") in hardlink_groups(entries)
    assert (b"precise/file", b"precise/hardlink") in hardlink_groups(entries)
    # Whiteouts, the opaque directory and the type changes across layers.
    assert not any(path.startswith(b"gone") for path in entries)
    assert b"etc/removed" not in entries
    assert sorted(p for p in entries if p.startswith(b"opq/")) == [b"opq/c"]
    assert entries[b"file2dir"].kind == "dir"
    assert entries[b"swap"].kind == "dir" and b"swap/inside" not in entries
    assert b"swap/again" in entries
