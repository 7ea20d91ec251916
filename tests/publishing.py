"""Built test images put into a registry: by ocistore's own push, or by skopeo (another
tool's upload, so a test does not only read what ocistore wrote)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path

import ocistore
from ocistore.registry.options import RegistryOptions
from ocistore.store import Store
from ocistore.testing.imagebuild import BuiltImage, BuiltIndex

PLAIN = RegistryOptions(plain_http=True)
_SKOPEO_COPY = ("skopeo", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false")


def push_with_ocistore(
    image: BuiltImage | BuiltIndex, ref: str, store: Path, options: RegistryOptions = PLAIN
) -> Store:
    """Writes ``image`` into the store at ``store`` as ``ref`` and pushes it; returns the store."""
    seed = Store(store)
    image.write_to_store(seed, ref)
    ocistore.push(ref, store=seed, options=options)
    return seed


def copy_with_skopeo(
    image: BuiltImage | BuiltIndex, ref: str, workdir: Path, prefix: Sequence[str] = ()
) -> None:
    """Pushes a built image to a plain-HTTP registry with skopeo (``prefix``: ``ip netns exec``).

    skopeo reads it from its ``dir:`` format (any media type, lists included) and keeps the
    bytes, so the registry's digests are the built image's.
    """
    source = workdir / f"dir-{uuid.uuid4().hex[:8]}"
    source.mkdir(parents=True)
    (source / "version").write_text("Directory Transport Version: 1.1\n")
    for digest, (_, data) in image.blobs().items():
        (source / digest.partition(":")[2]).write_bytes(data)
    if isinstance(image, BuiltIndex):
        (source / "manifest.json").write_bytes(image.index)
        for child in image.images:
            (source / f"{child.digest.partition(':')[2]}.manifest.json").write_bytes(child.manifest)
    else:
        (source / "manifest.json").write_bytes(image.manifest)
    subprocess.run(
        [*prefix, *_SKOPEO_COPY, f"dir:{source}", f"docker://{ref}"],
        check=True,
        capture_output=True,
        timeout=300,
    )
