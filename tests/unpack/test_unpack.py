"""Layer engine behaviour: OCI semantics over several layers, digests, the streaming writer,
GIL release, unprivileged extraction and round trips of random trees."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import textwrap
import threading
from pathlib import Path

import pytest
from ci import cannot_run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unpack_layers import COMPRESSORS, MTIME, Sandbox, TarWriter, gz, info, sha256, zst
from waiting import join_all, write_fifo

import ocistore
from ocistore import (
    DigestMismatchError,
    InvalidDigestError,
    LayerFormatError,
    LayerWriter,
    UnpackLimits,
    UnsafeLayerError,
    UnsupportedMediaTypeError,
    mediatypes,
    unpack_layer,
)
from ocistore.layer import PreparedLayer
from ocistore.mediatypes import MediaType


def tree(root: Path) -> dict[str, tuple[str, object]]:
    """A comparable description of a directory tree: type and content or target."""
    out: dict[str, tuple[str, object]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st_ = path.lstat()
            if stat.S_ISLNK(st_.st_mode):
                out[rel] = ("symlink", os.readlink(path))
            elif stat.S_ISDIR(st_.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st_.st_mode))
            else:
                out[rel] = ("file", (path.read_bytes(), stat.S_IMODE(st_.st_mode), st_.st_mtime))
    return out


# --- OCI layer semantics over a multi-layer image ------------------------------------------


def test_oci_whiteouts_over_three_layers(sandbox: Sandbox, tmp_path: Path) -> None:
    base = (
        TarWriter()
        .dir("etc")
        .file("etc/passwd", b"root")
        .file("etc/shadow", b"secret")
        .dir("var/cache")
        .file("var/cache/a", b"1")
        .dir("var/cache/sub")
        .file("var/cache/sub/b", b"2")
        .file("opt/tool", b"v1")
        .symlink("lib", "usr/lib")
        .file("usr/lib/libc.so", b"libc")
        .bytes()
    )
    middle = (
        TarWriter()
        .file("etc/.wh.shadow")  # delete a lower file
        .dir("var/cache")
        .file("var/cache/.wh..wh..opq")  # hide lower children...
        .file("var/cache/fresh", b"3")  # ...but not this layer's
        .file(".wh.opt")  # delete a lower directory
        .file("opt", b"now a file")  # and replace it in the same layer
        .file("lib/libm.so", b"libm")  # written through the lower symlink
        .bytes()
    )
    top = TarWriter().file("var/cache/.wh.fresh").file(".wh.lib").bytes()
    for i, (blob, media_type) in enumerate(
        [
            (base, MediaType.OCI_LAYER),
            (gz(middle), MediaType.OCI_LAYER_GZIP),
            (zst(top), MediaType.OCI_LAYER_ZSTD),
        ]
    ):
        path = tmp_path / f"layer{i}"
        path.write_bytes(blob)
        unpack_layer(path, sandbox.dest, media_type)
    got = tree(sandbox.dest)
    assert set(got) == {
        "etc",
        "etc/passwd",
        "var",
        "var/cache",
        "opt",
        "usr",
        "usr/lib",
        "usr/lib/libc.so",
        "usr/lib/libm.so",
    }
    assert got["opt"][0] == "file"
    assert not any(".wh." in name for name in got)


def test_a_whiteout_never_hides_its_own_layer(sandbox: Sandbox, tmp_path: Path) -> None:
    layer = TarWriter().file("a", b"mine").file(".wh.a").dir("d").file("d/x", b"x").bytes()
    path = tmp_path / "l"
    path.write_bytes(layer)
    stats = unpack_layer(path, sandbox.dest, MediaType.OCI_LAYER)
    assert (sandbox.dest / "a").read_bytes() == b"mine"
    assert stats.whiteouts == 1


def test_directory_mtimes_are_set_after_their_contents(sandbox: Sandbox, tmp_path: Path) -> None:
    layer = TarWriter().dir("d").file("d/a", b"1").file("d/b", b"2").bytes()
    path = tmp_path / "l"
    path.write_bytes(layer)
    unpack_layer(path, sandbox.dest, MediaType.OCI_LAYER)
    assert (sandbox.dest / "d").stat().st_mtime == MTIME


# --- digests, media types, sources ---------------------------------------------------------


@pytest.mark.parametrize("media_type", sorted(COMPRESSORS))
def test_digest_and_diff_id_verified_in_one_pass(
    media_type: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    tar = TarWriter().file("a", os.urandom(100_000)).file("b", b"b").bytes()
    blob = COMPRESSORS[media_type](tar)
    path = tmp_path / "blob"
    path.write_bytes(blob)
    stats = unpack_layer(path, sandbox.dest, media_type, digest=sha256(blob), diff_id=sha256(tar))
    assert (stats.digest, stats.diff_id) == (sha256(blob), sha256(tar))
    assert (stats.compressed_size, stats.uncompressed_size) == (len(blob), len(tar))
    assert (stats.entries, stats.bytes_written) == (2, 100_001)
    with pytest.raises(DigestMismatchError) as err:
        unpack_layer(path, sandbox.dest, media_type, diff_id=sha256(b"other"))
    assert (err.value.expected, err.value.actual) == (sha256(b"other"), sha256(tar))
    with pytest.raises(DigestMismatchError):
        unpack_layer(path, sandbox.dest, media_type, digest=sha256(b"other"))


def test_corrupt_blob_with_digest_is_reported_as_a_mismatch(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    blob = bytearray(gz(TarWriter().file("a", os.urandom(50_000)).bytes()))
    good = sha256(bytes(blob))
    blob[len(blob) // 2] ^= 0xFF
    path = tmp_path / "blob"
    path.write_bytes(bytes(blob))
    with pytest.raises(DigestMismatchError):
        unpack_layer(path, sandbox.dest, MediaType.OCI_LAYER_GZIP, digest=good)


def test_unsupported_media_type_and_bad_digest_strings(sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(TarWriter().bytes())
    with pytest.raises(UnsupportedMediaTypeError):
        unpack_layer(path, sandbox.dest, "application/vnd.oci.image.config.v1+json")
    with pytest.raises(InvalidDigestError):
        unpack_layer(path, sandbox.dest, MediaType.OCI_LAYER, digest="sha256:../../etc")
    assert mediatypes.is_layer(MediaType.OCI_LAYER_ZSTD) and not mediatypes.is_layer("text/plain")
    assert not any(sandbox.dest.iterdir())


def test_file_object_source(sandbox: Sandbox) -> None:
    tar = TarWriter().file("a", b"x" * 3_000_000).bytes()
    blob = zst(tar)
    stats = unpack_layer(
        io.BytesIO(blob), sandbox.dest, MediaType.OCI_LAYER_ZSTD, diff_id=sha256(tar)
    )
    assert stats.diff_id == sha256(tar)
    assert (sandbox.dest / "a").stat().st_size == 3_000_000


def test_limits_object(sandbox: Sandbox, tmp_path: Path) -> None:
    limits = UnpackLimits(max_entries=None)
    assert limits.max_entries is None and limits.max_path_length == 4096
    assert limits == UnpackLimits(max_entries=None)
    assert "max_entries=None" in repr(limits)


# --- the streaming writer ------------------------------------------------------------------


def test_layer_writer_saves_blob_and_verifies_diff_id(sandbox: Sandbox, tmp_path: Path) -> None:
    tar = TarWriter().file("big", os.urandom(2_000_000)).dir("d").file("d/x", b"x").bytes()
    blob = gz(tar)
    blob_path = tmp_path / "blob"
    with LayerWriter(
        sandbox.dest, MediaType.OCI_LAYER_GZIP, diff_id=sha256(tar), blob_path=blob_path
    ) as w:
        view = memoryview(blob)
        for start in range(0, len(blob), 65536):
            w.write(view[start : start + 65536])
        stats = w.close()
    assert w.closed
    assert stats.digest is None  # digest=None: the compressed bytes are not hashed
    assert stats.diff_id == sha256(tar)
    assert blob_path.read_bytes() == blob
    assert (sandbox.dest / "d/x").read_bytes() == b"x"
    with pytest.raises(ValueError):
        w.write(b"more")


def test_layer_writer_fails_early_on_a_hostile_entry(sandbox: Sandbox) -> None:
    tar = TarWriter().file("../evil", b"x").file("pad", os.urandom(4_000_000)).bytes()
    w = LayerWriter(sandbox.dest, MediaType.OCI_LAYER)
    with pytest.raises(UnsafeLayerError) as err:
        for start in range(0, len(tar), 4096):
            w.write(tar[start : start + 4096])
        w.close()
    assert err.value.entry == "../evil"  # type: ignore[attr-defined]
    assert w.closed


def test_layer_writer_diff_id_mismatch_and_abort(sandbox: Sandbox) -> None:
    tar = TarWriter().file("a", b"a").bytes()
    w = LayerWriter(sandbox.dest, MediaType.OCI_LAYER, diff_id=sha256(b"nope"))
    w.write(tar)
    with pytest.raises(DigestMismatchError):
        w.close()
    w2 = LayerWriter(sandbox.dest, MediaType.OCI_LAYER)
    w2.write(tar[:100])
    w2.abort()
    assert w2.closed
    with pytest.raises(RuntimeError), LayerWriter(sandbox.dest, MediaType.OCI_LAYER) as w3:
        w3.write(tar[:100])
        raise RuntimeError("download failed")
    assert w3.closed


def test_layer_writer_truncated_blob(sandbox: Sandbox) -> None:
    blob = gz(TarWriter().file("a", os.urandom(10_000)).bytes())
    w = LayerWriter(sandbox.dest, MediaType.OCI_LAYER_GZIP)
    w.write(blob[:-20])
    with pytest.raises(LayerFormatError):
        w.close()


# --- GIL release ---------------------------------------------------------------------------


def test_gil_is_released_while_unpacking(sandbox: Sandbox, tmp_path: Path) -> None:
    """The unpacking thread blocks reading a FIFO: only if it released the GIL can this
    thread write the layer into the FIFO (otherwise the join times out)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    tar = TarWriter().file("a", os.urandom(300_000)).bytes()
    result: list[object] = []
    worker = threading.Thread(
        target=lambda: result.append(unpack_layer(fifo, sandbox.dest, MediaType.OCI_LAYER))
    )
    worker.start()
    write_fifo(fifo, tar)
    join_all([worker])
    assert isinstance(result[0], ocistore.UnpackStats)
    assert result[0].diff_id == sha256(tar)


