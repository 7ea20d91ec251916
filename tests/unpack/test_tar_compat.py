"""Issue 14, case by case: tars that containerd (Go's archive/tar) reads, read the same way.

Each test failed with the `tar`-crate reader and passes with ours. The archives come from real
tools (GNU tar, bsdtar, pzstd, gzip) or are built byte by byte where no tool writes the case.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tar_oracles import require_tool
from unpack_layers import BLOCK, end_of_archive, header_block, pax_record

import ocistore
from ocistore.errors import LayerFormatError, LayerLimitError
from ocistore.mediatypes import MediaType

# cap_dac_override,cap_fowner+ep: the permitted mask byte is 0x0a, a newline.
CAPABILITY = bytes.fromhex("010000020a000000000000000000000000000000")


def pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % BLOCK)


def unpack(
    tmp_path: Path, blob: bytes, media_type: str = MediaType.OCI_LAYER, **kw: object
) -> Path:
    layer = tmp_path / "layer"
    layer.write_bytes(blob)
    dest = tmp_path / "dest"
    ocistore.unpack_layer(layer, dest, media_type, **kw)  # type: ignore[arg-type]
    return dest


def pax_header(*records: bytes, name: bytes = b"PaxHeaders/f") -> bytes:
    body = b"".join(records)
    return header_block(name, b"x", size=len(body)) + pad(body)


def binary_record(key: str, value: bytes) -> bytes:
    body = f" {key}=".encode() + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body


def file_entry(name: bytes, data: bytes, **kw: object) -> bytes:
    return header_block(name, b"0", size=len(data), **kw) + pad(data)  # type: ignore[arg-type]


# --- 1. PAX values holding a newline ---------------------------------------------------------


def test_pax_values_with_newlines_are_applied(tmp_path: Path) -> None:
    acl = bytes.fromhex("0200000001000600ffffffff020004000a00000004000400ffffffff")
    acl += bytes.fromhex("10000400ffffffff20000400ffffffff")
    layer = (
        pax_header(
            binary_record("SCHILY.xattr.user.capability-like", CAPABILITY),
            binary_record("SCHILY.xattr.user.acl-uid-10", acl),
            binary_record("path", b"name\nwith newline"),
        )
        + file_entry(b"f", b"data")
        + end_of_archive()
    )
    dest = unpack(tmp_path, layer)
    target = dest / "name\nwith newline"
    assert target.read_bytes() == b"data"
    assert os.getxattr(target, "user.capability-like") == CAPABILITY
    assert os.getxattr(target, "user.acl-uid-10") == acl


def test_gnu_tar_capability_xattr_is_applied(tmp_path: Path) -> None:
    require_tool("tar")
    if os.geteuid() != 0:
        pytest.skip("NOT RUN: setting security.capability needs root")
    src = tmp_path / "src"
    src.mkdir()
    (src / "ping").write_bytes(b"\x7fELF")
    os.setxattr(src / "ping", "security.capability", CAPABILITY)
    archive = tmp_path / "layer.tar"
    subprocess.run(
        [
            "tar",
            "--format=posix",
            "--xattrs",
            "--xattrs-include=*",
            "-cf",
            str(archive),
            "-C",
            str(src),
            ".",
        ],
        check=True,
    )
    dest = unpack(tmp_path, archive.read_bytes())
    assert os.getxattr(dest / "ping", "security.capability") == CAPABILITY


_NAMES = st.binary(min_size=1, max_size=60).filter(
    lambda n: (
        b"/" not in n and b"\0" not in n and n not in (b".", b"..") and not n.startswith(b".wh.")
    )
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=_NAMES,
    xattrs=st.dictionaries(
        st.text("abcdefghij-.", min_size=1, max_size=12), st.binary(max_size=80), max_size=4
    ),
)
def test_any_name_and_binary_xattr_value_round_trips(
    name: bytes, xattrs: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """PAX records are read by their length prefix, whatever bytes the values hold."""
    records = [binary_record("path", name)]
    records += [binary_record(f"SCHILY.xattr.user.{k}", v) for k, v in xattrs.items()]
    layer = pax_header(*records) + file_entry(b"placeholder", b"content") + end_of_archive()
    dest = unpack(tmp_path_factory.mktemp("prop"), layer)
    target = os.path.join(os.fsencode(dest), name)
    with open(target, "rb") as f:
        assert f.read() == b"content"
    got = {k.removeprefix("user."): os.getxattr(target, k) for k in os.listxattr(target)}
    assert got == xattrs


# --- 2. Header-only entries with a size ------------------------------------------------------


@pytest.mark.parametrize("typeflag", [b"1", b"2", b"3", b"4", b"5", b"6"])
def test_header_only_entries_never_swallow_the_next_ones(typeflag: bytes, tmp_path: Path) -> None:
    hidden = file_entry(b"hidden-1", b"one") + file_entry(b"hidden-2", b"two")
    header = header_block(b"node", typeflag, size=len(hidden), linkname=b"hidden-1")
    dest = unpack(tmp_path, file_entry(b"hidden-1", b"one") + header + hidden + end_of_archive())
    assert (dest / "hidden-2").read_bytes() == b"two"
    assert (dest / "hidden-1").read_bytes() == b"one"


# --- 3. PAX-format GNU sparse files, written with holes --------------------------------------


SPARSE = 1 << 30


@pytest.fixture
def sparse_source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "disk.img", "wb") as f:
        f.write(b"head" * 1024)
        f.seek(SPARSE // 2)
        f.write(b"middle" * 1000)
        f.truncate(SPARSE)
    return src


@pytest.mark.parametrize(
    "writer",
    [
        ["bsdtar", "--format", "pax"],
        ["tar", "--format=posix", "--sparse", "--sparse-version=0.0"],
        ["tar", "--format=posix", "--sparse", "--sparse-version=0.1"],
        ["tar", "--format=posix", "--sparse", "--sparse-version=1.0"],
        ["tar", "--format=gnu", "--sparse"],
    ],
    ids=["bsdtar-1.0", "gnutar-0.0", "gnutar-0.1", "gnutar-1.0", "gnutar-oldgnu"],
)
def test_sparse_files_are_written_with_holes(
    writer: list[str], sparse_source: Path, tmp_path: Path
) -> None:
    require_tool(writer[0])
    archive = tmp_path / "layer.tar"
    subprocess.run([*writer, "-cf", str(archive), "-C", str(sparse_source), "disk.img"], check=True)
    assert archive.stat().st_size < 1 << 20  # the archive holds the data, not the holes
    dest = unpack(tmp_path, archive.read_bytes())
    image = dest / "disk.img"
    st = image.stat()
    assert st.st_size == SPARSE
    assert st.st_blocks * 512 < 1 << 20, "holes were written as zeros"
    with open(image, "rb") as f:
        assert f.read(4096) == b"head" * 1024
        f.seek(SPARSE // 2)
        assert f.read(6000) == b"middle" * 1000
        f.seek(SPARSE // 4)
        assert f.read(4096) == bytes(4096)


def test_sparse_apparent_size_counts_against_the_limit(sparse_source: Path, tmp_path: Path) -> None:
    require_tool("bsdtar")
    archive = tmp_path / "layer.tar"
    subprocess.run(
        ["bsdtar", "-cf", str(archive), "-C", str(sparse_source), "disk.img"], check=True
    )
    limits = ocistore.UnpackLimits(max_file_size=SPARSE - 1)
    with pytest.raises(LayerLimitError, match="file size") as refused:
        unpack(tmp_path, archive.read_bytes(), limits=limits)
    assert refused.value.entry == "disk.img"  # type: ignore[attr-defined]


# --- 4. Negative base-256 times ----------------------------------------------------------------


def test_pre_1970_times_read_signed_and_applied_as_containerd_does(tmp_path: Path) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as archive:
        info = tarfile.TarInfo("1938")
        info.mtime = -1_000_000_000  # base-256, two's complement
        archive.addfile(info, io.BytesIO(b""))
    raw = out.getvalue()
    assert raw[136] & 0x80  # stored in base-256
    dest = unpack(tmp_path, raw)
    # Read unsigned this was year 2446; containerd bounds pre-1970 times to the epoch.
    assert (dest / "1938").stat().st_mtime_ns == 0


# --- 5. Blank numeric fields ------------------------------------------------------------------


@pytest.mark.parametrize("blank", [b" " * 8, b"\0" * 8], ids=["spaces", "nuls"])
def test_blank_numeric_fields_read_as_zero(blank: bytes, tmp_path: Path) -> None:
    block = bytearray(header_block(b"plexus", b"0", size=2, extra={108: blank, 116: blank}))
    block[136:148] = b" " * 12
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    dest = unpack(tmp_path, bytes(block) + pad(b"ok") + end_of_archive())
    st = (dest / "plexus").stat()
    assert (dest / "plexus").read_bytes() == b"ok"
    assert (st.st_mtime_ns, st.st_uid if os.geteuid() == 0 else 0) == (0, 0)


# --- 6. Several L, K or x headers before one member -------------------------------------------


def test_the_last_long_name_link_and_pax_header_win(tmp_path: Path) -> None:
    def long(name: bytes, typeflag: bytes) -> bytes:
        data = name + b"\0"
        return header_block(b"././@LongLink", typeflag, size=len(data), magic=b"ustar  \0") + pad(
            data
        )

    layer = (
        long(b"first-name", b"L")
        + long(b"second-name", b"L")
        + long(b"first-target", b"K")
        + long(b"second-target", b"K")
        + header_block(b"short", b"2", magic=b"ustar  \0")
        + pax_header(pax_record("path", "pax-first"))
        + pax_header(pax_record("path", "pax-second"))
        + file_entry(b"short-file", b"x")
        + end_of_archive()
    )
    dest = unpack(tmp_path, layer)
    assert os.readlink(dest / "second-name") == "second-target"
    assert (dest / "pax-second").read_bytes() == b"x"
    assert sorted(p.name for p in dest.iterdir()) == ["pax-second", "second-name"]


# --- 7. Compressed framing ----------------------------------------------------------------------


def _small_tar() -> bytes:
    return file_entry(b"f", b"framed") + end_of_archive()


def test_pzstd_output_with_a_skippable_frame_is_read(tmp_path: Path) -> None:
    require_tool("pzstd")
    blob = subprocess.run(
        ["pzstd", "-q", "-c"], input=_small_tar(), capture_output=True, check=True
    )
    assert blob.stdout[1:4] == b"\x2a\x4d\x18"  # opens with a skippable frame
    dest = unpack(tmp_path, blob.stdout, MediaType.OCI_LAYER_ZSTD)
    assert (dest / "f").read_bytes() == b"framed"


def test_gzip_followed_by_zero_padding_is_read(tmp_path: Path) -> None:
    require_tool("gzip")
    blob = subprocess.run(["gzip", "-c"], input=_small_tar(), capture_output=True, check=True)
    dest = unpack(tmp_path, blob.stdout + bytes(10240), MediaType.OCI_LAYER_GZIP)
    assert (dest / "f").read_bytes() == b"framed"


# --- 8. xattr namespaces ------------------------------------------------------------------------


def test_trusted_xattrs_are_never_written(tmp_path: Path) -> None:
    layer = (
        pax_header(
            pax_record("SCHILY.xattr.trusted.overlay.opaque", "y"),
            pax_record("SCHILY.xattr.trusted.note", "v"),
            pax_record("SCHILY.xattr.user.note", "v"),
        )
        + file_entry(b"f", b"x")
        + end_of_archive()
    )
    layer_path = tmp_path / "layer"
    layer_path.write_bytes(layer)
    stats = ocistore.unpack_layer(layer_path, tmp_path / "dest", MediaType.OCI_LAYER)
    assert os.listxattr(tmp_path / "dest" / "f") == ["user.note"]
    reasons = [reason for _, reason in stats.skipped]
    assert sum("admin attributes from archive not supported" in r for r in reasons) == 2


# --- Bad input: typed, named, no silent skip ----------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "rule"),
    [
        (
            pax_header(b"99 path=x\n", name=b"PaxHeaders/bad") + file_entry(b"f", b""),
            "malformed PAX record",
        ),
        (header_block(b"neg", b"0", size_field=b"\xff" * 12), "negative size"),
        (header_block(b"bad-uid", b"0", extra={108: b"12x4567\0"}), "invalid numeric field uid"),
        (
            pax_header(
                pax_record("GNU.sparse.size", "100"),
                pax_record("GNU.sparse.numblocks", "1"),
                pax_record("GNU.sparse.map", "0,50"),
            )
            + file_entry(b"sparse", b"x" * 10),
            "sparse map does not match the stored data",
        ),
        (file_entry(b"f", b"x") + bytes(BLOCK) + file_entry(b"after-the-end", b"y"), "zero block"),
    ],
    ids=["pax-length", "negative-size", "bad-number", "sparse-data", "entry-after-end-marker"],
)
def test_unreadable_headers_are_typed_errors_naming_entry_and_rule(
    layer: bytes, rule: str, tmp_path: Path
) -> None:
    with pytest.raises(LayerFormatError, match=rule) as refused:
        unpack(tmp_path, layer + end_of_archive())
    assert getattr(refused.value, "entry", None), "the error names the entry"
