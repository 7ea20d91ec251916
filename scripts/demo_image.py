"""Builds the demo's sample image from files on this machine: three layers, two platforms.

Usage: python scripts/demo_image.py STORE REFERENCE
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

from ocistore.store import Store
from ocistore.testing.imagebuild import build_image, build_index


def _files(root: Path, limit: int) -> dict[str, bytes]:
    """Up to ``limit`` bytes of regular files under ``root``, keyed by their path in the image."""
    files: dict[str, bytes] = {}
    total = 0
    for path in sorted(root.rglob("*")):
        if total >= limit:
            break
        if path.is_file() and not path.is_symlink():
            try:
                data = path.read_bytes()
            except OSError:
                continue
            files[str(path.relative_to("/"))] = data
            total += len(data)
    return files


def main() -> None:
    store, reference = Store(sys.argv[1]), sys.argv[2]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    base = {"etc/os-release": 'NAME="ocistore demo"\nID=demo\n'}
    python_layer = _files(stdlib / "json", 2_000_000) | _files(stdlib / "email", 3_000_000)
    images = []
    for platform in ("linux/amd64", "linux/arm64"):
        docs = _files(Path("/usr/share/doc"), 8_000_000)
        docs["etc/platform"] = platform.encode()
        images.append(
            build_image(
                [base, python_layer, docs],
                compression=["gzip", "gzip", "zstd"],
                platform=platform,
                config={"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"]},
            )
        )
    build_index(images).write_to_store(store, reference)
    total = sum(layer.size for image in images for layer in image.layers)
    print(f"built {reference}: 2 platforms x 3 layers, {total / 1e6:.1f} MB compressed")


if __name__ == "__main__":
    main()
