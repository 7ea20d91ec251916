"""A corpus of hostile layers: each is refused with the exact typed error or applied safely,
and nothing next to the destination is ever created, modified or removed."""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from unpack_layers import (
    BLOCK,
    Sandbox,
    TarWriter,
    end_of_archive,
    gz,
    gzip_stream,
    header_block,
    info,
    pad,
    pax_record,
    sha256,
    zeros_layer_stream,
    zst,
    zstd_stream,
)

import ocistore
from ocistore import (
    DigestMismatchError,
    LayerFormatError,
    LayerLimitError,
    UnpackLimits,
    UnsafeLayerError,
)
from ocistore.mediatypes import MediaType

Build = Callable[[Sandbox], list[bytes]]
Check = Callable[[Sandbox, list[ocistore.UnpackStats]], None]


@dataclass
class Case:
    """Layers applied in order; the last one raises ``error`` (or all succeed)."""

    build: Build
    error: type[Exception] | None = None
    entry: str | None = None
    media_type: str = MediaType.OCI_LAYER
    limits: UnpackLimits | None = None
    check: Check | None = None
    digest: Callable[[bytes], str] | None = None
    tags: list[str] = field(default_factory=list)


def one(writer: Callable[[Sandbox], TarWriter]) -> Build:
    return lambda box: [writer(box).bytes()]


def outside(box: Sandbox) -> str:
    return str(box.canary)


def raw_layer(*parts: bytes) -> Build:
    return lambda box: [b"".join(parts) + end_of_archive()]


def landed_inside(rel: str, content: bytes) -> Check:
    def check(box: Sandbox, _: list[ocistore.UnpackStats]) -> None:
        path = box.dest / rel.replace("{canary}", str(box.canary).lstrip("/"))
        assert path.read_bytes() == content

    return check


def is_symlink(rel: str, target: str) -> Check:
    def check(box: Sandbox, _: list[ocistore.UnpackStats]) -> None:
        assert os.readlink(box.dest / rel) == target.replace("{canary}", str(box.canary))

    return check


def skipped_reason(fragment: str) -> Check:
    def check(box: Sandbox, stats: list[ocistore.UnpackStats]) -> None:
        assert any(fragment in reason for _, reason in stats[-1].skipped), stats[-1].skipped

    return check


def pax_entry(records: bytes, name: bytes = b"PaxHeaders/f") -> bytes:
    return header_block(name, b"x", size=len(records)) + pad(records)


def _many_files(n: int) -> bytes:
    w = TarWriter()
    for i in range(n):
        w.file(f"f{i}", b"")
    return w.bytes()


def _sparse_header(real_size: int) -> bytes:
    """A GNU sparse entry: one 512-byte data chunk at offset 0, then a hole to real_size."""
    # Chunks (offset, size): the data, then an empty chunk at the end as GNU tar writes.
    sparse = b"%011o\0" % 0 + b"%011o\0" % BLOCK + b"%011o\0" % real_size + b"%011o\0" % 0
    real = b"%011o\0" % real_size
    return header_block(
        b"sparse", b"S", size=BLOCK, magic=b"ustar  \0", extra={386: sparse, 483: real}
    )


def _check_sparse(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) == 1 << 20
    assert data[:BLOCK] == b"S" * BLOCK and data[BLOCK:].count(0) == len(data) - BLOCK


def _check_not_smuggled(box: Sandbox) -> None:
    # The PAX size (512) covers the would-be header: it is file content, not an entry.
    assert (box.dest / "carrier").read_bytes() == SMUGGLED
    assert not (box.dest / "smuggled").exists()


def _device_or_skipped(box: Sandbox, stats: list[ocistore.UnpackStats], rel: str) -> None:
    node = box.dest / rel
    if os.geteuid() == 0:
        mode = node.lstat().st_mode
        assert stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
    else:
        assert not node.exists()
        assert any(path == rel for path, _ in stats[-1].skipped)


def _setuid_kept_or_stripped(box: Sandbox, stats: list[ocistore.UnpackStats], rel: str) -> None:
    mode = (box.dest / rel).stat().st_mode & 0o7777
    assert mode == (0o4755 if os.geteuid() == 0 else 0o755)


