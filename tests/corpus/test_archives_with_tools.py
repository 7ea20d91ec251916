"""Import and export against the real tools: podman save/load, ctr import/export, skopeo.

Each test moves a corpus image through another tool and back, and checks the digest every
tool reports: it must be the registry's (the index digest for a multi-arch image), as kubelet
and ``crictl images --digests`` would show it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path

from containerd_daemon import Containerd
from trees import differences, walk

from corpus.makers import Containers, ocistore_cli
from corpus.recipes import CorpusImage

KUBERNETES_NAMESPACE = "k8s.io"


def registry_digest(containers: Containers, reference: str) -> str:
    raw = containers.skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{reference}")
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def archive_digest(containers: Containers, archive: Path) -> str:
    raw = containers.skopeo("inspect", "--raw", f"oci-archive:{archive}")
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def record_of(store: Path, reference: str) -> dict[str, object]:
    record = ocistore_cli("--store", store, "inspect", reference)["record"]
    assert isinstance(record, dict)
    return record


def podman_save(containers: Containers, source: str, name: str, form: str, out: Path) -> Path:
    """``podman pull`` a corpus image, tag it ``name`` and ``podman save`` it in ``form``."""
    containers.podman("pull", "-q", "--tls-verify=false", source)
    containers.podman("tag", source, name)
    containers.podman("save", "-q", "--format", form, "-o", out, name)
    return out


def assert_unpacks_as_containerd_mounts(
    store: Path,
    name: str,
    containerd: Containerd,
    ref: str,
    work: Path,
    namespace: str | None = None,
) -> None:
    """``ocistore unpack`` of ``name`` equals containerd's view of ``ref``."""
    rootfs = work / "rootfs"
    ocistore_cli("--store", store, "unpack", name, rootfs)
    with containerd.mounted(ref, namespace=namespace) as view:
        assert differences(walk(view, with_root=True), walk(rootfs, with_root=True)) == []


def test_umoci_layout_imports_with_the_registrys_digest_and_tree(
    containers: Containers,
    corpus: dict[str, CorpusImage],
    containerd: Containerd,
    tmp_path: Path,
) -> None:
    """umoci's own layout (ref.name ``full``, a manifest without mediaType), --base-name."""
    image = corpus["umoci-oci-gzip"]
    assert image.layout is not None
    store = tmp_path / "store"
    (record,) = ocistore_cli(
        "--store", store, "import", image.layout, "--base-name", "corpus.example/umoci"
    )
    assert record["reference"] == "corpus.example/umoci:full"
    assert record["digest"] == registry_digest(containers, image.reference)
    containerd.pull(image.reference, "--plain-http")
    assert_unpacks_as_containerd_mounts(
        store, "corpus.example/umoci:full", containerd, image.reference, tmp_path
    )


def test_docker_save_from_podman_imports_with_containerds_digest_and_tree(
    containers: Containers,
    corpus: dict[str, CorpusImage],
    containerd: Containerd,
    tmp_path: Path,
) -> None:
    """A legacy ``docker save`` tarball (manifest.json, repositories, layer symlinks)."""
    source = corpus["buildah-docker-gzip"].reference
    archive = podman_save(
        containers, source, "corpus.example/saved:v1", "docker-archive", tmp_path / "d.tar"
    )
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        assert {"manifest.json", "repositories"} <= set(names)
        assert any(m.issym() and m.name.endswith("/layer.tar") for m in tar.getmembers())
    store = tmp_path / "store"
    ocistore_cli("--store", store, "import", archive)
    containerd.ctr("images", "import", "--snapshotter", containerd.snapshotter, str(archive))
    ours = record_of(store, "corpus.example/saved:v1")
    # The schema 2 manifest ocistore writes is containerd's to the byte: the same digest.
    assert ours["digest"] == containerd.image_digest("corpus.example/saved:v1")
    name = "corpus.example/saved:v1"
    assert_unpacks_as_containerd_mounts(store, name, containerd, name, tmp_path)


