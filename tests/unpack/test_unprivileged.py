"""Unprivileged multi-layer unpacks: read-only directories left by lower layers are made
writable just long enough to change them, then get their recorded modes back."""

from __future__ import annotations

import os
import stat
import subprocess
import tarfile
import textwrap
from pathlib import Path

from unpack_layers import TarWriter, info

from ocistore.mediatypes import MediaType

NOBODY = 65534

UNPACK_AS_NOBODY = textwrap.dedent(
    """
    import sys, ocistore
    work = sys.argv[1]
    for i in range(int(sys.argv[2])):
        try:
            ocistore.unpack_layer(f"{work}/layer{i}", f"{work}/dest", sys.argv[3])
        except ocistore.OciStoreError as e:
            print(f"layer{i}: {type(e).__name__}: {e}")
            sys.exit(3)
    """
)


def unpack_as_nobody(
    nobody_python: list[str], work: Path, layers: list[bytes]
) -> subprocess.CompletedProcess[str]:
    """Unpacks the layers in order into work/dest as the unprivileged user."""
    for i, layer in enumerate(layers):
        path = work / f"layer{i}"
        path.write_bytes(layer)
        os.chmod(path, 0o644)
    return subprocess.run(
        [*nobody_python, "-c", UNPACK_AS_NOBODY, str(work), str(len(layers)), MediaType.OCI_LAYER],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_later_layers_write_and_white_out_inside_read_only_directories(
    nobody_work: Path, nobody_python: list[str]
) -> None:
    work = nobody_work
    lower = (
        TarWriter()
        .dir("ro", mode=0o555)
        .file("ro/old", b"old")
        .file("ro/gone", b"gone")
        .dir("ro/sub", mode=0o555)
        .dir("ro/sub/inner", mode=0o500)
        .file("ro/sub/inner/deep", b"deep")
        .dir("ro/opq", mode=0o555)
        .file("ro/opq/lower", b"lower")
        .dir("locked", mode=0o000)
        .file("locked/secret", b"s")
        .bytes()
    )
    upper = (
        TarWriter()
        .file("ro/new", b"new")
        .add(info("ro/.wh.gone"))
        .add(info("ro/.wh.sub"))
        .add(info("ro/opq/.wh..wh..opq"))
        .file("ro/opq/upper", b"upper")
        .file("ro/implicit/child", b"c")
        .file("locked/added", b"a")
        .bytes()
    )
    # A third layer re-declares a lower directory read-only and writes into it.
    top = TarWriter().dir("ro", mode=0o500).file("ro/last", b"last").bytes()
    out = unpack_as_nobody(nobody_python, work, [lower, upper, top])
    assert out.returncode == 0, out.stdout + out.stderr
    dest = work / "dest"
    assert sorted(os.listdir(dest / "ro")) == ["implicit", "last", "new", "old", "opq"]
    assert (dest / "ro/new").read_bytes() == b"new"
    assert (dest / "ro/last").read_bytes() == b"last"
    assert os.listdir(dest / "ro/opq") == ["upper"]
    assert sorted(os.listdir(dest / "locked")) == ["added", "secret"]
    assert (dest / "ro/implicit/child").read_bytes() == b"c"
    # Modes are the recorded ones again (the last layer's for a re-declared directory).
    assert mode(dest / "ro") == 0o500
    assert mode(dest / "ro/opq") == 0o555
    assert mode(dest / "locked") == 0o000
    assert (dest / "ro").stat().st_uid == NOBODY


def test_whiteout_of_a_read_only_tree_as_the_only_change(
    nobody_work: Path, nobody_python: list[str]
) -> None:
    work = nobody_work
    lower = (
        TarWriter()
        .dir("a", mode=0o555)
        .dir("a/b", mode=0o555)
        .dir("a/b/c", mode=0o000)
        .file("a/b/keep", b"k")
        .dir("a/b/c/d", mode=0o555)
        .file("a/b/c/d/f", b"f")
        .bytes()
    )
    upper = TarWriter().add(info("a/b/.wh.c")).bytes()
    out = unpack_as_nobody(nobody_python, work, [lower, upper])
    assert out.returncode == 0, out.stdout + out.stderr
    dest = work / "dest"
    assert os.listdir(dest / "a/b") == ["keep"]
    assert mode(dest / "a/b") == 0o555 and mode(dest / "a") == 0o555


def test_a_directory_not_owned_by_the_user_is_not_changed(
    nobody_work: Path, nobody_python: list[str]
) -> None:
    work = nobody_work
    dest = work / "dest"
    (dest / "rootowned").mkdir(parents=True)
    os.chown(dest, NOBODY, NOBODY)
    os.chmod(dest / "rootowned", 0o555)
    out = unpack_as_nobody(nobody_python, work, [TarWriter().file("rootowned/f", b"x").bytes()])
    assert out.returncode == 3
    assert "LayerWriteError" in out.stdout, out.stdout
    assert mode(dest / "rootowned") == 0o555
    assert os.listdir(dest / "rootowned") == []


def test_device_entry_in_read_only_directory_is_skipped_not_failed(
    nobody_work: Path, nobody_python: list[str]
) -> None:
    work = nobody_work
    lower = TarWriter().dir("dev", mode=0o555).bytes()
    upper = (
        TarWriter()
        .add(info("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3))
        .add(info("dev/fifo", tarfile.FIFOTYPE, mode=0o600))
        .bytes()
    )
    out = unpack_as_nobody(nobody_python, work, [lower, upper])
    assert out.returncode == 0, out.stdout + out.stderr
    assert os.listdir(work / "dest/dev") == ["fifo"]
    assert mode(work / "dest/dev") == 0o555


def test_a_failed_layer_still_restores_widened_modes(
    nobody_work: Path, nobody_python: list[str]
) -> None:
    work = nobody_work
    lower = TarWriter().dir("ro", mode=0o555).file("ro/old", b"old").bytes()
    upper = TarWriter().file("ro/new", b"new").symlink("ro/../../escape", "x").bytes()
    out = unpack_as_nobody(nobody_python, work, [lower, upper])
    assert out.returncode == 3
    assert "layer1: UnsafeLayerError" in out.stdout, out.stdout
    assert (work / "dest/ro/new").read_bytes() == b"new"
    assert mode(work / "dest/ro") == 0o555


def test_xattrs_as_containerd_applies_them_without_root(
    nobody_work: Path, nobody_python: list[str]
) -> None:
    """Not root: `security.*` is denied and skipped, `trusted.*` never set, `user.*` set."""
    layer = (
        TarWriter(fmt=tarfile.PAX_FORMAT)
        .add(
            info(
                "f",
                size=1,
                pax={
                    "SCHILY.xattr.security.note": "s",
                    "SCHILY.xattr.trusted.note": "t",
                    "SCHILY.xattr.user.note": "u\n",
                },
            ),
            b"x",
        )
        .bytes()
    )
    done = unpack_as_nobody(nobody_python, nobody_work, [layer])
    assert done.returncode == 0, done.stdout + done.stderr
    assert os.listxattr(nobody_work / "dest" / "f") == ["user.note"]
    assert os.getxattr(nobody_work / "dest" / "f", "user.note") == b"u\n"


def test_a_user_xattr_on_a_symlink_fails_as_in_containerd(
    nobody_work: Path, nobody_python: list[str]
) -> None:
    """The kernel refuses user.* on symlinks; containerd fails the layer, and so do we."""
    layer = (
        TarWriter(fmt=tarfile.PAX_FORMAT)
        .add(info("l", tarfile.SYMTYPE, link="target", pax={"SCHILY.xattr.user.note": "u"}))
        .bytes()
    )
    done = unpack_as_nobody(nobody_python, nobody_work, [layer])
    assert done.returncode == 3, done.stdout + done.stderr
    assert "LayerFormatError" in done.stdout and "user.note" in done.stdout