SMUGGLED = header_block(b"smuggled", b"0", size=0)

CASES: dict[str, Case] = {
    # --- path traversal and absolute names ------------------------------------------------
    "dotdot-file": Case(
        one(lambda b: TarWriter().file("../canary/evil", b"x")), UnsafeLayerError, "../canary/evil"
    ),
    "dotdot-middle": Case(
        one(lambda b: TarWriter().file("a/../../canary/file", b"x")), UnsafeLayerError
    ),
    "dotdot-dir": Case(one(lambda b: TarWriter().dir("../canary/sub")), UnsafeLayerError),
    "absolute-name": Case(
        one(lambda b: TarWriter().file(f"{outside(b)}/file", b"pwned")),
        check=landed_inside("{canary}/file", b"pwned"),
    ),
    "gnu-longname-dotdot": Case(
        one(lambda b: TarWriter().file("a/" * 60 + "../" * 70 + "canary/evil", b"x")),
        UnsafeLayerError,
    ),
    "pax-path-dotdot": Case(
        one(
            lambda b: TarWriter(fmt=tarfile.PAX_FORMAT).add(
                info("x", pax={"path": "../canary/evil"}), b"x"
            )
        ),
        UnsafeLayerError,
    ),
    # --- symlink escapes ------------------------------------------------------------------
    "symlink-absolute-then-write": Case(
        one(lambda b: TarWriter().symlink("link", outside(b)).file("link/file", b"pwned")),
        check=landed_inside("{canary}/file", b"pwned"),
    ),
    "symlink-relative-then-write": Case(
        one(
            lambda b: (
                TarWriter().symlink("link", "../../../../../../canary").file("link/file", b"pwned")
            )
        ),
        check=landed_inside("canary/file", b"pwned"),
    ),
    "symlink-chained": Case(
        one(
            lambda b: (
                TarWriter()
                .symlink("a", "b")
                .symlink("b", "/c")
                .symlink("c", "../../" + outside(b))
                .file("a/file", b"pwned")
            )
        ),
        check=landed_inside("{canary}/file", b"pwned"),
    ),
    "symlinked-parent-from-earlier-layer": Case(
        lambda b: [
            TarWriter().symlink("etc", outside(b)).bytes(),
            TarWriter().file("etc/file", b"pwned").file("etc/sub/nested", b"pwned").bytes(),
        ],
        check=landed_inside("{canary}/sub/nested", b"pwned"),
    ),
    "symlink-then-dir-chmod (CVE-2026-33056)": Case(
        one(lambda b: TarWriter().symlink("d", f"{outside(b)}/dir-0755").dir("d", mode=0o777)),
        check=lambda box, _: stat.S_ISDIR((box.dest / "d").lstat().st_mode),
    ),
    "symlink-leaf-overwritten-by-file": Case(
        one(lambda b: TarWriter().symlink("f", f"{outside(b)}/file").file("f", b"pwned")),
        check=landed_inside("f", b"pwned"),
    ),
    "symlink-loop-parent": Case(
        one(lambda b: TarWriter().symlink("a", "b").symlink("b", "a").file("a/x", b"x")),
        UnsafeLayerError,
        "a/x",
    ),
    # Entries that resolve to the root are ignored, as containerd does ("resolved to root").
    "symlink-named-dot": Case(
        one(lambda b: TarWriter().symlink(".", outside(b))), check=skipped_reason("root")
    ),
    "symlink-named-slash": Case(
        one(lambda b: TarWriter().symlink("/", outside(b))), check=skipped_reason("root")
    ),
    # --- hardlink escapes -----------------------------------------------------------------
    "hardlink-dotdot": Case(
        one(lambda b: TarWriter().hardlink("h", "../canary/file")), UnsafeLayerError, "h"
    ),
    "hardlink-absolute-outside": Case(
        one(lambda b: TarWriter().hardlink("h", f"{outside(b)}/file")), LayerFormatError, "h"
    ),
    "hardlink-through-symlink": Case(
        one(lambda b: TarWriter().symlink("s", outside(b)).hardlink("h", "s/file")),
        LayerFormatError,
        "h",
    ),
    "hardlink-to-escaping-symlink": Case(
        one(
            lambda b: (
                TarWriter()
                .symlink("s", f"{outside(b)}/file")
                .hardlink("h", "s")
                .file("h", b"pwned")
            )
        ),
        check=landed_inside("h", b"pwned"),
    ),
    "hardlink-to-root": Case(one(lambda b: TarWriter().hardlink("h", "/")), UnsafeLayerError),
    "hardlink-to-directory": Case(
        one(lambda b: TarWriter().dir("d").hardlink("h", "d")), UnsafeLayerError
    ),
    # --- whiteouts ------------------------------------------------------------------------
    "whiteout-dotdot": Case(
        one(lambda b: TarWriter().file("d/.wh...")), UnsafeLayerError, "d/.wh..."
    ),
    "whiteout-dot": Case(one(lambda b: TarWriter().file("d/.wh..")), UnsafeLayerError),
    "whiteout-traversal": Case(one(lambda b: TarWriter().file("../.wh.canary")), UnsafeLayerError),
    "whiteout-bare": Case(one(lambda b: TarWriter().file(".wh.")), LayerFormatError),
    "whiteout-through-symlinked-parent": Case(
        lambda b: [
            TarWriter().symlink("s", outside(b)).bytes(),
            TarWriter().file("s/.wh.file").bytes(),
        ]
    ),
    "opaque-through-symlinked-parent": Case(
        lambda b: [
            TarWriter().symlink("s", outside(b)).bytes(),
            TarWriter().file("s/.wh..wh..opq").bytes(),
        ]
    ),
    "opaque-at-root-via-dotdot": Case(
        one(lambda b: TarWriter().file("../.wh..wh..opq")), UnsafeLayerError
    ),
    # --- special files and modes ----------------------------------------------------------
    "device-node-char": Case(
        one(
            lambda b: TarWriter().add(
                info("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3)
            )
        ),
        check=lambda box, stats: _device_or_skipped(box, stats, "dev/null"),
    ),
    "device-node-block": Case(
        one(
            lambda b: TarWriter().add(
                info("dev/sda", tarfile.BLKTYPE, mode=0o660, devmajor=8, devminor=0)
            )
        ),
        check=lambda box, stats: _device_or_skipped(box, stats, "dev/sda"),
    ),
    "setuid-file": Case(
        one(lambda b: TarWriter().file("bin/su", b"x", mode=0o4755)),
        check=lambda box, stats: _setuid_kept_or_stripped(box, stats, "bin/su"),
    ),
    "overlay-xattr": Case(
        one(
            lambda b: TarWriter(fmt=tarfile.PAX_FORMAT).add(
                info("f", pax={"SCHILY.xattr.trusted.overlay.redirect": "/etc"}), b"x"
            )
        ),
        # containerd never sets trusted.* from a layer ("admin attributes ... not supported").
        check=skipped_reason("admin attributes from archive not supported"),
    ),
    "user-overlay-xattr": Case(
        one(
            lambda b: TarWriter(fmt=tarfile.PAX_FORMAT).add(
                info("f", pax={"SCHILY.xattr.user.overlay.redirect": "/etc"}), b"x"
            )
        ),
        check=skipped_reason("overlayfs control"),
    ),
    # --- sizes and bombs ------------------------------------------------------------------
    "huge-pax-size": Case(
        raw_layer(pax_entry(pax_record("size", str(1 << 45))), header_block(b"big", b"0")),
        LayerLimitError,
        "big",
    ),
    "huge-base256-size": Case(
        raw_layer(header_block(b"big", b"0", size_field=b"\x80" + (1 << 50).to_bytes(11, "big"))),
        LayerLimitError,
    ),
    "gzip-bomb": Case(
        lambda b: [gzip_stream(zeros_layer_stream("zeros", 64 << 20))],
        LayerLimitError,
        media_type=MediaType.OCI_LAYER_GZIP,
        limits=UnpackLimits(max_bytes=4 << 20),
    ),
    "zstd-bomb": Case(
        lambda b: [zstd_stream(zeros_layer_stream("zeros", 64 << 20))],
        LayerLimitError,
        media_type=MediaType.OCI_LAYER_ZSTD,
        limits=UnpackLimits(max_bytes=4 << 20),
    ),
    "file-size-limit": Case(
        lambda b: [gz(TarWriter().file("f", b"\0" * (2 << 20)).bytes())],
        LayerLimitError,
        "f",
        media_type=MediaType.OCI_LAYER_GZIP,
        limits=UnpackLimits(max_file_size=1 << 20),
    ),
    "entry-count-limit": Case(
        lambda b: [_many_files(500)], LayerLimitError, limits=UnpackLimits(max_entries=100)
    ),
    "path-length-limit": Case(
        one(lambda b: TarWriter().file("d/" * 100 + "f", b"x")),
        LayerLimitError,
        limits=UnpackLimits(max_path_length=100),
    ),
    "sparse-real-size-bomb": Case(
        raw_layer(_sparse_header(real_size=4 << 30), pad(b"S" * BLOCK)),
        LayerLimitError,
        "sparse",
        limits=UnpackLimits(max_file_size=1 << 30),
    ),
    "sparse-file": Case(
        raw_layer(_sparse_header(real_size=1 << 20), pad(b"S" * BLOCK)),
        check=lambda box, _: _check_sparse(box.dest / "sparse"),
    ),
    # --- duplicates and replacement -------------------------------------------------------
    "duplicate-files": Case(
        one(lambda b: TarWriter().file("a", b"first").file("a", b"second")),
        check=landed_inside("a", b"second"),
    ),
    "file-dir-symlink-same-name": Case(
        one(
            lambda b: (
                TarWriter().file("a", b"x").dir("a").file("a/in", b"y").symlink("a", outside(b))
            )
        ),
        check=is_symlink("a", "{canary}"),
    ),
    "file-as-parent": Case(
        one(lambda b: TarWriter().file("f", b"x").file("f/x", b"y")), LayerFormatError, "f/x"
    ),
    # --- malformed tar --------------------------------------------------------------------
    "malformed-pax-length": Case(
        raw_layer(pax_entry(b"99 path=x\n"), header_block(b"f", b"0")), LayerFormatError
    ),
    "malformed-pax-size-value": Case(
        raw_layer(pax_entry(pax_record("size", "12abc")), header_block(b"f", b"0")),
        LayerFormatError,
    ),
    "pax-size-desync (TARmageddon)": Case(
        raw_layer(
            pax_entry(pax_record("size", str(BLOCK))),
            header_block(b"carrier", b"0", size=0),
            SMUGGLED,
        ),
        check=lambda box, _: _check_not_smuggled(box),
    ),
    # An unknown GNU sparse version is a plain file to Go.
    "pax-sparse-unknown-version": Case(
        raw_layer(
            pax_entry(pax_record("GNU.sparse.major", "1")),
            header_block(b"f", b"0", size=2) + pad(b"ok"),
        ),
        check=landed_inside("f", b"ok"),
    ),
    "bad-checksum": Case(raw_layer(header_block(b"f", b"0", bad_checksum=True)), LayerFormatError),
    "unsupported-type-volume": Case(raw_layer(header_block(b"vol", b"V")), LayerFormatError),
    # Go reads an `x` header whatever the block's format, a v7 one included.
    "v7-pax-header-interpreted": Case(
        raw_layer(
            header_block(b"h", b"x", magic=b"\0" * 8, size=len(pax_record("path", "long")))
            + pad(pax_record("path", "long")),
            header_block(b"f", b"0", size=2) + pad(b"ok"),
        ),
        check=landed_inside("long", b"ok"),
    ),
    "truncated-tar-mid-data": Case(
        lambda b: [TarWriter().file("f", b"x" * 5000).bytes()[:2000]], LayerFormatError
    ),
    "truncated-gzip": Case(
        lambda b: [gz(TarWriter().file("f", os.urandom(20000)).bytes())[:5000]],
        LayerFormatError,
        media_type=MediaType.OCI_LAYER_GZIP,
    ),
    "truncated-zstd": Case(
        lambda b: [zst(TarWriter().file("f", os.urandom(20000)).bytes())[:5000]],
        LayerFormatError,
        media_type=MediaType.OCI_LAYER_ZSTD,
    ),
    "garbage-after-gzip": Case(
        lambda b: [gz(TarWriter().file("f", b"x").bytes()) + b"GARBAGE!"],
        LayerFormatError,
        media_type=MediaType.OCI_LAYER_GZIP,
    ),
    # The magic bytes decide, as in containerd's DecompressStream (the digest still binds them).
    "zstd-under-a-gzip-media-type": Case(
        lambda b: [zst(TarWriter().file("f", b"x").bytes())],
        check=landed_inside("f", b"x"),
        media_type=MediaType.OCI_LAYER_GZIP,
    ),
    "plain-tar-under-a-zstd-media-type": Case(
        lambda b: [TarWriter().file("f", b"x").bytes()],
        check=landed_inside("f", b"x"),
        media_type=MediaType.OCI_LAYER_ZSTD,
    ),
    "gzip-with-zero-padding": Case(
        lambda b: [gz(TarWriter().file("f", b"x").bytes()) + bytes(4096)],
        check=landed_inside("f", b"x"),
        media_type=MediaType.OCI_LAYER_GZIP,
    ),
    "garbage-after-tar-end": Case(
        lambda b: [TarWriter().file("f", b"x").bytes() + b"trailing garbage"],
        check=lambda box, stats: None,
        tags=["diff_id-covers-all"],
    ),
    # Whatever resolves to the root is ignored, as containerd does ("resolved to root").
    "entry-named-dot-file": Case(
        one(lambda b: TarWriter().file(".", b"x").file("ok", b"ok")),
        check=landed_inside("ok", b"ok"),
    ),
    "entry-named-slash-file": Case(
        # Type 0 with a trailing slash is a file (only type \0 marks a directory so, as in Go).
        one(lambda b: TarWriter().file("/", b"x").file("ok", b"ok")),
        check=landed_inside("ok", b"ok"),
    ),
    "entry-named-dotdot-symlink": Case(
        one(lambda b: TarWriter().symlink("..", "/")), UnsafeLayerError
    ),
    "entry-with-empty-name": Case(raw_layer(header_block(b"", b"0")), check=skipped_reason("root")),
    "entry-dot-slash-dir": Case(
        one(lambda b: TarWriter().dir("./").file("./ok", b"ok")), check=landed_inside("ok", b"ok")
    ),
    "nul-in-pax-path": Case(
        raw_layer(pax_entry(pax_record("path", "a\0b")), header_block(b"f", b"0")), LayerFormatError
    ),
    "wrong-digest": Case(
        lambda b: [gz(TarWriter().file("f", b"x").bytes())],
        DigestMismatchError,
        media_type=MediaType.OCI_LAYER_GZIP,
        digest=lambda blob: sha256(blob + b"!"),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_layer(name: str, resolver: str, sandbox: Sandbox, tmp_path: Path) -> None:
    case = CASES[name]
    blobs = case.build(sandbox)
    stats: list[ocistore.UnpackStats] = []
    for i, blob in enumerate(blobs):
        path = tmp_path / f"layer{i}"
        path.write_bytes(blob)
        last = i == len(blobs) - 1
        kwargs: dict[str, object] = {"resolver": resolver}
        if case.limits is not None:
            kwargs["limits"] = case.limits
        if case.digest is not None:
            kwargs["digest"] = case.digest(blob)
        if last and case.error is not None:
            with pytest.raises(case.error) as info_:
                ocistore.unpack_layer(path, sandbox.dest, case.media_type, **kwargs)  # type: ignore[arg-type]
            assert isinstance(info_.value, ocistore.OciStoreError)
            if case.entry is not None:
                assert getattr(info_.value, "entry", None) == case.entry
                assert case.entry in str(info_.value)
        else:
            result = ocistore.unpack_layer(path, sandbox.dest, case.media_type, **kwargs)  # type: ignore[arg-type]
            stats.append(result)
            if "diff_id-covers-all" in case.tags:
                assert result.diff_id == sha256(blob)
    if case.check is not None:
        case.check(sandbox, stats)
    sandbox.assert_outside_untouched()
