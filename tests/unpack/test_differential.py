"""Differential tests of the layer engine against the tools a node is compared with.

One source tree with every feature (binary xattrs, capabilities, long and odd names, huge ids,
sparse files, devices, pre-1970 and far-future times, hardlinks) is archived by GNU tar, bsdtar,
Python's tarfile and Go's archive/tar in each of their formats. Each archive is extracted by
GNU tar and by ocistore, and the two trees must be identical, except for the one rule where
ocistore follows containerd over GNU tar (times outside 1970..2262 become the epoch). Each is
also read by Go's archive/tar, containerd's reader: ocistore's tree must hold exactly what Go
read. Go's own test archives (``fixtures/go``) are read both ways too.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from tar_oracles import (
    ACL,
    GoListing,
    acl_qualifiers,
    applied_entries,
    as_containerd_applies,
    build_gotar,
    containerd_time,
    gnu_tar_extract,
    go_list,
    go_write,
    require_root,
    require_tool,
)
from trees import Entry, differences, walk

import ocistore
from ocistore.errors import LayerFormatError, LayerLimitError
from ocistore.mediatypes import MediaType

GO_FIXTURES = Path(__file__).parent / "fixtures" / "go"
# cap_dac_override,cap_fowner+ep: the permitted mask is 0x0a, a newline byte.
CAPABILITY = bytes.fromhex("010000020a000000000000000000000000000000")
# system.posix_acl_access granting uid 10 (0x0a) read access, as Docker writes it.
ACL_UID_10 = bytes.fromhex("0200000001000600ffffffff020004000a00000004000400ffffffff")
ACL_UID_10 += bytes.fromhex("10000400ffffffff20000400ffffffff")
SPARSE_SIZE = 2 << 20
DEFAULT_MAX_FILE_SIZE = ocistore.UnpackLimits().max_file_size or 0
OLD = -1_000_000_000  # 1938
FUTURE = 16_725_225_600  # 2500
MTIME = 1_600_000_000


def _mtime(path: Path, secs: int, nanos: int = 0) -> None:
    ns = secs * 1_000_000_000 + nanos
    os.utime(path, ns=(ns, ns), follow_symlinks=False)


def make_tree(root: Path, *, full: bool) -> None:
    """The source tree; ``full`` adds what only GNU, PAX and Go formats can store."""
    root.mkdir()
    (root / "plain.txt").write_bytes(b"plain\n")
    os.chown(root / "plain.txt", 1000, 1001)
    sub = root / "dir-0750"
    sub.mkdir()
    (sub / "inner").write_bytes(b"inner" * 300)
    os.symlink("plain.txt", root / "link-rel")
    os.symlink("/etc/passwd", root / "link-abs")
    os.link(root / "plain.txt", root / "hard")
    (root / "setuid").write_bytes(b"#!/bin/sh\n")
    os.chmod(root / "setuid", 0o4755)
    for name in ("sp ace", "tab\tname", "ünï"):
        (root / name).write_bytes(name.encode())
    if full:
        deep = root / ("l" * 120)
        deep.mkdir()
        (deep / ("n" * 150)).write_bytes(b"long")
        (root / "new\nline").write_bytes(b"nl")
        (Path(os.fsdecode(bytes(root) + b"/\xff\xfe-latin1"))).write_bytes(b"latin")
        xattr = root / "xattrs"
        xattr.write_bytes(b"x")
        os.setxattr(xattr, "user.every-byte", bytes(range(256)))
        os.setxattr(xattr, "user.newlines", b"a\nb\n")
        os.setxattr(sub, "user.on-a-dir", b"\n")
        cap = root / "cap"
        cap.write_bytes(b"\x7fELF")
        os.chmod(cap, 0o755)
        os.setxattr(cap, "security.capability", CAPABILITY)
        with open(root / "sparse", "wb") as f:
            f.write(b"a" * 4096)
            f.seek(SPARSE_SIZE - 4096)
            f.write(b"b" * 4096)
        (root / "huge-ids").write_bytes(b"ids")
        os.chown(root / "huge-ids", 3_000_000, 3_000_001)
        (root / "old").write_bytes(b"1938")
        _mtime(root / "old", OLD)
        (root / "future").write_bytes(b"2500")
        _mtime(root / "future", FUTURE)
        os.mknod(root / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.mknod(root / "loop", 0o660 | stat.S_IFBLK, os.makedev(7, 200))
        os.mkfifo(root / "fifo", 0o644)
    for path in root.rglob("*"):
        if not path.is_dir() and path.name not in ("old", "future"):
            _mtime(path, MTIME, 123_456_789)
    os.chmod(sub, 0o750)
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_dir() and not path.is_symlink():
            _mtime(path, MTIME + 1)


def gnu(fmt: str, *extra: str) -> Callable[[Path, Path], None]:
    def write(src: Path, out: Path) -> None:
        cmd = ["tar", f"--format={fmt}", *extra, "-c", "-f", str(out), "-C", str(src), "."]
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)

    return write


def bsd(fmt: str) -> Callable[[Path, Path], None]:
    def write(src: Path, out: Path) -> None:
        require_tool("bsdtar")
        cmd = ["bsdtar", "--format", fmt, "-c", "-f", str(out), "-C", str(src), "."]
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)

    return write


def python_tarfile(fmt: int) -> Callable[[Path, Path], None]:
    def write(src: Path, out: Path) -> None:
        with tarfile.open(out, "w", format=fmt) as archive:
            archive.add(src, arcname=".")

    return write


def go(fmt: str) -> Callable[[Path, Path], None]:
    """Go's writer (as Docker and buildkit write layers), xattrs as PAX records."""

    def write(src: Path, out: Path) -> None:
        entries: list[dict[str, object]] = []
        seen: dict[int, bytes] = {}
        top = os.fsencode(src)
        for dirpath, dirnames, filenames in os.walk(top):
            for name in sorted(dirnames) + sorted(filenames):
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, top)
                st = os.lstat(path)
                entry: dict[str, object] = {
                    "name": rel.hex(),
                    "mode": stat.S_IMODE(st.st_mode),
                    "uid": st.st_uid,
                    "gid": st.st_gid,
                    "mtime_s": st.st_mtime_ns // 1_000_000_000,
                    "mtime_ns": st.st_mtime_ns % 1_000_000_000,
                    "link": "",
                    "devmajor": os.major(st.st_rdev),
                    "devminor": os.minor(st.st_rdev),
                    "xattrs": {},
                    "data": "",
                }
                if stat.S_ISDIR(st.st_mode):
                    entry["type"], entry["name"] = ord("5"), (rel + b"/").hex()
                elif stat.S_ISLNK(st.st_mode):
                    entry["type"], entry["link"] = ord("2"), os.readlink(path).hex()
                elif stat.S_ISREG(st.st_mode) and st.st_nlink > 1 and st.st_ino in seen:
                    entry["type"], entry["link"] = ord("1"), seen[st.st_ino].hex()
                elif stat.S_ISREG(st.st_mode):
                    seen[st.st_ino] = rel
                    entry["type"] = ord("0")
                    entry["data"] = Path(os.fsdecode(path)).read_bytes().hex()
                elif stat.S_ISFIFO(st.st_mode):
                    entry["type"] = ord("6")
                else:
                    entry["type"] = ord("3") if stat.S_ISCHR(st.st_mode) else ord("4")
                if not stat.S_ISLNK(st.st_mode):
                    entry["xattrs"] = {
                        k.encode().hex(): os.getxattr(path, k).hex() for k in os.listxattr(path)
                    }
                entries.append(entry)
        if fmt == "pax" and entries:
            # Docker writes POSIX ACLs as xattrs: one naming uid 10 (a newline byte).
            acl: dict[str, str] = entries[0]["xattrs"]  # type: ignore[assignment]
            acl[b"system.posix_acl_access".hex()] = ACL_UID_10.hex()
        gotar = require_gotar()
        out.write_bytes(go_write(gotar, fmt, entries))

    return write


