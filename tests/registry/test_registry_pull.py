"""ocistore.pull / push / copy against the real registry, images from ocistore.testing."""

from __future__ import annotations

from pathlib import Path

import pytest
from regfixtures.proxy import Fault, FaultProxy
from regfixtures.registry import TEST_PASSWORD, TEST_USER
from regfixtures.setups import FAST_RETRY, Registries, Setup, make_setup, unique_repository

from ocistore.errors import (
    AuthenticationError,
    DigestMismatchError,
    PlatformNotFoundError,
    RegistryError,
)
from ocistore.registry.options import RegistryOptions
from ocistore.store import Store
from ocistore.testing.imagebuild import BuiltImage, BuiltIndex, build_image, build_index
from ocistore.transfer.copy import copy
from ocistore.transfer.pull import PullEvent, pull, resolve
from ocistore.transfer.push import push


def sample_image(
    seed: str = "a", *, platform: str = "linux/amd64", compression: str = "gzip"
) -> BuiltImage:
    return build_image(
        [
            {
                "etc/hostname": f"box-{seed}\n".encode(),
                "bin/tool": b"\x7fELF" + seed.encode() * 5000,
            },
            {"usr/share/doc/readme": (seed * 20_000).encode()},
            {"var/lib/data.bin": bytes(range(256)) * 400},
        ],
        compression=compression,  # type: ignore[arg-type]
        platform=platform,
    )


def setup_options(setup: Setup) -> RegistryOptions:
    auth = (TEST_USER, TEST_PASSWORD) if setup.credentials else None
    return RegistryOptions(auth=auth, ca_file=setup.ca_file, retry=FAST_RETRY)


def seed(
    tmp_path: Path, setup: Setup, built: BuiltImage | BuiltIndex, repository: str, tag: str = "v1"
) -> str:
    """Write ``built`` into a scratch store and push it to the registry."""
    source = Store(tmp_path / f"seed-{repository.replace('/', '_')}-{tag}")
    name = f"{setup.host}/{repository}:{tag}"
    built.write_to_store(source, name)
    push(name, store=source, options=setup_options(setup))
    return name


def test_pull_into_a_store_in_every_setup(setup: Setup, tmp_path: Path) -> None:
    image = sample_image(setup.name)
    name = seed(tmp_path, setup, image, unique_repository(setup.name))
    store = Store(tmp_path / "store")
    events: list[PullEvent] = []
    pulled = pull(name, store=store, progress=events.append, options=setup_options(setup))
    assert pulled.digest == image.digest
    assert pulled.index_digest is None
    assert pulled.platform == "linux/amd64"
    assert [layer.digest for layer in pulled.layers] == [layer.digest for layer in image.layers]
    assert pulled.layers_downloaded == 3 and pulled.layers_skipped == 0
    assert pulled.bytes_downloaded >= sum(layer.size for layer in image.layers)
    for digest, (_, data) in image.blobs().items():
        assert store.read_blob(digest) == data
    record = store.image(name)
    assert record.digest == image.digest
    assert store.fsck().ok
    assert {e.kind for e in events} >= {
        "resolved",
        "manifest",
        "layer-started",
        "layer-downloaded",
        "done",
    }
    if setup.credentials:
        assert pulled.credential_hash is not None
        assert TEST_PASSWORD not in repr(pulled)


def test_repull_is_one_head_and_no_blob_traffic(
    registries: Registries, tmp_path: Path, proxy: FaultProxy
) -> None:
    setup = make_setup(registries, "plain")
    repository = unique_repository()
    image = sample_image("repull")
    seed(tmp_path, setup, image, repository)
    name = f"{proxy.host}/{repository}:v1"
    store = Store(tmp_path / "store")
    first = pull(name, store=store, options=RegistryOptions(plain_http=True, retry=FAST_RETRY))
    assert first.layers_downloaded == 3
    proxy.reset()
    again = pull(name, store=store, options=RegistryOptions(plain_http=True, retry=FAST_RETRY))
    assert again.digest == first.digest
    assert again.layers_downloaded == 0 and again.layers_skipped == 3
    assert again.bytes_downloaded == 0
    assert [(s.method, "manifests" in s.path) for s in proxy.seen] == [("HEAD", True)]
    proxy.reset()
    assert resolve(name, options=RegistryOptions(plain_http=True)) == image.digest
    assert [s.method for s in proxy.seen] == ["HEAD"]


