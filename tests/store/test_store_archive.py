"""Image archives: OCI archives and docker save tarballs, round trips, naming, hostile input.

The good archives come from skopeo (``docker-archive:``) and from ocistore's own export; the
hostile ones are those archives with a member changed by Python's tarfile, since no tool
writes them. Every bad input must raise a typed error naming the problem and leave the store's
images as they were.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ocistore.errors import DigestMismatchError, LayoutError, OciStoreError
from ocistore.store import Store
from ocistore.store.archive import _member_name
from ocistore.testing.imagebuild import BuiltImage, BuiltIndex, build_image

Members = dict[str, bytes | str]  # name -> content, or "->target" for a symlink


def read_members(archive: bytes) -> Members:
    members: Members = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar:
            if member.issym():
                members[member.name] = "->" + member.linkname
            elif member.isfile():
                extracted = tar.extractfile(member)
                assert extracted is not None
                members[member.name] = extracted.read()
    return members


def write_members(members: Members, *, repeat: str | None = None) -> bytes:
    """A tar of ``members`` in order (``repeat``: one name written a second time at the end)."""
    entries = [*members.items(), *([(repeat, members[repeat])] if repeat else [])]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, value in entries:
            info = tarfile.TarInfo(name)
            if isinstance(value, str):
                info.type = tarfile.SYMTYPE
                info.linkname = value.removeprefix("->")
                tar.addfile(info)
            else:
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
    return out.getvalue()


def export_bytes(store: Store, refs: list[str], **options: object) -> bytes:
    out = io.BytesIO()
    store.export_archive(refs, out, **options)  # type: ignore[arg-type]
    return out.getvalue()


@pytest.fixture
def docker_save(tmp_path: Path, small_image: BuiltImage) -> Callable[[str], bytes]:
    """A ``docker save`` tarball written by skopeo (``docker-archive:``), tagged as asked."""

    def make(tag: str) -> bytes:
        layout = tmp_path / "layout"
        if not layout.exists():
            small_image.write_layout(layout, "v1")
        target = tmp_path / f"docker-{len(list(tmp_path.glob('docker-*')))}.tar"
        skopeo = shutil.which("skopeo")
        assert skopeo is not None, "skopeo is not installed (scripts/setup installs it)"
        subprocess.run(
            [
                skopeo,
                "--insecure-policy",
                "copy",
                f"oci:{layout}:v1",
                f"docker-archive:{target}:{tag}",
            ],
            check=True,
            capture_output=True,
        )
        return target.read_bytes()

    return make


def state_of(store: Store) -> tuple[list[tuple[str, str]], list[str]]:
    """The images a store names, and any import scratch directory left behind."""
    images = [(r.reference, r.digest) for r in store.images()]
    return images, sorted(p.name for p in store.root.glob(".import-*"))


# --- round trips ----------------------------------------------------------------------------


def test_archive_round_trip_is_deterministic_and_verified(
    store: Store, small_image: BuiltImage, tmp_path: Path
) -> None:
    small_image.write_to_store(store, "example.com/app:v1")
    first = export_bytes(store, ["example.com/app:v1"])
    assert export_bytes(store, ["example.com/app:v1"]) == first  # fixed owners, modes, times
    names = set(read_members(first))
    assert {"oci-layout", "index.json"} <= names
    assert {f"blobs/sha256/{d.split(':')[1]}" for d in small_image.blobs()} <= names
    other = Store(tmp_path / "other")
    (record,) = other.import_archive(io.BytesIO(first))
    assert (record.reference, record.digest) == ("example.com/app:v1", small_image.digest)
    assert other.fsck().ok


def test_export_carries_the_docker_manifest_json_that_docker_archive_readers_take(
    store: Store, small_image: BuiltImage, tmp_path: Path
) -> None:
    small_image.write_to_store(store, "docker.io/library/app:v1")
    archive = tmp_path / "export.tar"
    archive.write_bytes(export_bytes(store, ["docker.io/library/app:v1"]))
    (entry,) = json.loads(read_members(archive.read_bytes())["manifest.json"])
    assert entry["RepoTags"] == ["app:v1"]  # familiar, as ctr and docker write it
    skopeo = shutil.which("skopeo")
    assert skopeo is not None, "skopeo is not installed (scripts/setup installs it)"
    config = subprocess.run(
        [skopeo, "inspect", "--config", "--raw", f"docker-archive:{archive}"],
        check=True,
        capture_output=True,
    ).stdout
    assert config == small_image.config
    # Without its index.json the archive is a legacy docker save: the same image comes back.
    members = read_members(archive.read_bytes())
    del members["index.json"], members["oci-layout"]
    other = Store(tmp_path / "other")
    (record,) = other.import_archive(io.BytesIO(write_members(members)))
    assert record.reference == "docker.io/library/app:v1"
    assert record.config_digest == small_image.config_digest


def test_multi_arch_export_keeps_the_index_and_the_chosen_platforms(
    tmp_path: Path, multi_arch: BuiltIndex
) -> None:
    index = multi_arch
    amd, arm = index.images
    layout = tmp_path / "layout"
    index.write_layout(layout, "example.com/multi:1")
    store = Store(tmp_path / "store")
    (record,) = store.import_layout(layout, platform="linux/amd64", all_platforms=True)
    assert (record.digest, record.index_digest) == (amd.digest, index.digest)

    def blobs_of(archive: bytes) -> set[str]:
        members = read_members(archive)
        (entry,) = json.loads(members["index.json"])["manifests"]
        assert entry["digest"] == index.digest  # the registry's digest, not a platform's
        return {"sha256:" + n.rsplit("/", 1)[1] for n in members if n.startswith("blobs/")}

    default = blobs_of(export_bytes(store, ["example.com/multi:1"]))
    assert set(amd.blobs()) < default and not set(arm.blobs()) & default
    only_arm = blobs_of(export_bytes(store, ["example.com/multi:1"], platforms=["linux/arm64"]))
    assert set(arm.blobs()) < only_arm and not set(amd.blobs()) & only_arm
    everything = blobs_of(export_bytes(store, ["example.com/multi:1"], all_platforms=True))
    assert everything == set(index.blobs())
    # Re-imported with every platform, it exports the same bytes again.
    again = Store(tmp_path / "again")
    again.import_archive(
        io.BytesIO(export_bytes(store, ["example.com/multi:1"], all_platforms=True)),
        all_platforms=True,
    )
    assert export_bytes(again, ["example.com/multi:1"], all_platforms=True) == export_bytes(
        store, ["example.com/multi:1"], all_platforms=True
    )
    # An archive of one platform names the one it lacks when asked for another.
    with pytest.raises(LayoutError, match="lacks the linux/arm64 manifest"):
        Store(tmp_path / "third").import_archive(
            io.BytesIO(export_bytes(store, ["example.com/multi:1"])), platform="linux/arm64"
        )


def test_exporting_a_platform_the_store_lacks_fails_before_writing(
    tmp_path: Path, multi_arch: BuiltIndex
) -> None:
    arm = multi_arch.images[1]
    store = Store(tmp_path / "store")
    multi_arch.write_to_store(store, "example.com/multi:1", platform="linux/amd64")
    (store.root / "blobs" / "sha256" / arm.digest.split(":")[1]).unlink(missing_ok=True)
    out = io.BytesIO()
    with pytest.raises(OciStoreError, match=r"linux/arm64 manifest .* is not in the store"):
        store.export_archive(["example.com/multi:1"], out, all_platforms=True)
    assert out.getvalue() == b""


@pytest.mark.parametrize(
    ("tag", "name", "expected"),
    [
        ("corpus.example/team/app:v1", None, "corpus.example/team/app:v1"),
        ("busybox:latest", None, "docker.io/library/busybox:latest"),
        ("busybox:latest", "other.example/ignored", "docker.io/library/busybox:latest"),
    ],
)
def test_docker_save_is_named_from_repo_tags_as_containerd_does(
    docker_save: Callable[[str], bytes],
    small_image: BuiltImage,
    tmp_path: Path,
    tag: str,
    name: str | None,
    expected: str,
) -> None:
    archive = docker_save(tag)
    assert "repositories" in read_members(archive)
    store = Store(tmp_path / "store")
    (record,) = store.import_archive(io.BytesIO(archive), name)
    assert record.reference == expected
    assert list(store.config(expected).diff_ids) == small_image.diff_ids
    store.unpack(expected, tmp_path / "rootfs")  # the layers' diff_ids verify
    assert (tmp_path / "rootfs" / "app" / "main.py").read_bytes() == b"print('hi')\n"


def test_docker_save_without_repo_tags_is_known_by_digest(
    docker_save: Callable[[str], bytes], tmp_path: Path
) -> None:
    members = read_members(docker_save("example.com/x:1"))
    manifest = json.loads(members["manifest.json"])
    manifest[0]["RepoTags"] = None
    members["manifest.json"] = json.dumps(manifest).encode()
    store = Store(tmp_path / "store")
    (record,) = store.import_archive(io.BytesIO(write_members(members)))
    assert record.reference == record.digest


# --- bad input --------------------------------------------------------------------------


def change_manifest_json(
    archive: bytes, change: Callable[[list[dict[str, object]]], None]
) -> bytes:
    members = read_members(archive)
    manifest = json.loads(members["manifest.json"])
    change(manifest)
    members["manifest.json"] = json.dumps(manifest).encode()
    return write_members(members)


def hostile_archives(docker: bytes, oci: bytes, layer: str) -> dict[str, tuple[bytes, str]]:
    """Each hostile archive and the words its error must contain."""

    def config_at(path: str) -> Callable[[list[dict[str, object]]], None]:
        return lambda manifest: manifest[0].update(Config=path)

    oci_members = read_members(oci)
    missing = dict(oci_members)
    del missing[f"blobs/sha256/{layer}"]
    duplicate = write_members(oci_members, repeat="index.json")
    linked = read_members(docker)
    link_name = next(n for n, v in linked.items() if isinstance(v, str))
    linked[link_name] = "->../../../../etc/passwd"
    manifest = json.loads(linked["manifest.json"])
    manifest[0]["Layers"] = [link_name]
    linked["manifest.json"] = json.dumps(manifest).encode()
    conflicting = json.loads(oci_members["index.json"])
    twin = json.loads(json.dumps(conflicting["manifests"][0]))
    twin["digest"] = "sha256:" + "0" * 64
    conflicting["manifests"].append(twin)
    return {
        "neither format": (write_members({"hello.txt": b"hi"}), "neither an OCI archive"),
        "not a tar": (b"\x89PNG\r\n\x1a\n" + bytes(2000), "not a readable tar archive"),
        "empty": (b"", "not a readable tar archive"),
        "missing blob": (write_members(missing), f"lacks blob sha256:{layer}"),
        "config outside": (
            change_manifest_json(docker, config_at("../../escape.json")),
            "points outside the archive",
        ),
        "config absolute": (
            change_manifest_json(docker, config_at("/etc/passwd")),
            "points outside the archive",
        ),
        "config absent": (change_manifest_json(docker, config_at("nothere.json")), "not a file"),
        "symlink outside": (write_members(linked), "outside the archive"),
        "member outside": (write_members({"../escape": b"x", **oci_members}), "outside"),
        "member absolute": (write_members({"/abs": b"x", **oci_members}), "outside"),
        "duplicate member": (duplicate, "appears twice"),
        "conflicting names": (
            write_members({**oci_members, "index.json": json.dumps(conflicting).encode()}),
            "conflicting names",
        ),
        "conflicting repo tags": (
            change_manifest_json(docker, lambda m: m.append({**m[0], "Layers": []})),
            "conflicting names",
        ),
    }


HOSTILE = [
    "neither format", "not a tar", "empty", "missing blob", "config outside", "config absolute",
    "config absent", "symlink outside", "member outside", "member absolute", "duplicate member",
    "conflicting names", "conflicting repo tags",
]  # fmt: skip


@pytest.mark.parametrize("case", HOSTILE)
def test_bad_archives_raise_a_typed_error_and_leave_the_store_as_it_was(
    store: Store,
    small_image: BuiltImage,
    docker_save: Callable[[str], bytes],
    case: str,
) -> None:
    other = build_image([{"kept": b"already here"}])
    other.write_to_store(store, "example.com/app:v1")  # the same name the archives carry
    before = state_of(store)
    source = Store(store.root.parent / "source")
    small_image.write_to_store(source, "example.com/app:v1")
    oci = export_bytes(source, ["example.com/app:v1"])
    archive, words = hostile_archives(
        docker_save("example.com/app:v1"), oci, small_image.layers[1].digest.split(":")[1]
    )[case]
    with pytest.raises(LayoutError, match=words) as raised:
        store.import_archive(io.BytesIO(archive))
    assert isinstance(raised.value, (OciStoreError, ValueError))
    assert state_of(store) == before
    assert store.fsck().ok


def test_a_corrupt_second_image_leaves_the_first_unnamed(
    store: Store, small_image: BuiltImage, tmp_path: Path
) -> None:
    """All or nothing: the first image's blobs may be copied, but no image is named."""
    source = Store(tmp_path / "source")
    second = build_image([{"second": b"image"}])
    small_image.write_to_store(source, "example.com/first:v1")
    second.write_to_store(source, "example.com/second:v1")
    members = read_members(export_bytes(source, ["example.com/first:v1", "example.com/second:v1"]))
    victim = f"blobs/sha256/{second.layers[0].digest.split(':')[1]}"
    corrupt = bytearray(members[victim])  # type: ignore[arg-type]
    corrupt[-3] ^= 0xFF
    members[victim] = bytes(corrupt)
    with pytest.raises(DigestMismatchError):
        store.import_archive(io.BytesIO(write_members(members)))
    assert state_of(store) == ([], [])
    store.gc()
    assert not any((store.root / "blobs" / "sha256").iterdir())  # nothing stays behind


