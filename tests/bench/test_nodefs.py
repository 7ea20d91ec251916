"""benches/peerbench/nodefs.py: the benchmark measures on a journaled ext4 like a node's, and
leaves no mount, loop device or image behind; without one it says what it measures on."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ci import cannot_run

from peerbench import nodefs

SMALL = 256 << 20


def _needs_loop_mounts() -> None:
    if os.geteuid() != 0:
        cannot_run("a loop-mounted ext4 needs root")
    for tool in ("mkfs.ext4", "dumpe2fs", "losetup", "mount"):
        if shutil.which(tool) is None:
            cannot_run(f"{tool} is not installed")
    if subprocess.run(["losetup", "-f"], capture_output=True).returncode != 0:
        cannot_run("no free loop device")


def _loop_devices_of(image: Path) -> list[str]:
    """Loop devices backed by ``image``, also once it is deleted (sysfs, not losetup -j)."""
    found = []
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        name = backing.read_text().strip().removesuffix(" (deleted)")
        if name == str(image):
            found.append(backing.parts[3])
    return found


def _mounted_under(directory: Path) -> list[str]:
    return [
        line.split()[1]
        for line in Path("/proc/self/mounts").read_text().splitlines()
        if line.split()[1].startswith(str(directory))
    ]


def _source(path: Path) -> str:
    done = subprocess.run(
        ["findmnt", "-n", "-o", "SOURCE", "--target", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path) -> Iterator[None]:
    """Whatever a failing test leaves mounted or attached under tmp_path is removed."""
    yield
    for target in reversed(_mounted_under(tmp_path)):
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)
    for image in tmp_path.rglob("*.img"):
        for loop in _loop_devices_of(image):
            subprocess.run(["losetup", "-d", f"/dev/{loop}"], check=False, capture_output=True)


def _assert_all_gone(work: Path, image: Path, mount_point: Path) -> None:
    assert _mounted_under(work) == []
    assert _loop_devices_of(image) == []
    assert not image.exists()
    assert not mount_point.exists()


def test_node_fs_is_a_journaled_ext4_written_to_and_removed_after(tmp_path: Path) -> None:
    _needs_loop_mounts()
    with nodefs.bench_fs(tmp_path, SMALL) as fs:
        assert fs.mounted
        assert fs.description == "ext4 with a journal on a loop device (like a node's /var/lib)"
        image = tmp_path / f"nodefs-{os.getpid()}.img"
        device = _source(fs.root)
        assert device.startswith("/dev/loop")
        assert subprocess.run(
            ["losetup", "-n", "-O", "NAME", "-j", image], capture_output=True, text=True
        ).stdout.split() == [device]
        header = subprocess.run(
            ["dumpe2fs", "-h", device], capture_output=True, text=True, check=True
        ).stdout
        assert "has_journal" in header.split("Filesystem features:")[1].splitlines()[0]
        assert Path(f"/proc/fs/jbd2/{Path(device).name}-8").exists()
        # Direct I/O: the image file's pages are not cached a second time.
        assert Path(f"/sys/block/{Path(device).name}/loop/dio").read_text().strip() == "1"
        assert os.stat(image).st_blocks * 512 < SMALL  # sparse
        written = fs.root / "run" / "file"
        written.parent.mkdir()
        written.write_bytes(b"x" * 4096)
        assert _source(written) == device  # on the loop device, not the work directory's
        assert os.stat(written).st_dev == os.stat(fs.root).st_dev != os.stat(tmp_path).st_dev
        # The benchmark's own description of it, found independently of NODE_DESCRIPTION.
        assert nodefs.describe(fs.root).startswith(f"ext4 with a journal on {device} ")
    _assert_all_gone(tmp_path, image, fs.root)


@pytest.fixture
def open_file() -> Iterator[list[object]]:
    held: list[object] = []
    yield held
    for f in held:
        f.close()  # type: ignore[attr-defined]


def test_node_fs_is_removed_when_the_body_raises_with_mounts_below_and_busy(
    tmp_path: Path, open_file: list[object]
) -> None:
    _needs_loop_mounts()
    image = tmp_path / f"nodefs-{os.getpid()}.img"
    with (
        pytest.raises(RuntimeError, match="the run failed"),
        nodefs.bench_fs(tmp_path, SMALL) as fs,
    ):
        below = fs.root / "podman-root" / "overlay"
        below.mkdir(parents=True)
        # What podman and containerd leave: a mount below the root, and a busy file.
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", below], check=True)
        open_file.append((fs.root / "busy").open("w"))
        assert _loop_devices_of(image) != []
        raise RuntimeError("the run failed")
    assert _mounted_under(tmp_path) == []
    assert not image.exists()
    open_file[0].close()  # type: ignore[attr-defined]  # lets the lazily unmounted fs go
    _assert_all_gone(tmp_path, image, fs.root)


def _run_killed_by(signum: int, workdir: Path) -> tuple[Path, Path, int]:
    """A process that makes the node fs in ``workdir``, killed by ``signum`` inside it:
    (its image, its mount point, its exit status)."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from peerbench import nodefs\n"
        f"with nodefs.bench_fs(Path({str(workdir)!r}), {SMALL}) as fs:\n"
        "    print(fs.root, flush=True)\n"
        "    time.sleep(60)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(nodefs.__file__).parents[1])},
    ) as run:
        assert run.stdout is not None
        mount_point = Path(run.stdout.readline().strip())
        image = mount_point.with_name(mount_point.name + ".img")
        assert _loop_devices_of(image) != [] and _mounted_under(workdir) == [str(mount_point)]
        run.send_signal(signum)
        return image, mount_point, run.wait(timeout=60)


