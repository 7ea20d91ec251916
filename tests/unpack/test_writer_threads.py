"""Small files written by worker threads: the same trees and errors as one thread.

The layers are made by GNU tar from trees built here: many small files in many directories,
duplicates, hardlinks, set-id and private modes, foreign owners, a big file, and in a second
layer whiteout and opaque markers (GNU tar archives them as the plain files they are), files
replacing lower files and directories, and a directory replacing a file. Each image is applied
with the worker count the ``writers`` fixture sets and compared with the tree one thread makes.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from tar_oracles import require_root, require_tool
from trees import differences, walk
from unpack_layers import Sandbox, TarWriter

from ocistore.errors import LayerFormatError, LayerWriteError
from ocistore.layer import unpack_layer
from ocistore.mediatypes import MediaType

MTIME = 1_600_000_000


def _write(
    path: Path, data: bytes, mode: int = 0o644, owner: tuple[int, int] | None = None
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    if owner is not None:
        os.chown(path, *owner)


def _lower_tree(top: Path) -> None:
    for d in range(15):
        for f in range(25):
            _write(top / f"usr/share/d{d}/f{f}", os.urandom(50 + (d * 37 + f * 101) % 4000))
    _write(top / "etc/passwd", b"root:x:0:0\n")
    _write(top / "etc/shadow", b"secret\n", 0o640, (0, 42))
    _write(top / "usr/bin/tool", b"#!/bin/sh\n", 0o4755)
    _write(top / "usr/lib/big.so", os.urandom(3 << 20), 0o755)
    _write(top / "opt/app/old-config", b"old\n")
    _write(top / "opt/app/replaced-dir/child", b"lower\n")
    _write(top / "opt/app/becomes-dir", b"a file below\n")
    _write(top / "home/user/private", b"mine\n", 0o600, (1000, 1000))
    os.link(top / "etc/passwd", top / "etc/passwd-")
    os.symlink("d0/f0", top / "usr/share/first")


def _upper_tree(top: Path) -> None:
    for d in range(5):
        for f in range(40):
            _write(top / f"usr/share/d{d}/f{f}", b"upper %d %d\n" % (d, f))  # replaces lower
    _write(top / "usr/share/d1/.wh.f30", b"")  # whiteout of a file this layer wrote: kept
    _write(top / "usr/share/d7/.wh.f3", b"")  # of a lower file
    _write(top / "usr/share/d8/.wh..wh..opq", b"")  # opaque: hides d8's lower files
    _write(top / "usr/share/d8/new", b"new\n")
    _write(top / "etc/passwd", b"root:x:0:0\nuser:x:1000:1000\n")
    os.link(top / "etc/passwd", top / "etc/passwd-")
    _write(top / "opt/app/replaced-dir", b"now a file\n")
    _write(top / "opt/app/becomes-dir/child", b"now a directory\n")
    _write(top / "opt/app/.wh.old-config", b"")


def _gnu_tar_layer(source: Path, layer: Path) -> None:
    """GNU tar's archive of ``source`` (sorted, numeric owners, fixed mtimes)."""
    for path in [source, *source.rglob("*")]:
        os.utime(path, (MTIME, MTIME), follow_symlinks=False)
    subprocess.run(
        ["tar", "--sort=name", "--numeric-owner", "-C", str(source), "-cf", str(layer), "."],
        check=True,
    )


@pytest.fixture(scope="module")
def gnu_tar_layers(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    require_root()
    require_tool("tar")
    base = tmp_path_factory.mktemp("writer-layers")
    layers = []
    for name, make in (("lower", _lower_tree), ("upper", _upper_tree)):
        make(base / name)
        layers.append(base / f"{name}.tar")
        _gnu_tar_layer(base / name, layers[-1])
    return layers


def _apply(layers: list[Path], dest: Path) -> None:
    for layer in layers:
        unpack_layer(layer, dest, MediaType.OCI_LAYER)


def test_worker_threads_apply_gnu_tar_layers_as_one_thread_does(
    gnu_tar_layers: list[Path], sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _apply(gnu_tar_layers, sandbox.dest)
    monkeypatch.setenv("OCISTORE_UNPACK_WRITERS", "0")
    _apply(gnu_tar_layers, tmp_path / "one-thread")
    expected = walk(tmp_path / "one-thread")
    got = walk(sandbox.dest)
    assert differences(expected, got) == []
    # What the rules say, so that both agreeing on something wrong fails too.
    assert (sandbox.dest / "usr/share/d1/f30").read_bytes() == b"upper 1 30\n"
    assert not (sandbox.dest / "usr/share/d7/f3").exists()
    assert sorted(os.listdir(sandbox.dest / "usr/share/d8")) == ["new"]
    assert (sandbox.dest / "opt/app/replaced-dir").read_bytes() == b"now a file\n"
    assert (sandbox.dest / "opt/app/becomes-dir/child").read_bytes() == b"now a directory\n"
    assert not (sandbox.dest / "opt/app/old-config").exists()
    assert got[b"etc/passwd"].hardlinks == (b"etc/passwd", b"etc/passwd-")
    assert (got[b"home/user/private"].uid, got[b"etc/shadow"].gid) == (1000, 42)
    assert got[b"usr/bin/tool"].mode == 0o4755
    assert not any(b".wh." in path for path in got)


def test_the_first_error_in_entry_order_fails_the_layer(sandbox: Sandbox, tmp_path: Path) -> None:
    # Files queued on the workers, one whose name no filesystem takes (a worker's create
    # fails), more files, then an entry the applying thread refuses: the first one is the error.
    layer = TarWriter()
    for d in range(4):
        for f in range(50):
            layer.file(f"d{d}/f{f}", b"x" * (f * 40))
    long_name = "d1/" + "n" * 300
    layer.file(long_name, b"x").file("d2/after", b"y").file("../escape", b"z")
    path = tmp_path / "layer.tar"
    path.write_bytes(layer.bytes())
    with pytest.raises((LayerFormatError, LayerWriteError)) as failure:
        unpack_layer(path, sandbox.dest, MediaType.OCI_LAYER)
    assert long_name in str(failure.value)
    assert "escape" not in str(failure.value)


def test_the_default_worker_count_is_the_environments_else_by_cpu_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ocistore._core import default_unpack_writers

    monkeypatch.setenv("OCISTORE_UNPACK_WRITERS", "3")
    assert default_unpack_writers() == 3
    monkeypatch.setenv("OCISTORE_UNPACK_WRITERS", "99")
    assert default_unpack_writers() == 16  # capped
    monkeypatch.delenv("OCISTORE_UNPACK_WRITERS")
    assert default_unpack_writers() == (2 if len(os.sched_getaffinity(0)) >= 4 else 0)
