"""The layer cases of issue 14 applied by containerd itself and by ocistore, compared.

Each layer is pushed to a real registry as a one-layer image, pulled and unpacked by the
private containerd (``containerd`` fixture), mounted read-only, and compared with ocistore's
unpack of the same layer: the same tree, or both refuse it.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import uuid
from pathlib import Path

import pytest
from containerd_daemon import Containerd
from node_registries import ManagerRegistries
from publishing import copy_with_skopeo
from trees import Entry, differences, walk

import ocistore
from ocistore.mediatypes import MediaType
from ocistore.testing.imagebuild import RawLayer, build_image

CAPABILITY = bytes.fromhex("010000020a000000000000000000000000000000")


def _tar(build: object) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        build(archive)  # type: ignore[operator]
    return out.getvalue()


def _file(archive: tarfile.TarFile, name: str, data: bytes, **fields: object) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 1_600_000_000, 0o644
    for key, value in fields.items():
        setattr(info, key, value)
    archive.addfile(info, io.BytesIO(data))


def _raw_block(name: bytes, typeflag: bytes, size: int, mtime: bytes | None = None) -> bytes:
    block = bytearray(512)
    block[0 : len(name)] = name
    block[100:108] = b"0000755\0"
    block[108:124] = b"0000000\0" * 2
    block[124:136] = b"%011o\0" % size
    block[136:148] = mtime if mtime is not None else b"13725443400\0"
    block[156:157] = typeflag
    block[257:265] = b"ustar  \0"
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def header_only_with_size() -> bytes:
    # A directory whose size field claims 1024 bytes, then two files Go sees.
    files = _tar(lambda t: (_file(t, "seen-1", b"one"), _file(t, "seen-2", b"two")))
    return _raw_block(b"dir/", b"5", 1024) + files


def capability_and_newline_name() -> bytes:
    def build(t: tarfile.TarFile) -> None:
        pax = {"SCHILY.xattr.security.capability": CAPABILITY.decode("latin-1")}
        directory = tarfile.TarInfo("bin")
        directory.type, directory.mode, directory.mtime = tarfile.DIRTYPE, 0o755, 1_600_000_000
        t.addfile(directory)
        _file(t, "bin/tool", b"\x7fELF", mode=0o755, pax_headers=pax)
        _file(t, "new\nline", b"nl")

    return _tar(build)


def negative_base256_mtime() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as archive:
        _file(archive, "old", b"1938", mtime=-1_000_000_000)
        _file(archive, "new", b"2020")
    return out.getvalue()


def blank_numeric_fields() -> bytes:
    block = bytearray(_raw_block(b"blank", b"0", 2))
    block[108:124] = b" " * 16  # uid, gid: all spaces
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block) + b"ok".ljust(512, b"\0") + bytes(1024)


def last_metadata_header_wins() -> bytes:
    def long(name: bytes, typeflag: bytes) -> bytes:
        data = name + b"\0"
        return _raw_block(b"././@LongLink", typeflag, len(data)) + data.ljust(512, b"\0")

    return (
        long(b"first-name", b"L")
        + long(b"second-name", b"L")
        + long(b"first-target", b"K")
        + long(b"second-target", b"K")
        + _raw_block(b"short", b"2", 0)
        + bytes(1024)
    )


def xattr_namespaces() -> bytes:
    def build(t: tarfile.TarFile) -> None:
        for name in ("trusted.note", "user.note", "security.note"):
            _file(t, name, b"x", pax_headers={f"SCHILY.xattr.{name}": "v\n"})

    return _tar(build)


CASES = {
    "header-only-with-size": header_only_with_size,
    "capability-and-newline-name": capability_and_newline_name,
    "negative-base256-mtime": negative_base256_mtime,
    "blank-numeric-fields": blank_numeric_fields,
    "last-metadata-header-wins": last_metadata_header_wins,
    "xattr-namespaces": xattr_namespaces,
}


def containerd_tree(
    containerd: Containerd, host: str, name: str, tar: bytes, work: Path
) -> dict[bytes, Entry] | str:
    """containerd's unpacked tree of a one-layer image, or its error message."""
    image = build_image([RawLayer(tar)])
    ref = f"{host}/layers/{name}-{uuid.uuid4().hex[:8]}:v1"
    copy_with_skopeo(image, ref, work)
    try:
        containerd.pull(ref, "--plain-http")
    except RuntimeError as exc:
        return str(exc)
    with containerd.mounted(ref) as view:
        return walk(view, holes=True)


@pytest.mark.parametrize("name", sorted(CASES))
def test_ocistore_applies_the_layer_as_containerd_does(
    name: str, containerd: Containerd, manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    tar = CASES[name]()
    theirs = containerd_tree(containerd, manager_registries.plain.host, name, tar, tmp_path)
    layer = tmp_path / "layer.tar.gz"
    layer.write_bytes(gzip.compress(tar))
    dest = tmp_path / "ocistore"
    if isinstance(theirs, str):
        with pytest.raises(ocistore.OciStoreError):
            ocistore.unpack_layer(layer, dest, MediaType.OCI_LAYER_GZIP)
        return
    ocistore.unpack_layer(layer, dest, MediaType.OCI_LAYER_GZIP)
    problems = differences(theirs, walk(dest, holes=True))
    assert not problems, "\n".join(problems)
