"""The oracles of the differential layer tests: Go's archive/tar (``gotar/main.go``, what
containerd reads with), GNU tar and bsdtar (what extracts); trees are read with ``trees.walk``.

Trees (``walk(..., holes=True)``) are compared on paths (raw bytes), types, contents, modes,
owners, mtimes, xattrs, hardlinks, devices and holes. Where ocistore follows containerd rather
than GNU tar, the rule is applied to the GNU tar side (``containerd_time``) and named where it
is used.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from trees import Entry

GOTAR_SOURCE = Path(__file__).parent / "gotar"
# containerd's boundTime: times before 1970 or after 2262-04-11 are applied as the epoch.
MAX_TIME_NS = (1 << 63) - 1


def require_tool(name: str) -> str:
    """The path of a tool the oracle needs: a failure in CI, a loud skip elsewhere."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing in CI (scripts/setup installs it)")
        pytest.skip(f"NOT RUN: {name} is not installed")
    return path


def require_root() -> None:
    """Owners, devices and security xattrs need root: a failure in CI, a loud skip elsewhere."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("the differential layer tests run as root in CI")
        pytest.skip("NOT RUN: the differential layer tests need root")


def build_gotar(work: Path) -> Path:
    """Compiles the Go oracle offline (standard library only) into ``work``."""
    go = require_tool("go")
    env = {
        **os.environ,
        "GOCACHE": str(work / "cache"),
        "GOPATH": str(work / "gopath"),
        "HOME": str(work),
        "GOPROXY": "off",
        "GOFLAGS": "-mod=mod",
        "CGO_ENABLED": "0",
    }
    binary = work / "gotar"
    subprocess.run(
        [go, "build", "-o", str(binary), "."],
        cwd=GOTAR_SOURCE,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return binary


@dataclass
class GoEntry:
    """One entry as Go's reader returns it."""

    name: bytes
    type: int
    size: int
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    link: bytes
    devmajor: int
    devminor: int
    xattrs: dict[bytes, bytes]
    sha256: str


@dataclass
class GoListing:
    entries: list[GoEntry]
    error: str | None


def go_list(gotar: Path, archive: Path) -> GoListing:
    """Reads ``archive`` with Go's archive/tar."""
    done = subprocess.run(
        [str(gotar), "list", str(archive)], capture_output=True, check=True, timeout=120
    )
    entries: list[GoEntry] = []
    error = None
    for line in done.stdout.splitlines():
        item = json.loads(line)
        if "error" in item:
            error = item["error"]
        elif "end" not in item:
            entries.append(
                GoEntry(
                    name=bytes.fromhex(item["name"]),
                    type=item["type"],
                    size=item["size"],
                    mode=item["mode"],
                    uid=item["uid"],
                    gid=item["gid"],
                    mtime_ns=item["mtime_s"] * 1_000_000_000 + item["mtime_ns"],
                    link=bytes.fromhex(item["link"]),
                    devmajor=item["devmajor"],
                    devminor=item["devminor"],
                    xattrs={bytes.fromhex(k): bytes.fromhex(v) for k, v in item["xattrs"].items()},
                    sha256=item.get("sha256", ""),
                )
            )
    return GoListing(entries, error)


def go_write(gotar: Path, fmt: str, entries: list[dict[str, object]]) -> bytes:
    """An archive written by Go's archive/tar (as Docker and buildkit write layers)."""
    done = subprocess.run(
        [str(gotar), "write", fmt],
        input=json.dumps(entries).encode(),
        capture_output=True,
        check=True,
        timeout=120,
    )
    return done.stdout


def containerd_time(ns: int) -> int:
    """containerd's ``boundTime`` (GNU tar applies such times as written)."""
    return ns if 0 <= ns <= MAX_TIME_NS else 0


def gnu_tar_extract(archive: Path, dest: Path) -> None:
    """GNU tar's extraction as root: owners, modes, xattrs (every namespace), holes."""
    dest.mkdir(parents=True)
    subprocess.run(
        [
            "tar",
            "-x",
            "-f",
            str(archive),
            "-C",
            str(dest),
            "--same-owner",
            "--numeric-owner",
            "--same-permissions",
            "--xattrs",
            "--xattrs-include=*",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )


def as_containerd_applies(gnu: dict[bytes, Entry], ours: dict[bytes, Entry]) -> dict[bytes, Entry]:
    """GNU tar's tree with the two rules where containerd differs applied to it.

    - Times outside 1970..2262 are applied as the epoch (containerd's ``boundTime``).
    - Directory times: GNU tar sets a directory's time when it meets the next entry outside it,
      so a directory whose files come later in the archive (bsdtar orders them so) keeps the
      extraction time; containerd, bsdtar and ocistore set directory times last. They are
      compared with Go's reading instead (``check_against_go``): ours are taken here.
    - Objects with a POSIX ACL: GNU tar sets the ACL xattr after the mode, which rewrites the
      mode from the ACL; containerd sets the mode last, which rewrites the ACL's mask and
      "other" entries from the mode. Mode and ACL are compared with Go's reading instead.
    """
    out = {}
    for rel, obj in gnu.items():
        mtime = None if obj.mtime_ns is None else containerd_time(obj.mtime_ns)
        mode, xattrs = obj.mode, obj.xattrs
        if rel in ours and obj.kind == "dir":
            mtime = ours[rel].mtime_ns
        if rel in ours and ACL in dict(obj.xattrs):
            mode, xattrs = ours[rel].mode, ours[rel].xattrs
        out[rel] = dataclasses.replace(obj, mtime_ns=mtime, mode=mode, xattrs=xattrs)
    return out


ACL = b"system.posix_acl_access"


def acl_qualifiers(value: bytes) -> list[tuple[int, int]]:
    """The (tag, id) pairs of a POSIX ACL xattr (what a later chmod does not rewrite)."""
    entries = value[4:]
    return sorted(
        (
            int.from_bytes(entries[i : i + 2], "little"),
            int.from_bytes(entries[i + 4 : i + 8], "little"),
        )
        for i in range(0, len(entries), 8)
    )


def clean_name(name: bytes) -> bytes | None:
    """The path an entry lands at (as containerd cleans it), ``None`` for the root."""
    parts: list[bytes] = []
    for part in name.split(b"/"):
        if part in (b"", b"."):
            continue
        if part == b"..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return b"/".join(parts) or None


def applied_entries(entries: Iterable[GoEntry]) -> dict[bytes, GoEntry]:
    """The entry that decides each path: the last one naming it (global headers ignored)."""
    final: dict[bytes, GoEntry] = {}
    for entry in entries:
        if entry.type == ord("g"):
            continue
        path = clean_name(entry.name)
        if path is not None:
            final[path] = entry
    return final
