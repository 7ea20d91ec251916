"""kubelet's EnsureImageExists against a real registry: policies, back-off, credentials,
KEP-2535 verification, shared and throttled pulls, pods, pre-pulled images."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fakeclock import FakeClock
from node_registries import ManagerRegistries
from regfixtures.registry import registry_requests
from waiting import join_all

import ocistore
from ocistore.errors import (
    ErrImageNeverPull,
    ErrImagePull,
    ImagePullBackOff,
    InvalidImageName,
    RegistryUnavailable,
)
from ocistore.manager import ImageEvent, ImageManager
from ocistore.manager.interfaces import Pulled, Puller
from ocistore.manager.manager import store_puller
from ocistore.policy import PullPolicy
from ocistore.registry import RetryPolicy
from ocistore.registry.options import RegistryOptions
from ocistore.store import Store
from ocistore.testing.imagebuild import build_image


def _push_image(registry_host: str, name: str, tmp_path: Path, **push: Any) -> str:
    """Builds a small two-layer image, pushes it, returns its reference."""
    reference = f"{registry_host}/{name}"
    image = build_image(
        [{"etc/os-release": f"ID={name}\n"}, {"app/run": b"#!/bin/sh\necho hi\n" * 50}]
    )
    store = Store(tmp_path / f"build-{uuid.uuid4().hex[:8]}")
    image.write_to_store(store, reference)
    ocistore.push(reference, store=store, **push, options=RegistryOptions(plain_http=True))
    return reference


def _secret(name: str, host: str, user: str, password: str, namespace: str = "default") -> dict:  # type: ignore[type-arg]
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = {"auths": {host: {"username": user, "password": password, "auth": auth}}}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
        "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
    }


def _manager(tmp_path: Path, **kwargs: Any) -> tuple[ImageManager, list[ImageEvent]]:
    seen: list[ImageEvent] = []
    kwargs.setdefault("registry", RegistryOptions(plain_http=True))
    manager = ImageManager(Store(tmp_path / "store"), on_event=seen.append, **kwargs)
    return manager, seen


def _reasons(events: list[ImageEvent]) -> list[str]:
    return [event.reason for event in events]


def _repo() -> str:
    return f"mgr/{uuid.uuid4().hex[:10]}"


# --- policies -----------------------------------------------------------------------------


def test_if_not_present_pulls_once_then_uses_the_store(
    manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    image = _push_image(manager_registries.plain.host, _repo() + ":1.0", tmp_path)
    manager, events = _manager(tmp_path)
    first = manager.ensure_image(image)
    assert first.pull_policy is PullPolicy.IF_NOT_PRESENT and first.pulled
    assert first.digest.startswith("sha256:") and first.size > 0
    assert _reasons(events) == ["Pulling", "Pulled"]
    assert events[1].message.startswith(f'Successfully pulled image "{image}" in ')
    assert events[1].message.endswith(f"Image size: {first.size} bytes.")

    before = len(registry_requests(manager_registries.plain))
    again = manager.ensure_image(image)
    assert not again.pulled and again.digest == first.digest
    assert events[-1].message == f'Container image "{image}" already present on machine'
    assert len(registry_requests(manager_registries.plain)) == before  # no registry traffic


def test_always_resolves_with_one_head_and_downloads_nothing_when_current(
    manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    image = _push_image(manager_registries.plain.host, _repo() + ":latest", tmp_path)
    manager, _ = _manager(tmp_path)
    first = manager.ensure_image(image)
    assert first.pull_policy is PullPolicy.ALWAYS and first.bytes_downloaded > 0

    before = len(registry_requests(manager_registries.plain))
    again = manager.ensure_image(image)
    assert again.pulled and again.digest == first.digest and again.bytes_downloaded == 0
    new = registry_requests(manager_registries.plain)[before:]
    assert [method for method, _ in new] == ["HEAD"], new


def test_always_pulls_only_the_changed_layers(
    manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    repo = _repo()
    host = manager_registries.plain.host
    base = {"etc/os-release": "ID=base\n"}
    store = Store(tmp_path / "build")
    v1 = build_image([base, {"app": "one"}])
    v1.write_to_store(store, f"{host}/{repo}:latest")
    ocistore.push(f"{host}/{repo}:latest", store=store, options=RegistryOptions(plain_http=True))
    manager, _ = _manager(tmp_path)
    manager.ensure_image(f"{host}/{repo}")

    v2 = build_image([base, {"app": "two"}])
    v2.write_to_store(store, f"{host}/{repo}:latest")
    ocistore.push(f"{host}/{repo}:latest", store=store, options=RegistryOptions(plain_http=True))
    result = manager.ensure_image(f"{host}/{repo}")
    assert result.digest == v2.digest
    assert result.bytes_downloaded == v2.layers[1].size  # the shared base layer is not fetched


def test_never_fails_with_kubelets_reason_when_absent(tmp_path: Path) -> None:
    manager, events = _manager(tmp_path)
    with pytest.raises(ErrImageNeverPull) as info:
        manager.ensure_image("127.0.0.1:9/absent:1", pull_policy="Never")
    assert info.value.reason == "ErrImageNeverPull"
    assert info.value.message == (
        'Container image "127.0.0.1:9/absent:1" is not present with pull policy of Never'
    )
    assert [(e.type, e.reason) for e in events] == [("Warning", "ErrImageNeverPull")]


@pytest.mark.parametrize("image", ["Nginx", "nginx:", "a//b", "nginx@sha256:123", ""])
def test_invalid_names(tmp_path: Path, image: str) -> None:
    manager, events = _manager(tmp_path)
    with pytest.raises(InvalidImageName) as info:
        manager.ensure_image(image)
    assert info.value.reason == "InvalidImageName"
    assert info.value.message.startswith("Failed to apply default image tag")
    assert _reasons(events) == ["InspectFailed"]


def test_policy_is_case_sensitive(tmp_path: Path) -> None:
    manager, _ = _manager(tmp_path)
    with pytest.raises(ValueError):
        manager.ensure_image("nginx:1", pull_policy="always")


def test_pre_pulled_images_need_no_registry(tmp_path: Path) -> None:
    # An image imported from an OCI layout, named for a registry that does not exist.
    layout = tmp_path / "layout"
    build_image([{"hello": "world"}]).write_layout(layout, "127.0.0.1:9/preloaded/app:1.0")
    manager, _ = _manager(tmp_path)
    imported = manager.store.import_layout(layout)
    assert [r.reference for r in imported] == ["127.0.0.1:9/preloaded/app:1.0"]
    for policy in ("IfNotPresent", "Never"):
        result = manager.ensure_image("127.0.0.1:9/preloaded/app:1.0", pull_policy=policy)
        assert not result.pulled and result.digest == imported[0].digest
    with pytest.raises(RegistryUnavailable) as info:
        manager.ensure_image("127.0.0.1:9/preloaded/app:1.0", pull_policy="Always")
    assert "because the registry is unavailable" in info.value.message


def test_always_pull_images_admission(
    manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    image = _push_image(manager_registries.plain.host, _repo() + ":2.0", tmp_path)
    manager, _ = _manager(tmp_path, always_pull_images=True)
    manager.ensure_image(image, pull_policy="IfNotPresent")
    again = manager.ensure_image(image, pull_policy="Never")
    assert again.pull_policy is PullPolicy.ALWAYS and again.pulled


# --- back-off -----------------------------------------------------------------------------


def test_image_pull_backoff_sequence_with_a_fake_clock(
    manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    clock = FakeClock()
    manager, events = _manager(tmp_path, clock=clock)
    missing = f"{manager_registries.plain.host}/{_repo()}:nope"

    def attempt() -> str:
        try:
            manager.ensure_image(missing, pod_uid="pod-1")
        except (ErrImagePull, ImagePullBackOff) as error:
            return error.reason
        raise AssertionError("the pull should fail")

    assert attempt() == "ErrImagePull"
    assert _reasons(events) == ["Pulling", "Failed"]
    failed_message = events[-1].message
    assert failed_message.startswith(f'Failed to pull image "{missing}": ')
    assert "404" in failed_message or "MANIFEST_UNKNOWN" in failed_message

    seen = []
    for window in (10, 20, 40, 80, 160, 300, 300):
        clock.now += window - 0.001
        seen.append(attempt())  # still inside the window
        clock.now += 0.001
        seen.append(attempt())  # the window is over: a real attempt, which fails again
    assert seen == ["ImagePullBackOff", "ErrImagePull"] * 7
    backoff_events = [e for e in events if e.reason == "BackOff"]
    assert backoff_events[0].message.startswith(
        f'Back-off pulling image "{missing}": ErrImagePull: '
    )

    # Another pod starts fresh: the key is (pod UID, image).
    with pytest.raises(ErrImagePull):
        manager.ensure_image(missing, pod_uid="pod-2")


def test_backoff_forgotten_after_600_idle_seconds(
    manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    clock = FakeClock()
    manager, _ = _manager(tmp_path, clock=clock)
    missing = f"{manager_registries.plain.host}/{_repo()}:nope"
    for _ in range(3):
        with pytest.raises(ErrImagePull):
            manager.ensure_image(missing, pod_uid="p")
        clock.now += 1000  # past every window and past the 600 s expiry
    with pytest.raises(ErrImagePull):
        manager.ensure_image(missing, pod_uid="p")
    clock.now += 10.5  # back at the initial 10 s window: over
    with pytest.raises(ErrImagePull):
        manager.ensure_image(missing, pod_uid="p")


def test_registry_unavailable_reason(tmp_path: Path) -> None:
    manager, _ = _manager(
        tmp_path, registry=RegistryOptions(plain_http=True, retry=RetryPolicy(attempts=1))
    )
    with pytest.raises(RegistryUnavailable) as info:
        manager.ensure_image("127.0.0.1:9/app:1.0")
    assert info.value.reason == "RegistryUnavailable"
    assert info.value.message.startswith(
        "image pull failed for 127.0.0.1:9/app:1.0 because the registry is unavailable"
    )


# --- credentials and KEP-2535 ---------------------------------------------------------------


def _private_image(regs: ManagerRegistries, tmp_path: Path, host: str | None = None) -> str:
    repo = _repo() + ":1.0"
    _push_image(regs.plain.host, repo, tmp_path)  # same storage: the other registries serve it
    return f"{host or regs.basic.host}/{repo}"


def _users_since(regs: ManagerRegistries, mark: int) -> list[str]:
    """Users that asked the token issuer for a token since ``mark`` (anonymous left out)."""
    return [user for user in regs.token_users()[mark:] if user is not None]


def test_pull_secret_credentials_tried_in_order(
    manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    regs = manager_registries
    image = _private_image(regs, tmp_path, regs.token.host)
    manager, _ = _manager(tmp_path)
    with pytest.raises(ErrImagePull, match="refused every credential"):
        manager.ensure_image(image)

    # Every matching credential is tried, in the secrets' order, until one works: the token
    # issuer's log shows who asked, in order.
    first = _secret("first", regs.token.host, "first-user", "nope")
    second = _secret("second", regs.token.host, "second-user", "nope")
    right = _secret("right", regs.token.host, regs.user, regs.password)
    after = _secret("after", regs.token.host, "after-user", "nope")
    mark = len(regs.token_users())
    result = manager.ensure_image(image, pull_secrets=[first, second, right, after], pod_uid="x")
    assert result.pulled and result.credential_source == "secret default/right"
    assert _users_since(regs, mark) == ["first-user", "second-user", regs.user]


def test_ensure_secret_pulled_images(manager_registries: ManagerRegistries, tmp_path: Path) -> None:
    regs = manager_registries
    image = _private_image(regs, tmp_path)
    right = _secret("regcred", regs.basic.host, regs.user, regs.password, "team-a")
    manager, events = _manager(
        tmp_path, image_pull_credentials_verification_policy="NeverVerifyPreloadedImages"
    )
    first = manager.ensure_image(image, pull_secrets=[right], pod_uid="a", namespace="team-a")
    assert first.pulled

    # A pod of another tenant with no credentials may not use the private image ...
    with pytest.raises(ErrImagePull):
        manager.ensure_image(image, pod_uid="b", namespace="team-b")
    with pytest.raises(ErrImageNeverPull) as info:
        manager.ensure_image(image, pull_policy="Never", pod_uid="b", namespace="team-b")
    assert info.value.message.endswith("is not present with pull policy of Never")

    # ... but a pod that holds the same credential (another secret, same content) may.
    copy = _secret("copy", regs.basic.host, regs.user, regs.password, "team-c")
    third = manager.ensure_image(image, pull_secrets=[copy], pod_uid="c", namespace="team-c")
    assert not third.pulled
    assert events[-1].message.endswith("already present on machine and can be accessed by the pod")

    # The records survive a restart (a new manager over the same store).
    restarted = ImageManager(
        Store(tmp_path / "store"),
        image_pull_credentials_verification_policy="NeverVerifyPreloadedImages",
        registry=RegistryOptions(plain_http=True),
    )
    assert not restarted.ensure_image(image, pull_secrets=[right], pod_uid="d").pulled
    with pytest.raises(ErrImageNeverPull):
        restarted.ensure_image(image, pull_policy="Never", pod_uid="e")


# --- concurrency and throttling ----------------------------------------------------------------


def _counting_puller(store: Store, calls: list[str], gate: threading.Event | None = None) -> Puller:
    """ocistore.pull into ``store``, counting calls (and waiting for ``gate`` first)."""
    pull_into_store = store_puller(store)

    def puller(reference: str, **request: Any) -> Pulled:
        calls.append(reference)
        if gate is not None:
            gate.wait(10)
        return pull_into_store(reference, **request)

    return puller


def test_concurrent_requests_for_one_image_share_one_pull(
    manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    image = _push_image(manager_registries.plain.host, _repo() + ":3.0", tmp_path)
    calls: list[str] = []
    gate = threading.Event()
    manager, _ = _manager(
        tmp_path,
        puller=_counting_puller(Store(tmp_path / "store"), calls, gate),
        serialize_image_pulls=False,
    )
    results: list[Any] = []
    threads = [
        threading.Thread(
            target=lambda uid=uid: results.append(
                manager.ensure_image(image, pull_policy="Always", pod_uid=uid)
            )
        )
        for uid in ("a", "b", "c")
    ]
    for thread in threads:
        thread.start()
    flight_key = f"{ocistore.Reference.parse(image)}|"
    deadline = time.monotonic() + 10
    while manager._flight.joined(flight_key) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    gate.set()
    join_all(threads)
    assert len(calls) == 1
    assert len({r.digest for r in results}) == 1 and len(results) == 3


def _peak_pulls(
    manager_kwargs: dict[str, Any], images: list[str], tmp_path: Path, want: int
) -> int:
    """The most pulls the manager ran at once for ``images`` requested together. Each pull
    waits (up to 1.5 s) until ``want`` are running, so a tighter bound shows as a lower peak
    and a looser one as a higher peak, whatever the scheduling."""
    running = 0
    peak = 0
    changed = threading.Condition()
    pull_into_store = store_puller(Store(tmp_path / "store"))

    def puller(reference: str, **request: Any) -> Pulled:
        nonlocal running, peak
        with changed:
            running += 1
            peak = max(peak, running)
            changed.notify_all()
            changed.wait_for(lambda: running >= want, timeout=1.5)
        try:
            return pull_into_store(reference, **request)
        finally:
            with changed:
                running -= 1

    manager, _ = _manager(tmp_path, puller=puller, **manager_kwargs)
    threads = [threading.Thread(target=manager.ensure_image, args=(image,)) for image in images]
    for thread in threads:
        thread.start()
    join_all(threads)
    assert sorted(record.reference for record in Store(tmp_path / "store").images()) == sorted(
        images
    )
    return peak


def test_pulls_are_serial_by_default(manager_registries: ManagerRegistries, tmp_path: Path) -> None:
    images = [_push_image(manager_registries.plain.host, _repo() + ":s", tmp_path) for _ in "ab"]
    assert _peak_pulls({}, images, tmp_path, want=2) == 1


def test_max_parallel_image_pulls_bounds_parallel_pulls(
    manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    images = [_push_image(manager_registries.plain.host, _repo() + ":p", tmp_path) for _ in "abcd"]
    bounded = {"serialize_image_pulls": False, "max_parallel_image_pulls": 2}
    assert _peak_pulls(bounded, images, tmp_path / "bounded", want=2) == 2
    unbounded = {"serialize_image_pulls": False}
    assert _peak_pulls(unbounded, images, tmp_path / "unbounded", want=4) == 4


def test_registry_qps_exceeded_is_err_image_pull(
    manager_registries: ManagerRegistries, tmp_path: Path
) -> None:
    image = _push_image(manager_registries.plain.host, _repo() + ":4.0", tmp_path)
    clock = FakeClock()
    manager, _ = _manager(tmp_path, clock=clock, registry_pull_qps=1, registry_burst=1)
    manager.ensure_image(image, pull_policy="Always", pod_uid="a")
    with pytest.raises(ErrImagePull) as info:
        manager.ensure_image(image, pull_policy="Always", pod_uid="b")
    assert info.value.message == "pull QPS exceeded"
    clock.now += 1.0
    assert manager.ensure_image(image, pull_policy="Always", pod_uid="c").pulled


# --- pods -------------------------------------------------------------------------------------


def test_ensure_pod(manager_registries: ManagerRegistries, tmp_path: Path) -> None:
    regs = manager_registries
    public = _push_image(regs.plain.host, _repo() + ":1.0", tmp_path)
    private = _private_image(regs, tmp_path, regs.token.host)
    pod = f"""
