"""A realistic multi-layer image built from this machine's own files, in gzip and zstd.

Five layers, like an application image on a distribution base: system libraries and binaries,
the Python standard library, documentation (many small files), one big shared library plus
incompressible data, and a last layer of whiteouts, an opaque directory, a symlink and a
hardlink. Layer tars are written by GNU tar (real headers, real modes); compression and the
manifest come from :mod:`ocistore.testing.imagebuild`. Built images are cached in a seed store.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from ocistore.registry.options import RegistryOptions
from ocistore.store import Store
from ocistore.testing.imagebuild import (
    BuiltImage,
    Directory,
    Hardlink,
    RawLayer,
    Symlink,
    build_image,
)

MB = 1_000_000
LIBDIR = Path("/usr/lib/x86_64-linux-gnu")
# Share of the image's size per layer (the fifth, whiteouts, is tiny).
SHARES = {"system": 0.30, "python": 0.20, "docs": 0.20, "biglib": 0.20, "random": 0.10}
COMPRESSIONS = ("gzip", "zstd")
REPOSITORY = "bench/peers"


@dataclass(frozen=True)
class ImageInfo:
    """What was built: per compression the tag's manifest digest and layer sizes."""

    size_mb: int
    uncompressed: int
    compressed: dict[str, int]
    layers: int
    manifest_digests: dict[str, str]

    def tag(self, compression: str) -> str:
        """The tag an image variant is stored and pushed under."""
        return f"{self.size_mb}mb-{compression}"


def _walk(roots: list[Path], budget: int, skip_above: int) -> list[str]:
    """Paths (relative to /) of directories and files under ``roots``, up to ``budget`` bytes."""
    chosen: list[str] = []
    for root in roots:
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            if budget <= 0:
                return chosen
            chosen.append(os.path.relpath(dirpath, "/"))
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                try:
                    info = os.lstat(path)
                except OSError:
                    continue
                if info.st_size > skip_above or not os.access(path, os.R_OK):
                    continue
                if "_sandboxing" in name:  # machine-specific hook, not part of an image
                    continue
                chosen.append(os.path.relpath(path, "/"))
                budget -= info.st_size
                if budget <= 0:
                    return chosen
    return chosen


def _gnu_tar(paths: list[str], extra: list[str] | None = None) -> bytes:
    """An uncompressed tar of ``paths`` (relative to /) written by GNU tar."""
    listing = "\0".join(paths).encode() + b"\0"
    command = ["tar", "--numeric-owner", "--no-recursion", "--null", "-C", "/", "-cf", "-"]
    command += ["--files-from", "-", *(extra or [])]
    done = subprocess.run(command, input=listing, capture_output=True, check=False)
    if done.returncode not in (0, 1):  # 1: a file changed while it was read
        raise RuntimeError(f"tar failed: {done.stderr.decode(errors='replace')[-500:]}")
    return done.stdout


def _biggest_library(budget: int) -> Path | None:
    """The largest shared library of this machine that fits ``budget`` bytes."""
    best: tuple[int, Path] | None = None
    for path in LIBDIR.glob("*.so*"):
        if path.is_symlink() or not path.is_file():
            continue
        size = path.stat().st_size
        if size <= budget and (best is None or size > best[0]):
            best = (size, path)
    return best[1] if best else None