def test_multi_arch_selection_and_platform_not_found(
    registries: Registries, tmp_path: Path
) -> None:
    setup = make_setup(registries, "plain")
    amd = sample_image("amd", platform="linux/amd64")
    arm = sample_image("arm", platform="linux/arm64/v8", compression="zstd")
    index = build_index([amd, arm])
    name = seed(tmp_path, setup, index, unique_repository("multi"))
    store = Store(tmp_path / "store")
    pulled = pull(
        name,
        store=store,
        platform="linux/arm64",
        options=RegistryOptions(plain_http=True, retry=FAST_RETRY),
    )
    assert pulled.digest == arm.digest
    assert pulled.index_digest == index.digest
    assert pulled.platform is not None and pulled.platform.startswith("linux/arm64")
    assert store.has_blob(arm.layers[0].digest)
    assert not store.has_blob(amd.layers[0].digest)
    with pytest.raises(PlatformNotFoundError) as raised:
        pull(
            name,
            store=store,
            platform="windows/amd64",
            options=RegistryOptions(plain_http=True, retry=FAST_RETRY),
        )
    assert "linux/amd64" in str(raised.value) and "linux/arm64" in str(raised.value)


def test_interrupted_pull_resumes_with_range(
    registries: Registries, tmp_path: Path, proxy: FaultProxy
) -> None:
    setup = make_setup(registries, "plain")
    repository = unique_repository()
    image = sample_image("resume", compression="none")
    seed(tmp_path, setup, image, repository)
    big = max(image.layers, key=lambda layer: layer.size)
    proxy.add(Fault(path=f"/blobs/{big.digest}", truncate_after=big.size // 2))
    store = Store(tmp_path / "store")
    pulled = pull(
        f"{proxy.host}/{repository}:v1",
        store=store,
        options=RegistryOptions(plain_http=True, retry=FAST_RETRY),
    )
    assert pulled.digest == image.digest
    gets = proxy.requests("GET", f"/blobs/{big.digest}")
    assert len(gets) == 2 and gets[1].headers["range"] == f"bytes={big.size // 2}-"
    assert store.read_blob(big.digest) == image.blobs()[big.digest][1]
    assert store.fsck().ok


def test_corrupted_blob_is_refused_and_the_store_stays_clean(
    registries: Registries, tmp_path: Path, proxy: FaultProxy
) -> None:
    setup = make_setup(registries, "plain")
    repository = unique_repository()
    image = sample_image("corrupt")
    seed(tmp_path, setup, image, repository)
    layer = image.layers[1]
    proxy.add(Fault(path=f"/blobs/{layer.digest}", corrupt_at=100, times=None))
    store = Store(tmp_path / "store")
    with pytest.raises(DigestMismatchError):
        pull(
            f"{proxy.host}/{repository}:v1",
            store=store,
            options=RegistryOptions(plain_http=True, retry=FAST_RETRY),
        )
    assert not store.has_blob(layer.digest)
    assert store.find_image(f"{proxy.host}/{repository}:v1") is None
    # Layers still downloading when the bad one failed are kept as partials, for resuming.
    assert all(p.kind.value == "leftover-ingest" for p in store.fsck().problems)
    proxy.reset()
    pulled = pull(
        f"{proxy.host}/{repository}:v1",
        store=store,
        options=RegistryOptions(plain_http=True, retry=FAST_RETRY),
    )
    assert pulled.digest == image.digest


def test_wrong_credentials_fail_and_are_not_leaked(registries: Registries, tmp_path: Path) -> None:
    setup = make_setup(registries, "token")
    name = seed(tmp_path, setup, sample_image("auth"), unique_repository())
    with pytest.raises(AuthenticationError) as raised:
        pull(
            name,
            store=Store(tmp_path / "s"),
            options=RegistryOptions(auth=(TEST_USER, "not-the-password"), retry=FAST_RETRY),
        )
    assert "not-the-password" not in str(raised.value)


def test_push_chunked_and_copy_round_trips(registries: Registries, tmp_path: Path) -> None:
    plain = make_setup(registries, "plain")
    basic = make_setup(registries, "basic")
    index = build_index([sample_image("c1"), sample_image("c2", platform="linux/arm64/v8")])
    source_store = Store(tmp_path / "src")
    repository = unique_repository("copy")
    name = f"{plain.host}/{repository}:v1"
    index.write_to_store(source_store, name)
    report = push(
        name,
        store=source_store,
        chunk_size=4096,
        options=RegistryOptions(plain_http=True, retry=FAST_RETRY),
    )
    assert report.digest == index.digest
    unique_blobs = {d for image in index.images for d in image.blobs() if d != image.digest}
    assert report.blobs_uploaded == len(unique_blobs) == 7  # one layer is shared
    assert len(report.manifests) == 3
    again = push(
        name, store=source_store, options=RegistryOptions(plain_http=True, retry=FAST_RETRY)
    )
    assert again.blobs_uploaded == 0 and again.blobs_skipped == 7
    # registry to registry (another host with auth): every platform
    target = f"{basic.host}/{unique_repository('copied')}:v2"
    copied = copy(
        name,
        target,
        options=RegistryOptions(plain_http=True, retry=FAST_RETRY),
        dst_options=RegistryOptions(
            auth=(TEST_USER, TEST_PASSWORD), plain_http=True, retry=FAST_RETRY
        ),
    )
    assert copied.digest == index.digest and copied.blobs_mounted == 0
    store = Store(tmp_path / "dst")
    pulled = pull(
        target,
        store=store,
        platform="linux/arm64",
        options=RegistryOptions(auth=(TEST_USER, TEST_PASSWORD), plain_http=True, retry=FAST_RETRY),
    )
    assert pulled.index_digest == index.digest
    # within one registry: blobs are mounted, one platform only
    same = f"{plain.host}/{unique_repository('mounted')}:one"
    mounted = copy(
        name,
        same,
        platform="linux/amd64",
        options=RegistryOptions(plain_http=True, retry=FAST_RETRY),
    )
    assert mounted.blobs_mounted == 4 and mounted.blobs_uploaded == 0
    assert mounted.digest == index.images[0].digest
    with pytest.raises(RegistryError):
        copy(
            f"{plain.host}/{unique_repository()}:missing",
            same,
            options=RegistryOptions(plain_http=True, retry=FAST_RETRY),
        )


def layered_image(compression: str = "gzip") -> BuiltImage:
    """Three layers where later ones overwrite and delete (whiteout) earlier files."""
    return build_image(
        [
            {"etc/hostname": b"base\n", "etc/motd": b"hello\n", "opt/app/big.bin": b"x" * 300_000},
            {"etc/hostname": b"second\n", "etc/.wh.motd": b"", "opt/app/new.txt": b"new\n"},
            {"opt/.wh..wh..opq": b"", "opt/only.txt": b"opaque\n"},
        ],
        compression=compression,  # type: ignore[arg-type]
    )


def check_tree(root: Path) -> None:
    assert (root / "etc/hostname").read_bytes() == b"second\n"
    assert not (root / "etc/motd").exists()
    assert (root / "opt/only.txt").read_bytes() == b"opaque\n"
    assert not (root / "opt/app").exists()


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_pull_with_unpack_builds_the_tree_in_one_pass(
    registries: Registries, tmp_path: Path, compression: str
) -> None:
    setup = make_setup(registries, "plain")
    image = layered_image(compression)
    name = seed(tmp_path, setup, image, unique_repository("unpack"))
    store = Store(tmp_path / "store")
    events: list[PullEvent] = []
    rootfs = tmp_path / "rootfs"
    pulled = pull(
        name,
        store=store,
        unpack=rootfs,
        progress=events.append,
        max_concurrent_downloads=1,
        options=RegistryOptions(plain_http=True, retry=FAST_RETRY),
    )
    assert pulled.rootfs == rootfs
    check_tree(rootfs)
    applied = [e.index for e in events if e.kind == "layer-applied"]
    assert applied == [0, 1, 2]
    assert store.fsck().ok
    # the layers are in the store now: a second unpack applies them from there
    again = tmp_path / "again"
    second = pull(
        name, store=store, unpack=again, options=RegistryOptions(plain_http=True, retry=FAST_RETRY)
    )
    assert second.layers_skipped == 3
    check_tree(again)


def test_unpack_with_concurrent_downloads_and_a_dropped_connection(
    registries: Registries, tmp_path: Path, proxy: FaultProxy
) -> None:
    setup = make_setup(registries, "plain")
    image = layered_image("none")
    repository = unique_repository("unpack")
    seed(tmp_path, setup, image, repository)
    proxy.add(Fault(path=f"/blobs/{image.layers[0].digest}", truncate_after=100_000))
    rootfs = tmp_path / "rootfs"
    pull(
        f"{proxy.host}/{repository}:v1",
        store=Store(tmp_path / "store"),
        unpack=rootfs,
        max_concurrent_downloads=3,
        options=RegistryOptions(plain_http=True, retry=FAST_RETRY),
    )
    check_tree(rootfs)
    assert proxy.requests("GET", f"/blobs/{image.layers[0].digest}")[1].headers["range"] == (
        "bytes=100000-"
    )


def test_a_layer_failing_its_diff_id_after_the_others_leaves_no_tree_and_the_store_intact(
    registries: Registries, tmp_path: Path
) -> None:
    """Layers 1 and 2 are committed while layer 0 streams; layer 2 is decompressed ahead while
    layer 1 is applied, and its diff_id (the config lies about it) fails the pull."""
    from ocistore import model
    from ocistore.digest import digest_bytes
    from ocistore.mediatypes import MediaType

    setup = make_setup(registries, "plain")
    honest = layered_image("gzip")
    diff_ids = [layer.diff_id for layer in honest.layers[:2]] + [digest_bytes(b"not layer 3")]
    lying_config = model.ImageConfig(
        architecture="amd64", os="linux", diff_ids=tuple(diff_ids)
    ).to_json()
    manifest = model.Manifest(
        config=model.Descriptor.of(MediaType.OCI_CONFIG, lying_config),
        layers=tuple(layer.descriptor() for layer in honest.layers),
    ).to_json()
    repository = unique_repository("liar")
    name = f"{setup.host}/{repository}:v1"
    source = Store(tmp_path / "seed")
    for layer in honest.layers:
        source.put_blob(layer.data, media_type=layer.media_type)
    source.put_blob(lying_config)
    source.record_image(name, manifest_digest=source.put_blob(manifest))
    push(name, store=source, options=setup_options(setup))

    store = Store(tmp_path / "store")
    events: list[PullEvent] = []
    rootfs = tmp_path / "rootfs"
    with pytest.raises(DigestMismatchError, match="diff_id"):
        pull(
            name,
            store=store,
            unpack=rootfs,
            progress=events.append,
            max_concurrent_downloads=3,
            options=RegistryOptions(plain_http=True, retry=FAST_RETRY),
        )
    assert [e.index for e in events if e.kind == "layer-applied"] == [0, 1]
    assert not rootfs.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".rootfs")] == []
    assert store.find_image(name) is None
    assert all(store.has_blob(layer.digest) for layer in honest.layers)  # verified, reusable
    assert store.fsck().ok