apiVersion: v1
kind: Pod
metadata: {{name: web, namespace: shop, uid: pod-uid}}
spec:
  imagePullSecrets: [{{name: regcred}}]
  initContainers: [{{name: init, image: "{public}"}}]
  containers:
    - {{name: app, image: "{private}"}}
    - {{name: never, image: "{regs.plain.host}/absent:1", imagePullPolicy: Never}}
"""
    manager, _ = _manager(tmp_path)
    # A same-named secret from another namespace comes first: were it not filtered out, the
    # token issuer would see its user before the right one.
    secrets = [
        _secret("regcred", regs.token.host, "other-namespace-user", "x", namespace="other"),
        _secret("regcred", regs.token.host, regs.user, regs.password, namespace="shop"),
    ]
    mark = len(regs.token_users())
    results = manager.ensure_pod(pod, secrets=secrets)
    assert [(r.container, r.ok, r.reason) for r in results] == [
        ("init", True, None),
        ("app", True, None),
        ("never", False, "ErrImageNeverPull"),
    ]
    assert results[1].result is not None
    assert results[1].result.credential_source == "secret shop/regcred"
    assert _users_since(regs, mark) == [regs.user]


def test_unpack_through_the_manager(manager_registries: ManagerRegistries, tmp_path: Path) -> None:
    image = _push_image(manager_registries.plain.host, _repo() + ":5.0", tmp_path)
    manager, _ = _manager(tmp_path)
    manager.ensure_image(image, unpack=tmp_path / "rootfs")
    assert (tmp_path / "rootfs" / "app" / "run").read_bytes().startswith(b"#!/bin/sh")
    manager.ensure_image(image, unpack=tmp_path / "rootfs2")  # present: unpacked from the store
    assert (tmp_path / "rootfs2" / "etc" / "os-release").exists()