def layer_specs(size_mb: int, scratch: Path) -> list[RawLayer | dict[str, object]]:
    """The five layers' contents for an image of about ``size_mb`` MB uncompressed."""
    total = size_mb * MB
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    big = _biggest_library(int(total * SHARES["biglib"]))
    system = _walk(
        [LIBDIR, Path("/usr/bin"), Path("/usr/sbin")],
        int(total * SHARES["system"]),
        skip_above=8 * MB,
    )
    python = _walk(
        [stdlib, Path("/usr/lib/python3/dist-packages"), Path("/usr/local/lib")],
        int(total * SHARES["python"]),
        skip_above=8 * MB,
    )
    docs = _walk(
        [Path("/usr/share/doc"), Path("/usr/share/man"), Path("/usr/share/locale")],
        int(total * SHARES["docs"]),
        skip_above=8 * MB,
    )
    # Incompressible data (deterministic, so the cached image can be rebuilt identically).
    scratch.mkdir(parents=True, exist_ok=True)
    noise = scratch / "opt/data/random.bin"
    noise.parent.mkdir(parents=True, exist_ok=True)
    noise.write_bytes(random.Random(size_mb).randbytes(int(total * SHARES["random"])))
    biglib = [str(big.relative_to("/"))] if big else []
    data_layer = _gnu_tar(biglib, ["-C", str(scratch), "opt", "opt/data", "opt/data/random.bin"])
    doc_names = sorted(p.split("/")[3] for p in docs if p.count("/") == 3 and "share/doc/" in p)
    last: dict[str, object] = {
        # Whiteouts of lower-layer paths, an opaque directory with new content, links.
        **{f"usr/share/doc/.wh.{name}": b"" for name in doc_names[:40]},
        f"{stdlib.relative_to('/')}/.wh.test": b"",
        f"{stdlib.relative_to('/')}/email/.wh..wh..opq": b"",
        f"{stdlib.relative_to('/')}/email/README": b"replaced by the top layer\n",
        # (a hardlink must follow its target in the stream: the names sort that way)
        "etc/app/config.yaml": b"listen: 0.0.0.0:8080\n",
        "etc/app/current": Symlink("config.yaml"),
        "etc/app/settings.yaml": Hardlink("etc/app/config.yaml"),
        "var/cache/app": Directory(0o700),
    }
    return [
        RawLayer(_gnu_tar(system)),
        RawLayer(_gnu_tar(python)),
        RawLayer(_gnu_tar(docs)),
        RawLayer(data_layer),
        last,
    ]


def build(store: Store, size_mb: int, workdir: Path) -> ImageInfo:
    """Builds (or finds, cached in ``store``) the gzip and zstd variants of the image."""
    info_path = store.root / f"image-{size_mb}mb.json"
    if info_path.exists():
        import json

        return ImageInfo(**json.loads(info_path.read_text()))
    print(f"building a {size_mb} MB image from this machine's files ...", file=sys.stderr)
    specs = layer_specs(size_mb, workdir / f"scratch-{size_mb}")
    images: dict[str, BuiltImage] = {}
    for compression in COMPRESSIONS:
        image = build_image(
            specs,  # type: ignore[arg-type]
            compression=compression,  # type: ignore[arg-type]
            config={"Cmd": ["/usr/bin/python3"], "Env": ["PATH=/usr/bin:/bin"]},
        )
        image.write_to_store(store, f"{REPOSITORY}:{size_mb}mb-{compression}")
        images[compression] = image
    uncompressed = sum(len(spec.tar) if isinstance(spec, RawLayer) else 0 for spec in specs)
    result = ImageInfo(
        size_mb=size_mb,
        uncompressed=uncompressed,
        compressed={c: sum(layer.size for layer in i.layers) for c, i in images.items()},
        layers=len(specs),
        manifest_digests={c: i.digest for c, i in images.items()},
    )
    import dataclasses
    import json

    info_path.write_text(json.dumps(dataclasses.asdict(result)))
    return result


def push(store: Store, info: ImageInfo, host: str) -> dict[str, str]:
    """Pushes both variants with ocistore; returns compression -> ``host/repo:tag``."""
    import ocistore

    refs = {}
    for compression in COMPRESSIONS:
        tag = info.tag(compression)
        ref = f"{host}/{REPOSITORY}:{tag}"
        ocistore.push(
            ref, store=store, source=f"{REPOSITORY}:{tag}", options=RegistryOptions(plain_http=True)
        )
        refs[compression] = ref
    return refs