def test_node_fs_is_removed_when_the_run_is_terminated(tmp_path: Path) -> None:
    _needs_loop_mounts()
    image, mount_point, status = _run_killed_by(signal.SIGTERM, tmp_path)
    assert status == 128 + signal.SIGTERM
    _assert_all_gone(tmp_path, image, mount_point)


def test_the_next_run_removes_what_a_killed_run_left(tmp_path: Path) -> None:
    _needs_loop_mounts()
    image, mount_point, status = _run_killed_by(signal.SIGKILL, tmp_path)
    assert status == -signal.SIGKILL
    assert image.exists() and _mounted_under(tmp_path) == [str(mount_point)]
    with nodefs.bench_fs(tmp_path, SMALL) as fs:
        assert fs.mounted
        assert not image.exists() and str(mount_point) not in _mounted_under(tmp_path)
    _assert_all_gone(tmp_path, image, mount_point)


def test_fallback_when_asked_yields_the_workdir_described(tmp_path: Path) -> None:
    with nodefs.bench_fs(tmp_path, SMALL, node=False) as fs:
        assert not fs.mounted
        assert fs.root == tmp_path.resolve()
        fstype = subprocess.run(
            ["findmnt", "-n", "-o", "FSTYPE", "--target", str(tmp_path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert fs.description.startswith(fstype + " ")
        assert fs.description.endswith(f"({tmp_path.resolve()})")
    assert list(tmp_path.iterdir()) == []  # nothing made, nothing removed


def test_fallback_when_mkfs_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with nodefs.bench_fs(tmp_path / "work", SMALL) as fs:
        assert not fs.mounted
        assert fs.root == (tmp_path / "work").resolve()
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == []


@pytest.mark.parametrize("journal", [True, False])
def test_an_ext4_workdir_is_described_with_its_journal_and_warned_about_without(
    tmp_path: Path, journal: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    _needs_loop_mounts()
    image = tmp_path / "ext4.img"
    work = tmp_path / "work"
    work.mkdir()
    with image.open("wb") as f:
        f.truncate(64 << 20)
    features = [] if journal else ["-O", "^has_journal"]
    subprocess.run(["mkfs.ext4", "-q", "-F", *features, image], check=True)
    subprocess.run(["mount", "-o", "loop", image, work], check=True)
    try:
        device = _source(work)
        capsys.readouterr()
        with nodefs.bench_fs(work, SMALL, node=False) as fs:
            assert fs.root == work
        said = "with a journal" if journal else "without a journal"
        assert fs.description == f"ext4 {said} on {device} ({work})"
        warned = "WARNING" in capsys.readouterr().err
        assert warned is not journal
    finally:
        subprocess.run(["umount", work], check=True)
    assert _loop_devices_of(image) == []