def test_keyring_credentials_are_tried_in_order(registries: Registries, tmp_path: Path) -> None:
    from ocistore.credentials import Keyring
    from ocistore.credentials.dockerconfig import DockerConfigEntry

    for setup_name in ("basic", "token"):
        setup = make_setup(registries, setup_name)
        name = seed(tmp_path, setup, sample_image(f"kr-{setup_name}"), unique_repository())
        repository_key = name.rsplit(":", 1)[0]
        keyring = Keyring.from_entries(
            {
                repository_key: DockerConfigEntry(username=TEST_USER, password="stale"),
                setup.host: DockerConfigEntry(username=TEST_USER, password=TEST_PASSWORD),
            }
        )
        assert len(keyring.lookup(name)) == 2
        pulled = pull(
            name,
            store=Store(tmp_path / f"kr-{setup_name}"),
            options=RegistryOptions(auth=keyring, retry=FAST_RETRY),
        )
        assert pulled.credential_hash == keyring.lookup(name)[1].hash
        only_stale = Keyring.from_entries(
            {repository_key: DockerConfigEntry(username=TEST_USER, password="stale")}
        )
        with pytest.raises(AuthenticationError):
            pull(
                name,
                store=Store(tmp_path / f"stale-{setup_name}"),
                options=RegistryOptions(auth=only_stale, retry=FAST_RETRY),
            )


