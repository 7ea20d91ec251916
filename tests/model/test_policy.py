"""imagePullPolicy values, the API server's defaulting rule and kubelet's pull decision."""

from __future__ import annotations

import pytest

from ocistore import (
    InvalidPullPolicyError,
    OciStoreError,
    PullPolicy,
    Reference,
    default_pull_policy,
)
from ocistore.policy import should_pull

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("nginx", PullPolicy.ALWAYS),
        ("nginx:latest", PullPolicy.ALWAYS),
        ("docker.io/library/nginx", PullPolicy.ALWAYS),
        ("localhost:5000/app", PullPolicy.ALWAYS),
        ("nginx:1.25", PullPolicy.IF_NOT_PRESENT),
        (f"nginx@{DIGEST}", PullPolicy.IF_NOT_PRESENT),
        (f"nginx:latest@{DIGEST}", PullPolicy.ALWAYS),
        (f"nginx:1.25@{DIGEST}", PullPolicy.IF_NOT_PRESENT),
        ("nginx:LATEST", PullPolicy.IF_NOT_PRESENT),
        ("nginx:Latest", PullPolicy.IF_NOT_PRESENT),
        ("Nginx", PullPolicy.IF_NOT_PRESENT),
        ("", PullPolicy.IF_NOT_PRESENT),
        ("registry.example.com:5000/team/app:latest", PullPolicy.ALWAYS),
        ("registry.example.com:5000/team/app:v2", PullPolicy.IF_NOT_PRESENT),
    ],
)
def test_default_pull_policy(image: str, expected: PullPolicy) -> None:
    assert default_pull_policy(image) is expected


def test_default_pull_policy_accepts_a_parsed_reference() -> None:
    assert default_pull_policy(Reference.parse("nginx")) is PullPolicy.ALWAYS
    assert default_pull_policy(Reference.parse(f"nginx@{DIGEST}")) is PullPolicy.IF_NOT_PRESENT


def test_values_are_the_api_strings() -> None:
    assert [p.value for p in PullPolicy] == ["Always", "IfNotPresent", "Never"]
    assert str(PullPolicy.IF_NOT_PRESENT) == "IfNotPresent"
    assert PullPolicy.NEVER == "Never"


@pytest.mark.parametrize("text", ["Always", "IfNotPresent", "Never"])
def test_parse_exact_values(text: str) -> None:
    assert PullPolicy.parse(text).value == text


@pytest.mark.parametrize("text", ["always", "ALWAYS", "ifnotpresent", "IfNotPresent ", "", "never"])
def test_parse_is_case_sensitive(text: str) -> None:
    with pytest.raises(InvalidPullPolicyError) as caught:
        PullPolicy.parse(text)
    assert str(caught.value) == (
        f'Unsupported value: "{text}": supported values: "Always", "IfNotPresent", "Never"'
    )
    assert isinstance(caught.value, OciStoreError)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("policy", "present", "pulls"),
    [
        # kubelet pkg/kubelet/images/image_manager.go shouldPullImage, case by case
        (PullPolicy.ALWAYS, True, True),
        (PullPolicy.ALWAYS, False, True),
        (PullPolicy.IF_NOT_PRESENT, True, False),
        (PullPolicy.IF_NOT_PRESENT, False, True),
        (PullPolicy.NEVER, True, False),
        (PullPolicy.NEVER, False, False),
    ],
)
def test_should_pull_is_kubelets_table(policy: PullPolicy, present: bool, pulls: bool) -> None:
    assert should_pull(policy, present=present) is pulls