def test_two_layers_in_two_threads(tmp_path: Path) -> None:
    blobs = [gz(TarWriter().file(f"f{i}", os.urandom(500_000)).bytes()) for i in range(2)]
    results: dict[int, ocistore.UnpackStats] = {}

    def run(i: int) -> None:
        path = tmp_path / f"blob{i}"
        path.write_bytes(blobs[i])
        results[i] = unpack_layer(path, tmp_path / f"dest{i}", MediaType.OCI_LAYER_GZIP)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    join_all(threads)
    assert results[0].digest is None and len(results) == 2
    assert (tmp_path / "dest1/f1").stat().st_size == 500_000


# --- prepared layers: decompressed ahead, applied later -----------------------------------


def _feed_fifo(fifo: Path, data: bytes, outcome: list[str]) -> threading.Thread:
    """A thread writing ``data`` into ``fifo``; ``outcome`` gets "done" or the error's name."""

    def run() -> None:
        try:
            write_fifo(fifo, data)
            outcome.append("done")
        except OSError as exc:
            outcome.append(type(exc).__name__)

    thread = threading.Thread(target=run, name="fifo-writer")
    thread.start()
    return thread


def test_a_prepared_layer_is_read_and_decompressed_before_it_is_applied(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The whole blob goes through the FIFO before ``apply`` is called: it was read,
    decompressed and hashed ahead (the FIFO holds 64 KiB, the stages a few MiB; the layer is
    12 MB, under the default 16 MiB ahead)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    tar = TarWriter().file("a", os.urandom(12_000_000)).file("b", b"second\n").bytes()
    outcome: list[str] = []
    writer = _feed_fifo(fifo, gz(tar), outcome)
    prepared = PreparedLayer(fifo, MediaType.OCI_LAYER_GZIP, diff_id=sha256(tar))
    join_all([writer], timeout=30)
    assert outcome == ["done"]
    assert not sandbox.dest.exists() or not any(sandbox.dest.iterdir())
    stats = prepared.apply(sandbox.dest)
    assert stats.diff_id == sha256(tar)
    assert (sandbox.dest / "b").read_bytes() == b"second\n"
    assert prepared.closed
    with pytest.raises(ValueError, match="already applied"):
        prepared.apply(sandbox.dest)
    sandbox.assert_outside_untouched()


def test_a_prepared_layer_holds_at_most_its_ahead_bytes(sandbox: Sandbox, tmp_path: Path) -> None:
    """Memory stays bounded: with a small ``ahead_bytes`` a 24 MB layer stops being read
    (the FIFO writer blocks) until ``apply`` consumes it; then it is applied whole."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    tar = TarWriter().file("big", os.urandom(24_000_000)).bytes()
    outcome: list[str] = []
    writer = _feed_fifo(fifo, tar, outcome)
    prepared = PreparedLayer(fifo, MediaType.OCI_LAYER, diff_id=sha256(tar), ahead_bytes=0)
    writer.join(1.0)
    assert writer.is_alive() and outcome == []  # blocked: at most a few MiB were taken
    prepared.apply(sandbox.dest)
    join_all([writer])
    assert outcome == ["done"]
    assert (sandbox.dest / "big").stat().st_size == 24_000_000


def test_a_closed_prepared_layer_stops_reading_and_writes_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    tar = TarWriter().file("big", os.urandom(24_000_000)).bytes()
    outcome: list[str] = []
    writer = _feed_fifo(fifo, tar, outcome)
    prepared = PreparedLayer(fifo, MediaType.OCI_LAYER, ahead_bytes=0)
    prepared.close()
    join_all([writer])
    assert outcome == ["BrokenPipeError"]  # the reader went away mid-blob
    assert prepared.closed
    with pytest.raises(ValueError, match="already applied or closed"):
        prepared.apply(sandbox.dest)
    assert not sandbox.dest.exists() or not any(sandbox.dest.iterdir())
    sandbox.assert_outside_untouched()


# --- unprivileged extraction ---------------------------------------------------------------


def test_unprivileged_strips_setuid_and_skips_devices(
    nobody_work: Path, nobody_python: list[str]
) -> None:
    work = nobody_work
    layer = (
        TarWriter()
        .file("bin/su", b"x", mode=0o4755)
        .add(info("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3))
        .file("etc/owned", b"x")
        .bytes()
    )
    (work / "layer").write_bytes(layer)
    os.chmod(work / "layer", 0o644)
    script = textwrap.dedent(
        """
        import sys, ocistore
        s = ocistore.unpack_layer(sys.argv[1] + "/layer", sys.argv[1] + "/dest",
                                  "application/vnd.oci.image.layer.v1.tar")
        print(repr(sorted(p for p, _ in s.skipped)))
        """
    )
    out = subprocess.run(
        [*nobody_python, "-c", script, str(work)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['bin/su', 'dev/null']"
    assert stat.S_IMODE((work / "dest/bin/su").stat().st_mode) == 0o755
    assert not (work / "dest/dev/null").exists()
    assert (work / "dest/etc/owned").stat().st_uid == 65534


# --- round trip of random trees ------------------------------------------------------------

names = st.text(alphabet="abcdefghij._-", min_size=1, max_size=8).filter(
    lambda n: n not in (".", "..") and not n.startswith(".wh.")
)


@st.composite
def random_trees(draw: st.DrawFn) -> dict[str, tuple[str, object]]:
    entries: dict[str, tuple[str, object]] = {}
    dirs = [""]
    for _ in range(draw(st.integers(0, 25))):
        parent = draw(st.sampled_from(dirs))
        path = f"{parent}/{draw(names)}".lstrip("/")
        if path in entries or any(
            path.startswith(d + "/") for d in entries if entries[d][0] != "dir"
        ):
            continue
        kind = draw(st.sampled_from(["file", "dir", "symlink"]))
        if kind == "dir":
            entries[path] = ("dir", draw(st.sampled_from([0o755, 0o700, 0o555])))
            dirs.append(path)
        elif kind == "file":
            entries[path] = (
                "file",
                (draw(st.binary(max_size=3000)), draw(st.sampled_from([0o644, 0o600, 0o755]))),
            )
        else:
            entries[path] = (
                "symlink",
                draw(st.sampled_from(["target", "/abs/path", "../up", "a/b"])),
            )
    return entries


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=random_trees(), media_type=st.sampled_from(sorted(COMPRESSORS)))
def test_random_trees_round_trip(
    spec: dict[str, tuple[str, object]], media_type: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    dest = tmp_path_factory.mktemp("rt")
    w = TarWriter(fmt=tarfile.PAX_FORMAT)
    for path, (kind, value) in spec.items():
        if kind == "dir":
            assert isinstance(value, int)
            w.dir(path, mode=value)
        elif kind == "file":
            data, mode = value  # type: ignore[misc]
            w.file(path, data, mode=mode)
        else:
            assert isinstance(value, str)
            w.symlink(path, value)
    tar = w.bytes()
    blob = COMPRESSORS[media_type](tar)
    stats = unpack_layer(io.BytesIO(blob), dest, media_type, diff_id=sha256(tar))
    assert stats.entries == len(spec)
    got = tree(dest)
    expected: dict[str, tuple[str, object]] = {}
    for path, (kind, value) in spec.items():
        for i in range(path.count("/")):
            ancestor = "/".join(path.split("/")[: i + 1])
            expected.setdefault(ancestor, ("dir", 0o755))
        if kind == "file":
            data, mode = value  # type: ignore[misc]
            expected[path] = ("file", (data, mode, float(MTIME)))
        else:
            expected[path] = (kind, value)
    assert got == expected


def test_layer_writer_verifies_the_compressed_digest_when_given(sandbox: Sandbox) -> None:
    blob = gz(TarWriter().file("a", b"a").bytes())
    with LayerWriter(sandbox.dest, MediaType.OCI_LAYER_GZIP, digest=sha256(blob)) as w:
        w.write(blob)
        assert w.close().digest == sha256(blob)
    bad = LayerWriter(sandbox.dest, MediaType.OCI_LAYER_GZIP, digest=sha256(blob + b"x"))
    bad.write(blob)
    with pytest.raises(DigestMismatchError):
        bad.close()


# --- the path resolver switch -------------------------------------------------------------

RESOLVER_PROBE = textwrap.dedent(
    """
    import sys, ocistore
    ocistore.unpack_layer(sys.argv[1], sys.argv[2], sys.argv[3], resolver=sys.argv[4])
    """
)


@pytest.mark.parametrize(("resolver", "kernel_resolves"), [("auto", True), ("walk", False)])
def test_resolver_walk_never_asks_the_kernel_to_resolve(
    resolver: str, kernel_resolves: bool, tmp_path: Path
) -> None:
    """``resolver="walk"`` really runs the component-wise fallback: strace sees no openat2."""
    if shutil.which("strace") is None:
        cannot_run("strace is not installed (scripts/setup installs it)")
    layer = tmp_path / "layer.tar"
    layer.write_bytes(TarWriter().dir("a").dir("a/b").file("a/b/f", b"x").symlink("l", "a").bytes())
    trace = tmp_path / "trace"
    subprocess.run(
        [
            *("strace", "-f", "-qq", "-e", "trace=openat2", "-o", str(trace)),
            *(sys.executable, "-c", RESOLVER_PROBE),
            *(str(layer), str(tmp_path / "dest"), MediaType.OCI_LAYER, resolver),
        ],
        check=True,
        timeout=120,
    )
    assert (tmp_path / "dest/a/b/f").read_bytes() == b"x"
    assert ("openat2(" in trace.read_text()) is kernel_resolves


def test_unknown_resolver_is_a_value_error(tmp_path: Path) -> None:
    layer = tmp_path / "layer.tar"
    layer.write_bytes(TarWriter().file("f", b"x").bytes())
    with pytest.raises(ValueError, match="resolver"):
        unpack_layer(layer, tmp_path / "dest", MediaType.OCI_LAYER, resolver="kernel")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="resolver"):
        LayerWriter(tmp_path / "dest", MediaType.OCI_LAYER, resolver="kernel")  # type: ignore[arg-type]
    assert not (tmp_path / "dest").exists()