def test_a_single_platform_image_must_suit_the_platform(
    registries: Registries, tmp_path: Path
) -> None:
    setup = make_setup(registries, "plain")
    arm = sample_image("lone-arm", platform="linux/arm64/v8")
    name = seed(tmp_path, setup, arm, unique_repository())
    store = Store(tmp_path / "store")
    with pytest.raises(PlatformNotFoundError, match="linux/arm64"):
        pull(
            name,
            store=store,
            platform="linux/amd64",
            options=RegistryOptions(plain_http=True, retry=FAST_RETRY),
        )
    assert not store.has_blob(arm.layers[0].digest)  # refused before any layer traffic
    pulled = pull(
        name,
        store=store,
        platform="linux/arm64",
        options=RegistryOptions(plain_http=True, retry=FAST_RETRY),
    )
    assert pulled.platform == "linux/arm64/v8"


def test_a_hostile_layer_is_stopped_during_the_streaming_unpack(
    registries: Registries, tmp_path: Path
) -> None:
    import io
    import tarfile

    from ocistore.errors import UnsafeLayerError
    from ocistore.testing.imagebuild import RawLayer

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in (("ok.txt", b"fine\n"), ("../escaped.txt", b"owned\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    image = build_image([RawLayer(raw.getvalue())], compression="gzip")
    setup = make_setup(registries, "plain")
    name = seed(tmp_path, setup, image, unique_repository("hostile"))
    rootfs = tmp_path / "jail" / "rootfs"
    store = Store(tmp_path / "store")
    with pytest.raises(UnsafeLayerError):
        pull(
            name,
            store=store,
            unpack=rootfs,
            options=RegistryOptions(plain_http=True, retry=FAST_RETRY),
        )
    assert not (tmp_path / "jail" / "escaped.txt").exists()
    assert store.find_image(name) is None
    assert all(p.kind.value == "leftover-ingest" for p in store.fsck().problems)