def test_oci_archive_from_podman_is_named_as_ctr_names_it(
    containers: Containers,
    corpus: dict[str, CorpusImage],
    containerd: Containerd,
    tmp_path: Path,
) -> None:
    source = corpus["buildah-oci-zstd"].reference
    archive = podman_save(
        containers, source, "corpus.example/oci-saved:v3", "oci-archive", tmp_path / "o.tar"
    )
    store = tmp_path / "store"
    (record,) = ocistore_cli("--store", store, "import", archive)
    containerd.ctr("images", "import", "--snapshotter", containerd.snapshotter, str(archive))
    assert record["reference"] == "corpus.example/oci-saved:v3"
    assert record["digest"] == containerd.image_digest("corpus.example/oci-saved:v3")
    # (podman stores layers uncompressed and gzips them again on save: a new manifest digest.)


def test_ctr_export_round_trips_all_platforms_through_ocistore_to_skopeo(
    containers: Containers,
    corpus: dict[str, CorpusImage],
    containerd: Containerd,
    tmp_path: Path,
) -> None:
    """ctr export (index.json and a Docker manifest.json, Docker 25+'s shape) -> ocistore ->
    OCI archive -> skopeo copy --all: the registry gets the very same index digest back."""
    image = corpus["buildah-manifest-list"]
    expected = registry_digest(containers, image.reference)
    containerd.pull(image.reference, "--plain-http", "--all-platforms")
    from_ctr = tmp_path / "ctr-export.tar"
    containerd.ctr("images", "export", "--all-platforms", str(from_ctr), image.reference)
    with tarfile.open(from_ctr) as tar:
        assert {"index.json", "oci-layout", "manifest.json"} <= set(tar.getnames())
    store = tmp_path / "store"
    ocistore_cli("--store", store, "import", "--all-platforms", from_ctr)
    record = record_of(store, image.reference)
    assert record["index_digest"] == expected
    assert record["platform"] == "linux/amd64"
    ours = tmp_path / "ocistore-export.tar"
    ocistore_cli(
        "--store", store, "export", image.reference, "--all-platforms", "--oci-archive", ours
    )
    assert archive_digest(containers, ours) == expected
    copy = f"{containers.registry}/corpus/round-trip:multi"
    containers.skopeo(
        "copy", "--all", "--dest-tls-verify=false", f"oci-archive:{ours}", f"docker://{copy}"
    )
    assert registry_digest(containers, copy) == expected
    raw = json.loads(
        containers.skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{copy}")
    )
    assert len(raw["manifests"]) == 2


def test_export_piped_into_ctr_preloads_the_image_kubelet_looks_for(
    containers: Containers,
    corpus: dict[str, CorpusImage],
    containerd: Containerd,
    tmp_path: Path,
) -> None:
    """``ocistore export IMAGE --oci-archive - | ctr -n k8s.io images import -``: containerd's
    k8s.io namespace (where the CRI plugin, and so kubelet, looks) then holds the image by its
    name with the registry's index digest, unpacked; podman and skopeo read the same archive."""
    image = corpus["buildah-oci-index"]
    expected = registry_digest(containers, image.reference)
    store = tmp_path / "store"
    ocistore_cli("--store", store, "pull", image.reference, "--plain-http")
    export = subprocess.Popen(
        [sys.executable, "-m", "ocistore", "--store", str(store), "export", image.reference,
         "--oci-archive", "-"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert export.stdout is not None
    ctr = subprocess.run(
        ["ctr", "-a", str(containerd.socket), "-n", KUBERNETES_NAMESPACE, "images", "import",
         "--snapshotter", containerd.snapshotter, "-"],
        stdin=export.stdout, capture_output=True, timeout=300,
    )  # fmt: skip
    export.stdout.close()
    assert export.wait(timeout=60) == 0
    assert ctr.returncode == 0, ctr.stderr
    assert containerd.image_digest(image.reference, namespace=KUBERNETES_NAMESPACE) == expected
    check = containerd.ctr("images", "check", namespace=KUBERNETES_NAMESPACE).stdout.decode()
    assert any(image.reference in line and "complete" in line for line in check.splitlines())
    assert_unpacks_as_containerd_mounts(
        store, image.reference, containerd, image.reference, tmp_path, KUBERNETES_NAMESPACE
    )

    archive = tmp_path / "export.tar"
    ocistore_cli("--store", store, "export", image.reference, "--oci-archive", archive)
    assert archive_digest(containers, archive) == expected
    fresh = Containers(tmp_path / "podman", containers.registry)  # storage without the image
    try:
        fresh.podman("load", "-q", "-i", archive)
        inspected = fresh.podman("image", "inspect", "--format", "{{.Digest}}", image.reference)
    finally:
        fresh.close()
    assert inspected.strip() == expected