def test_import_removes_scratch_that_a_killed_import_left(
    store: Store, small_image: BuiltImage
) -> None:
    old, young = store.root / ".import-killed", store.root / ".import-running"
    for directory in (old, young):
        (directory / "archive").mkdir(parents=True)
    os.utime(old, (0, 0))
    source = Store(store.root.parent / "source")
    small_image.write_to_store(source, "example.com/app:v1")
    store.import_archive(io.BytesIO(export_bytes(source, ["example.com/app:v1"])))
    assert not old.exists()
    assert young.exists()  # another import may be writing it


def test_cli_refuses_a_bad_archive_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(write_members({"hello.txt": b"hi"}))
    done = subprocess.run(
        [sys.executable, "-m", "ocistore", "--store", str(tmp_path / "store"), "import", str(bad)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "neither an OCI archive" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_pipes_an_archive_from_one_store_to_another(
    store: Store, small_image: BuiltImage, tmp_path: Path
) -> None:
    small_image.write_to_store(store, "example.com/app:v1")
    cli = [sys.executable, "-m", "ocistore"]
    exported = subprocess.run(
        [*cli, "--store", str(store.root), "export", "example.com/app:v1", "--oci-archive", "-"],
        capture_output=True,
        check=True,
    ).stdout
    assert exported == export_bytes(store, ["example.com/app:v1"])  # nothing else on stdout
    imported = subprocess.run(
        [*cli, "--json", "--store", str(tmp_path / "other"), "import", "-"],
        input=exported,
        capture_output=True,
        check=True,
    )
    (record,) = json.loads(imported.stdout)
    assert (record["reference"], record["digest"]) == ("example.com/app:v1", small_image.digest)
    both = subprocess.run(
        [*cli, "--store", str(store.root), "export", "example.com/app:v1", "--oci-layout",
         str(tmp_path / "l"), "--oci-archive", str(tmp_path / "a.tar")],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert both.returncode == 2
    assert "exactly one of --oci-layout DIR and --oci-archive FILE" in both.stderr
    assert not (tmp_path / "l").exists() and not (tmp_path / "a.tar").exists()


# --- properties -------------------------------------------------------------------------


@given(st.text(alphabet="./ab\\x00-", max_size=30))
def test_member_names_never_leave_the_archive(raw: str) -> None:
    try:
        name = _member_name(raw)
    except LayoutError:
        return
    assert not name.startswith("/")
    assert ".." not in name.split("/")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["Config", "RepoTags", "Layers", "x"]), inner, max_size=4)
    ),
    max_leaves=12,
)


@hsettings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=JSON)
def test_any_manifest_json_gives_a_typed_error_or_an_image(
    tmp_path: Path, document: object
) -> None:
    store = Store(tmp_path / "prop-store")
    archive = write_members({"manifest.json": json.dumps(document).encode(), "a.json": b"{}"})
    try:
        store.import_archive(io.BytesIO(archive))
    except OciStoreError as exc:
        assert isinstance(exc, ValueError)
    assert state_of(store)[1] == []
