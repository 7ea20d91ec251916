"""Building layer blobs for tests: tar entries (including malformed ones), gzip, zstd."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from ocistore.mediatypes import MediaType

MTIME = 1_600_000_000
BLOCK = 512


def sha256(data: bytes) -> str:
    """The OCI digest string of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def info(
    name: str,
    kind: bytes = tarfile.REGTYPE,
    *,
    size: int = 0,
    mode: int = 0o644,
    link: str = "",
    mtime: int = MTIME,
    pax: dict[str, str] | None = None,
    devmajor: int = 0,
    devminor: int = 0,
) -> tarfile.TarInfo:
    """A TarInfo with everything set explicitly."""
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.size = size
    ti.mode = mode
    ti.linkname = link
    ti.mtime = mtime
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    ti.devmajor, ti.devminor = devmajor, devminor
    if pax:
        ti.pax_headers = dict(pax)
    return ti


@dataclass
class TarWriter:
    """Appends entries to an in-memory tar; raw bytes may be spliced in anywhere."""

    fmt: int = tarfile.GNU_FORMAT
    buf: io.BytesIO = field(default_factory=io.BytesIO)

    def __post_init__(self) -> None:
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=self.fmt)  # noqa: SIM115

    def add(self, ti: tarfile.TarInfo, data: bytes = b"") -> TarWriter:
        if ti.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
            ti.size = len(data)
        self.tar.addfile(ti, io.BytesIO(data) if data else None)
        return self

    def file(self, name: str, data: bytes = b"", mode: int = 0o644) -> TarWriter:
        return self.add(info(name, mode=mode), data)

    def dir(self, name: str, mode: int = 0o755) -> TarWriter:
        return self.add(info(name, tarfile.DIRTYPE, mode=mode))

    def symlink(self, name: str, target: str) -> TarWriter:
        return self.add(info(name, tarfile.SYMTYPE, link=target, mode=0o777))

    def hardlink(self, name: str, target: str) -> TarWriter:
        return self.add(info(name, tarfile.LNKTYPE, link=target))

    def raw(self, data: bytes) -> TarWriter:
        """Splices raw bytes (block-aligned headers and data) into the stream."""
        self.tar.fileobj.write(data)
        self.tar.offset += len(data)
        return self

    def bytes(self, end: bool = True) -> bytes:
        if end:
            self.tar.close()
        return self.buf.getvalue()


def header_block(
    name: bytes,
    kind: bytes,
    *,
    size_field: bytes | None = None,
    size: int = 0,
    mode: int = 0o644,
    linkname: bytes = b"",
    magic: bytes = b"ustar\x0000",
    extra: dict[int, bytes] | None = None,
    bad_checksum: bool = False,
) -> bytes:
    """One hand-made 512-byte ustar header (for entries tarfile refuses to write)."""
    block = bytearray(BLOCK)
    block[0 : len(name)] = name
    block[100:108] = b"%07o\0" % mode
    block[108:116] = b"0000000\0"
    block[116:124] = b"0000000\0"
    block[124:136] = size_field if size_field is not None else b"%011o\0" % size
    block[136:148] = b"%011o\0" % MTIME
    block[156:157] = kind
    block[157 : 157 + len(linkname)] = linkname
    block[257:265] = magic
    for offset, value in (extra or {}).items():
        block[offset : offset + len(value)] = value
    block[148:156] = b"        "
    checksum = sum(block) + (1 if bad_checksum else 0)
    block[148:156] = b"%06o\0 " % checksum
    return bytes(block)


def pad(data: bytes) -> bytes:
    """Data padded to a whole number of blocks."""
    return data + b"\0" * (-len(data) % BLOCK)


def pax_record(key: str, value: str) -> bytes:
    """One correctly sized PAX record."""
    body = f" {key}={value}\n".encode()
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body


def end_of_archive() -> bytes:
    return b"\0" * (2 * BLOCK)


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0)


def zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=1).compress(data)


COMPRESSORS = {
    MediaType.OCI_LAYER: lambda data: data,
    MediaType.OCI_LAYER_GZIP: gz,
    MediaType.OCI_LAYER_ZSTD: zst,
}


def zeros_layer_stream(name: str, size: int) -> Iterable[bytes]:
    """A tar holding one file of ``size`` zero bytes, produced in chunks (no big buffer)."""
    yield header_block(name.encode(), b"0", size=size)
    chunk = b"\0" * (1 << 20)
    left = size
    while left > 0:
        n = min(left, len(chunk))
        yield chunk[:n]
        left -= n
    yield b"\0" * (-size % BLOCK) + end_of_archive()


def gzip_stream(parts: Iterable[bytes]) -> bytes:
    """gzip of the concatenated parts, compressed incrementally."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as g:
        for part in parts:
            g.write(part)
    return out.getvalue()


def zstd_stream(parts: Iterable[bytes]) -> bytes:
    """zstd of the concatenated parts, compressed incrementally."""
    out = io.BytesIO()
    cctx = zstandard.ZstdCompressor(level=3)
    with cctx.stream_writer(out, closefd=False) as w:
        for part in parts:
            w.write(part)
    return out.getvalue()


@dataclass(frozen=True)
class Node:
    """What a snapshot records about one filesystem object."""

    kind: str
    mode: int
    size: int
    mtime_ns: int
    nlink: int
    content: str | None
    link: str | None


def snapshot(top: Path, exclude: Path | None = None) -> dict[str, Node]:
    """Every object under ``top`` (not following symlinks), except the ``exclude`` subtree."""
    result: dict[str, Node] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath)
        if exclude is not None and here == exclude:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            path = here / name
            if exclude is not None and path == exclude:
                continue
            st = path.lstat()
            content = link = None
            if stat.S_ISREG(st.st_mode):
                content = hashlib.sha256(path.read_bytes()).hexdigest()
                kind = "file"
            elif stat.S_ISLNK(st.st_mode):
                link = os.readlink(path)
                kind = "symlink"
            elif stat.S_ISDIR(st.st_mode):
                kind = "dir"
            else:
                kind = "other"
            result[str(path.relative_to(top))] = Node(
                kind, st.st_mode, st.st_size, st.st_mtime_ns, st.st_nlink, content, link
            )
    return result


@dataclass
class Sandbox:
    """``dest`` is where layers go; ``canary`` (next to it) must never change."""

    top: Path
    dest: Path
    canary: Path
    before: dict[str, Node]

    def assert_outside_untouched(self) -> None:
        """Nothing next to ``dest`` was created, removed or modified."""
        assert snapshot(self.top, exclude=self.dest) == self.before
