"""Download scheduling in ``ocistore.pull`` (transfer/pull.py), seen from the real registry's
access log and the fault proxy: without unpacking the biggest layer starts first; unpacking
keeps the manifest's order; a config an index chose is fetched while the layers download and
still verified before anything is recorded."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from regfixtures.proxy import Fault, FaultProxy
from regfixtures.registry import registry_requests
from regfixtures.setups import FAST_RETRY, Registries, unique_repository

from ocistore import DigestMismatchError, RegistryOptions, Store, pull, push
from ocistore.testing.imagebuild import BuiltImage, BuiltIndex, build_image, build_index

PLAIN = RegistryOptions(plain_http=True, retry=FAST_RETRY)
# Layer sizes out of order: neither the manifest's order nor its reverse is by size.
SIZES = (20_000, 400_000, 5_000, 150_000)


def _image(seed: int) -> BuiltImage:
    rng = random.Random(seed)
    return build_image(
        [{f"layer{i}.bin": rng.randbytes(size)} for i, size in enumerate(SIZES)],
        compression="none",
    )


def _push(built: BuiltImage | BuiltIndex, host: str, tmp_path: Path) -> str:
    reference = f"{host}/{unique_repository('scheduling')}:v1"
    source = Store(tmp_path / "seed")
    built.write_to_store(source, reference)
    push(reference, store=source, options=PLAIN)
    return reference


def _layer_gets(registries: Registries, image: BuiltImage, since: int) -> list[str]:
    digests = {layer.digest for layer in image.layers}
    return [
        path.rsplit("/", 1)[1]
        for method, path in registry_requests(registries.plain)[since:]
        if method == "GET" and path.rsplit("/", 1)[1] in digests
    ]


@pytest.mark.parametrize("unpack", [False, True], ids=["store only", "unpack"])
def test_layers_start_biggest_first_unless_unpacking(
    registries: Registries, tmp_path: Path, unpack: bool
) -> None:
    image = _image(15 + unpack)
    reference = _push(image, registries.plain.host, tmp_path)
    since = len(registry_requests(registries.plain))
    pull(
        reference,
        store=Store(tmp_path / "store"),
        options=PLAIN,
        unpack=tmp_path / "rootfs" if unpack else None,
        max_concurrent_downloads=1,  # one at a time: the log shows the start order
    )
    manifest_order = [layer.digest for layer in image.layers]
    by_size = [layer.digest for layer in sorted(image.layers, key=lambda layer: -layer.size)]
    assert manifest_order != by_size
    assert _layer_gets(registries, image, since) == (manifest_order if unpack else by_size)


def test_an_indexed_config_comes_while_the_layers_download_and_is_verified_first(
    registries: Registries, tmp_path: Path
) -> None:
    image = _image(17)
    index = build_index([image])
    reference = _push(index, registries.plain.host, tmp_path)
    proxy = FaultProxy(registries.plain.url)
    try:
        # The config answers late and wrong: the layers do not wait for it, and the pull
        # records nothing.
        config_path = f"/blobs/{image.config_digest}"
        proxy.add(Fault(path=config_path, stall=1.0, corrupt_at=10, times=None))
        via_proxy = reference.replace(registries.plain.host, proxy.host, 1)
        store = Store(tmp_path / "store")
        with pytest.raises(DigestMismatchError):
            pull(via_proxy, store=store, options=PLAIN, max_concurrent_downloads=len(SIZES))
        layer_gets = {
            seen.path.rsplit("/", 1)[1] for seen in proxy.requests("GET", "/blobs/sha256:")
        }
        assert {layer.digest for layer in image.layers} <= layer_gets
        assert store.images() == []
        assert not store.has_blob(image.config_digest)
        report = store.fsck()
        assert report.ok, report.problems
    finally:
        proxy.close()
    pulled = pull(reference, store=store, options=PLAIN)  # straight from the registry: whole
    assert pulled.layers_downloaded + pulled.layers_skipped == len(SIZES)
    assert [record.reference for record in store.images()] == [reference]
