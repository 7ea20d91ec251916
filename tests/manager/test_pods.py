"""Pods and workloads as input: defaulting, containers, pull secrets by namespace."""

from __future__ import annotations

import pytest

from ocistore.manager.pods import PodSpecError, load_documents, pod_images, resolve_pull_secrets
from ocistore.policy import PullPolicy

POD = """
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, uid: pod-uid-1}
spec:
  serviceAccountName: builder
  imagePullSecrets: [{name: regcred}, {name: missing}]
  initContainers:
    - {name: init, image: "busybox:1.36"}
  containers:
    - {name: app, image: nginx}
    - {name: side, image: "nginx:1.27", imagePullPolicy: Never}
    - {name: pinned, image: "nginx@sha256:%s"}
""" % ("a" * 64)


def test_pod_containers_with_defaulting() -> None:
    pod = pod_images(load_documents(POD)[0])
    assert (pod.name, pod.namespace, pod.uid, pod.service_account) == (
        "web",
        "shop",
        "pod-uid-1",
        "builder",
    )
    assert [(c.name, c.pull_policy, c.kind) for c in pod.containers] == [
        ("init", PullPolicy.IF_NOT_PRESENT, "initContainers"),
        ("app", PullPolicy.ALWAYS, "containers"),
        ("side", PullPolicy.NEVER, "containers"),
        ("pinned", PullPolicy.IF_NOT_PRESENT, "containers"),
    ]
    assert pod.pull_secret_names == ("regcred", "missing")


@pytest.mark.parametrize(
    ("kind", "wrap"),
    [
        ("Deployment", lambda spec: {"spec": {"template": {"spec": spec}}}),
        ("StatefulSet", lambda spec: {"spec": {"template": {"spec": spec}}}),
        ("DaemonSet", lambda spec: {"spec": {"template": {"spec": spec}}}),
        ("Job", lambda spec: {"spec": {"template": {"spec": spec}}}),
        ("CronJob", lambda spec: {"spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}}),
    ],
)
def test_workload_templates(kind: str, wrap: object) -> None:
    spec = {"containers": [{"name": "c", "image": "redis:7"}]}
    document = {"kind": kind, "metadata": {"name": "w"}, **wrap(spec)}  # type: ignore[operator]
    pod = pod_images(document)
    assert pod.namespace == "default"
    assert [(c.image, c.pull_policy) for c in pod.containers] == [
        ("redis:7", PullPolicy.IF_NOT_PRESENT)
    ]


def test_list_and_multi_document() -> None:
    text = (
        POD
        + "\n---\nkind: List\nitems:\n  - kind: Pod\n    metadata: {name: b}\n"
        + ("    spec: {containers: [{name: c, image: x}]}\n")
    )
    assert [d["metadata"]["name"] for d in load_documents(text)] == ["web", "b"]


@pytest.mark.parametrize(
    "document",
    [
        {"kind": "ConfigMap", "metadata": {"name": "x"}},
        {"kind": "Pod", "metadata": {"name": "x"}},
        {"kind": "Pod", "metadata": {"name": "x"}, "spec": {"containers": [{"name": "c"}]}},
        {"kind": "Pod", "metadata": {"name": "x"}, "spec": {"containers": "nope"}},
        {
            "kind": "Pod",
            "metadata": {"name": "x"},
            "spec": {"containers": [{"name": "c", "image": "x", "imagePullPolicy": "always"}]},
        },
    ],
)
def test_bad_documents_are_typed_errors(document: dict[str, object]) -> None:
    with pytest.raises(PodSpecError):
        pod_images(document)


def test_bad_yaml() -> None:
    with pytest.raises(PodSpecError):
        load_documents("kind: [unclosed")


def _secret(name: str, namespace: str) -> dict[str, object]:
    return {"kind": "Secret", "metadata": {"name": name, "namespace": namespace}}


def test_pull_secrets_only_from_the_pods_namespace() -> None:
    pod = pod_images(load_documents(POD)[0])
    found, missing = resolve_pull_secrets(
        pod, [_secret("regcred", "other"), _secret("regcred", "shop")]
    )
    assert [s["metadata"]["namespace"] for s in found] == ["shop"]  # type: ignore[index]
    assert missing == ["missing"]


def test_service_account_pull_secrets_when_pod_names_none() -> None:
    document = {
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "shop"},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
    }
    pod = pod_images(document)
    account = {
        "kind": "ServiceAccount",
        "metadata": {"name": "default", "namespace": "shop"},
        "imagePullSecrets": [{"name": "sa-cred"}],
    }
    found, missing = resolve_pull_secrets(pod, [_secret("sa-cred", "shop")], [account])
    assert len(found) == 1 and missing == []
    # The pod's own list wins over the service account's.
    named = pod_images(load_documents(POD)[0])
    found, _ = resolve_pull_secrets(named, [_secret("sa-cred", "shop")], [account])
    assert found == []
