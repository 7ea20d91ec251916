"""The corpus: small images as buildah, skopeo and umoci make them, pushed by their own tool.

``build_corpus`` writes root filesystems with what real images carry (xattrs, setuid/setgid/
sticky bits, hardlinks, symlinks, FIFOs, device nodes, uid/gid above 65535, nanosecond mtimes),
turns them into layers with umoci, GNU tar and bsdtar (whiteouts, an opaque directory, a
directory replaced by a file and back, an empty layer, a config without ``history``), and
pushes them to the test registry in every format pair the issue lists. It needs root (device
nodes, foreign owners, ``security.capability``).
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from corpus.makers import Containers, bsdtar_layer, gnu_tar_layer, umoci

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
ZSTD_CHUNKED_ANNOTATION = "io.containers.zstd-chunked.manifest-checksum"
# A capability set (cap_net_bind_service=ep), as setcap writes it (VFS_CAP_REVISION_2).
NET_BIND_CAPABILITY = bytes.fromhex("0100000200040000000000000000000000000000")
PRECISE_MTIME_NS = 1_700_000_000_123_456_789


@dataclass(frozen=True)
class CorpusImage:
    """One image of the corpus, as the registry serves it."""

    name: str
    reference: str
    maker: str
    media_type: str
    layer_media_type: str
    chunked: bool = False
    history: bool = True
    layout: Path | None = None
    """The OCI layout the image was made in, when its maker writes one (umoci)."""


def _set_times(path: Path, mtime_ns: int) -> None:
    os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)


def special_rootfs(root: Path) -> None:
    """The base layer's tree: every kind of entry and attribute an image may carry."""
    for directory in ("bin", "etc", "dev", "gone/deep", "opq", "swap", "srv"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    (root / "etc/hello").write_text("hello from the corpus\n")
    (root / "etc/hostname").write_text("corpus\n")
    os.link(root / "etc/hostname", root / "etc/hostname.hardlink")
    (root / "bin/tool").write_text("#!/bin/sh\necho corpus\n")
    (root / "bin/tool").chmod(0o755)
    (root / "bin/setuid").write_bytes(b"setuid\n")
    (root / "bin/setuid").chmod(0o4755)
    (root / "bin/setgid").write_bytes(b"setgid\n")
    (root / "bin/setgid").chmod(0o2711)
    (root / "bin/ping").write_bytes(b"capable\n")
    os.setxattr(root / "bin/ping", "security.capability", NET_BIND_CAPABILITY)
    os.setxattr(root / "etc/hello", "user.origin", b"corpus")
    os.setxattr(root / "etc/hello", "user.empty", b"")
    (root / "tmp").mkdir(mode=0o1777)
    (root / "tmp").chmod(0o1777)
    (root / "bin/relative").symlink_to("tool")
    (root / "bin/absolute").symlink_to("/etc/hello")
    (root / "bin/dangling").symlink_to("../nowhere")
    os.mkfifo(root / "dev/fifo", 0o600)
    os.mknod(root / "dev/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(root / "dev/loop0", 0o660 | stat.S_IFBLK, os.makedev(7, 0))
    (root / "srv/nobody").write_text("owned by a high id\n")
    os.chown(root / "srv/nobody", 100_000, 70_000)
    os.chown(root / "srv", 65_536, 65_537)
    (root / "gone/deep/file").write_text("whited out by layer 2\n")
    (root / "gone/sibling").write_text("whited out with its directory\n")
    (root / "opq/a").write_text("hidden by the opaque directory\n")
    (root / "opq/b").write_text("hidden too\n")
    (root / "swap/inside").write_text("the directory becomes a file in layer 2\n")
    (root / "file2dir").write_text("this file becomes a directory in layer 2\n")
    (root / "etc/removed").write_text("a single file whited out by layer 2\n")


def second_layer_tree(stage: Path) -> list[str]:
    """Layer 2's members: whiteouts, an opaque directory, type changes, nanosecond mtimes."""
    (stage / "opq").mkdir(parents=True)
    (stage / "opq/.wh..wh..opq").write_bytes(b"")
    (stage / "opq/c").write_text("the only file of the opaque directory\n")
    (stage / ".wh.gone").write_bytes(b"")
    (stage / "etc").mkdir()
    (stage / "etc/.wh.removed").write_bytes(b"")
    (stage / "etc/added").write_text("added by GNU tar\n")
    os.setxattr(stage / "etc/added", "user.layer", b"2")
    (stage / "swap").write_text("now a file\n")
    (stage / "file2dir").mkdir()
    (stage / "file2dir/inner").write_text("now a directory\n")
    (stage / "precise").mkdir()
    (stage / "precise/file").write_text("nanosecond mtime\n")
    os.link(stage / "precise/file", stage / "precise/hardlink")
    (stage / "precise/link").symlink_to("file")
    members = [
        "opq", "opq/.wh..wh..opq", "opq/c", ".wh.gone", "etc", "etc/.wh.removed", "etc/added",
        "swap", "file2dir", "file2dir/inner", "precise", "precise/file", "precise/hardlink",
        "precise/link",
    ]  # fmt: skip
    for offset, member in enumerate(reversed(members)):
        _set_times(stage / member, PRECISE_MTIME_NS + offset * 1_000_003)
    return members


def fourth_layer_tree(stage: Path) -> list[str]:
    """Layer 4 (bsdtar): the file ``swap`` becomes a directory again."""
    (stage / "swap").mkdir(parents=True)
    (stage / "swap/again").write_text("a directory once more\n")
    _set_times(stage / "swap/again", PRECISE_MTIME_NS + 7)
    _set_times(stage / "swap", PRECISE_MTIME_NS + 11)
    return ["swap", "swap/again"]


def umoci_layout(work: Path) -> Path:
    """An OCI layout ``layout:full`` of four layers made by umoci, GNU tar and bsdtar."""
    layout = work / "umoci-layout"
    umoci("init", "--layout", layout)
    umoci("new", "--image", f"{layout}:full")
    bundle = work / "umoci-bundle"
    umoci("unpack", "--image", f"{layout}:full", bundle)
    special_rootfs(bundle / "rootfs")
    umoci("repack", "--no-history", "--image", f"{layout}:full", bundle)
    stage2, stage4 = work / "stage2", work / "stage4"
    layer2 = gnu_tar_layer(stage2, second_layer_tree(stage2), work / "layer2.tar")
    (work / "empty").mkdir()
    empty = gnu_tar_layer(work / "empty", [], work / "empty.tar")
    layer4 = bsdtar_layer(stage4, fourth_layer_tree(stage4), work / "layer4.tar")
    for layer in (layer2, empty, layer4):
        umoci("raw", "add-layer", "--no-history", "--image", f"{layout}:full", layer)
    umoci(
        "config", "--image", f"{layout}:full", "--config.entrypoint", "/bin/tool",
        "--config.env", "CORPUS=umoci", "--no-history",
    )  # fmt: skip
    return layout


def buildah_rootfs(root: Path) -> None:
    """A small tree for ``buildah copy`` (which applies its own ownership rules)."""
    (root / "bin").mkdir(parents=True)
    (root / "etc/conf.d").mkdir(parents=True)
    (root / "bin/tool").write_text("#!/bin/sh\necho buildah\n")
    (root / "bin/tool").chmod(0o755)
    (root / "bin/setuid").write_text("setuid\n")
    (root / "bin/setuid").chmod(0o4755)
    (root / "etc/conf.d/app.conf").write_text("key = value\n")
    (root / "etc/link").symlink_to("conf.d/app.conf")
    os.link(root / "bin/tool", root / "bin/tool-hardlink")
    _set_times(root / "etc/conf.d/app.conf", PRECISE_MTIME_NS)


CORPUS_NAMES = (
    "umoci-oci-gzip",
    "skopeo-v2s2-gzip",
    "skopeo-oci-zstd",
    "skopeo-oci-gzip",
    "buildah-docker-gzip",
    "buildah-oci-gzip",
    "buildah-oci-zstd",
    "buildah-oci-zstd-chunked",
    "buildah-manifest-list",
    "buildah-oci-index",
)


def build_corpus(work: Path, containers: Containers) -> dict[str, CorpusImage]:
    """Builds every corpus image and pushes it to ``containers.registry``, by name."""
    images: list[CorpusImage] = []
    registry = containers.registry
    layout = umoci_layout(work / "umoci")
    ref = f"{registry}/corpus/umoci:full"
    containers.skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:full", f"docker://{ref}")
    images.append(CorpusImage("umoci-oci-gzip", ref, "umoci + GNU tar + bsdtar, skopeo push",
                              OCI_MANIFEST, OCI_GZIP, history=False, layout=layout))  # fmt: skip
    ref = f"{registry}/corpus/skopeo-v2s2:gzip"
    containers.skopeo(
        "copy", "--dest-tls-verify=false", "--format", "v2s2", f"oci:{layout}:full",
        f"docker://{ref}",
    )  # fmt: skip
    images.append(CorpusImage("skopeo-v2s2-gzip", ref, "skopeo copy --format v2s2",
                              DOCKER_MANIFEST, DOCKER_GZIP, history=False))  # fmt: skip
    ref = f"{registry}/corpus/skopeo-oci:zstd"
    containers.skopeo(
        "copy", "--dest-tls-verify=false", "--format", "oci", "--dest-compress-format", "zstd",
        f"oci:{layout}:full", f"docker://{ref}",
    )  # fmt: skip
    images.append(CorpusImage("skopeo-oci-zstd", ref, "skopeo copy --dest-compress-format zstd",
                              OCI_MANIFEST, OCI_ZSTD, history=False))  # fmt: skip
    v2s2 = ref.replace("skopeo-oci:zstd", "skopeo-v2s2:gzip")
    ref = f"{registry}/corpus/skopeo-oci:gzip"
    containers.skopeo(
        "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--format", "oci",
        f"docker://{v2s2}", f"docker://{ref}",
    )  # fmt: skip
    images.append(CorpusImage("skopeo-oci-gzip", ref, "skopeo copy --format oci (from v2s2)",
                              OCI_MANIFEST, OCI_GZIP, history=False))  # fmt: skip

    rootfs = work / "buildah-rootfs"
    buildah_rootfs(rootfs)
    docker_image = containers.scratch_image(rootfs, "corpus-docker", image_format="docker")
    oci_image = containers.scratch_image(rootfs, "corpus-oci", image_format="oci")
    for name, image, compression, media_type, layer_type in (
        ("buildah-docker-gzip", docker_image, "gzip", DOCKER_MANIFEST, DOCKER_GZIP),
        ("buildah-oci-gzip", oci_image, "gzip", OCI_MANIFEST, OCI_GZIP),
        ("buildah-oci-zstd", oci_image, "zstd", OCI_MANIFEST, OCI_ZSTD),
        ("buildah-oci-zstd-chunked", oci_image, "zstd:chunked", OCI_MANIFEST, OCI_ZSTD),
    ):
        ref = containers.push(image, f"corpus/{name}:latest", compression=compression)
        images.append(
            CorpusImage(name, ref, f"buildah commit + push --compression-format {compression}",
                        media_type, layer_type, chunked=compression == "zstd:chunked")
        )  # fmt: skip

    arm_root = work / "buildah-rootfs-arm64"
    (arm_root / "etc").mkdir(parents=True)
    (arm_root / "etc/arch").write_text("arm64\n")
    arm_docker = containers.scratch_image(arm_root, "corpus-arm-d", image_format="docker",
                                          arch="arm64")  # fmt: skip
    arm_oci = containers.scratch_image(arm_root, "corpus-arm-o", image_format="oci", arch="arm64")
    for name, members, list_format, media_type, layer_type in (
        ("buildah-manifest-list", [docker_image, arm_docker], "v2s2", DOCKER_LIST, DOCKER_GZIP),
        ("buildah-oci-index", [oci_image, arm_oci], "oci", OCI_INDEX, OCI_GZIP),
    ):
        ref = containers.push_manifest_list(members, f"corpus/{name}:multi",
                                            list_format=list_format)  # fmt: skip
        images.append(CorpusImage(name, ref, f"buildah manifest push --all --format {list_format}",
                                  media_type, layer_type))  # fmt: skip
    assert [i.name for i in images] == list(CORPUS_NAMES)
    return {image.name: image for image in images}


def raw_manifest(containers: Containers, reference: str) -> dict[str, object]:
    """The document the registry serves for a reference (``skopeo inspect --raw``)."""
    document: dict[str, object] = json.loads(
        containers.skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{reference}")
    )
    return document