_GOTAR: list[Path] = []


def require_gotar() -> Path:
    if not _GOTAR:
        raise RuntimeError("the gotar fixture has not run")
    return _GOTAR[0]


@pytest.fixture(scope="module")
def gotar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    binary = build_gotar(tmp_path_factory.mktemp("gotar"))
    _GOTAR[:] = [binary]
    return binary


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    require_root()
    base = tmp_path_factory.mktemp("sources")
    make_tree(base / "full", full=True)
    make_tree(base / "basic", full=False)
    return {"full": base / "full", "basic": base / "basic"}


# (writer, which tree). "basic" is for formats that cannot store long names, huge ids,
# negative times, devices or xattrs.
WRITERS: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    "gnutar-gnu": (gnu("gnu", "--sparse"), "full"),
    "gnutar-oldgnu": (gnu("oldgnu", "--sparse"), "full"),
    "gnutar-posix-sparse-1.0": (gnu("posix", "--sparse", "--xattrs", "--xattrs-include=*"), "full"),
    "gnutar-posix-sparse-0.1": (gnu("posix", "--sparse", "--sparse-version=0.1"), "full"),
    "gnutar-posix-sparse-0.0": (gnu("posix", "--sparse", "--sparse-version=0.0"), "full"),
    "gnutar-ustar": (gnu("ustar"), "basic"),
    "gnutar-v7": (gnu("v7"), "basic"),
    "bsdtar-pax": (bsd("pax"), "full"),
    "bsdtar-gnutar": (bsd("gnutar"), "basic"),
    "bsdtar-ustar": (bsd("ustar"), "basic"),
    "bsdtar-v7": (bsd("v7"), "basic"),
    "tarfile-gnu": (python_tarfile(tarfile.GNU_FORMAT), "full"),
    "tarfile-pax": (python_tarfile(tarfile.PAX_FORMAT), "full"),
    "tarfile-ustar": (python_tarfile(tarfile.USTAR_FORMAT), "basic"),
    "go-pax": (go("pax"), "full"),
    "go-gnu": (go("gnu"), "basic"),
}


def ocistore_tree(archive: Path, dest: Path) -> dict[bytes, Entry]:
    ocistore.unpack_layer(archive, dest, MediaType.OCI_LAYER)
    return walk(dest, holes=True)


def check_against_go(listing: GoListing, actual: dict[bytes, Entry]) -> None:
    """ocistore's tree holds exactly what Go's reader read, applied as containerd applies it."""
    assert listing.error is None, listing.error
    final = applied_entries(listing.entries)
    ancestors = {b"/".join(p.split(b"/")[:i]) for p in final for i in range(1, p.count(b"/") + 1)}
    assert set(actual) <= set(final) | ancestors, sorted(set(actual) - set(final) - ancestors)
    by_path = {p: e for p, e in final.items()}
    kinds = {ord("0"): "file", ord("S"): "file", ord("7"): "file", ord("1"): "file"}
    kinds.update({ord("5"): "dir", ord("2"): "symlink", ord("3"): "char", ord("4"): "block"})
    kinds[ord("6")] = "fifo"
    for path, entry in by_path.items():
        obj = actual.get(path)
        assert obj is not None, f"{path!r} read by Go is missing"
        assert obj.kind == kinds[entry.type], (path, obj, entry)
        if entry.type == ord("1"):
            target = by_path[entry.link.strip(b"/").removeprefix(b"./")]
            assert obj.content == target.sha256, path
            continue
        assert (obj.uid, obj.gid) == (entry.uid, entry.gid), path
        if obj.kind != "symlink":
            assert obj.mode == entry.mode & 0o7777, (path, oct(obj.mode), oct(entry.mode))
        assert obj.mtime_ns == containerd_time(entry.mtime_ns), (path, obj, entry)
        if obj.kind == "file":
            assert (obj.content, obj.size) == (entry.sha256, entry.size), path
        if obj.kind == "symlink":
            assert obj.link == entry.link, path
        if obj.kind in ("char", "block"):
            assert obj.rdev == (entry.devmajor, entry.devminor), path
        xattrs, wanted = dict(obj.xattrs), dict(entry.xattrs)
        if ACL in wanted:
            # The mode, set after the ACL as containerd does, rewrites its permission bits.
            assert acl_qualifiers(xattrs.pop(ACL)) == acl_qualifiers(wanted.pop(ACL)), path
        assert xattrs == wanted, (path, obj.xattrs, entry.xattrs)


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_ocistore_extracts_what_gnu_tar_extracts_and_go_reads(
    writer: str, sources: dict[str, Path], gotar: Path, tmp_path: Path
) -> None:
    write, which = WRITERS[writer]
    archive = tmp_path / "layer.tar"
    write(sources[which], archive)
    ours = ocistore_tree(archive, tmp_path / "ocistore")
    gnu_tar_extract(archive, tmp_path / "gnutar")
    theirs = as_containerd_applies(walk(tmp_path / "gnutar", holes=True), ours)
    assert differences(theirs, ours) == []
    check_against_go(go_list(gotar, archive), ours)
    if which == "full":
        # The features the tree was built for really were in the archive.
        assert ours[b"sparse"].size == SPARSE_SIZE
        assert ours[b"old"].mtime_ns == 0 and ours[b"future"].mtime_ns == 0
        assert ours[b"huge-ids"].uid == 3_000_000
        assert ours[b"null"].rdev == (1, 3)
        if "sparse" in writer or writer in ("gnutar-gnu", "gnutar-oldgnu", "bsdtar-pax"):
            assert ours[b"sparse"].has_holes, "a sparse archive must be written with holes"
        if writer in ("gnutar-posix-sparse-1.0", "bsdtar-pax", "go-pax"):
            assert dict(ours[b"cap"].xattrs)[b"security.capability"] == CAPABILITY
            assert dict(ours[b"xattrs"].xattrs)[b"user.every-byte"] == bytes(range(256))


def go_fixtures() -> list[str]:
    return sorted(p.name for p in GO_FIXTURES.glob("*.tar"))


# Go reads these, containerd refuses them, and so do we (the type is named in the error).
REFUSED_AS_CONTAINERD_DOES = {"gnu-incremental.tar": "unsupported entry type 'D'"}


@pytest.mark.parametrize("name", go_fixtures())
def test_go_test_archives_read_as_go_reads_them(name: str, gotar: Path, tmp_path: Path) -> None:
    require_root()
    archive = GO_FIXTURES / name
    listing = go_list(gotar, archive)
    dest = tmp_path / "ocistore"
    if any(e.size > DEFAULT_MAX_FILE_SIZE for e in listing.entries):
        # Go's 60 GB sparse files: the limits count the apparent size, holes included.
        with pytest.raises(LayerLimitError, match="file size"):
            ocistore.unpack_layer(archive, dest, MediaType.OCI_LAYER)
        return
    if listing.error is not None or name in REFUSED_AS_CONTAINERD_DOES:
        with pytest.raises(LayerFormatError) as refused:
            ocistore.unpack_layer(archive, dest, MediaType.OCI_LAYER)
        if name in REFUSED_AS_CONTAINERD_DOES:
            assert REFUSED_AS_CONTAINERD_DOES[name] in str(refused.value)
        return
    check_against_go(listing, ocistore_tree(archive, dest))
