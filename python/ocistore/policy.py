"""Kubernetes' ``imagePullPolicy``: its values, the API server's defaulting, kubelet's decision."""

from __future__ import annotations

from enum import StrEnum

from ocistore.errors import InvalidPullPolicyError
from ocistore.reference import DEFAULT_TAG, Reference

__all__ = ["PullPolicy", "default_pull_policy", "should_pull"]


class PullPolicy(StrEnum):
    """When the kubelet pulls a container's image (``str(policy)`` is the API value)."""

    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"

    @classmethod
    def parse(cls, text: str) -> PullPolicy:
        """The policy named exactly ``text`` (case-sensitive, as the API server checks it)."""
        for policy in cls:
            if policy.value == text:
                return policy
        supported = ", ".join(f'"{policy.value}"' for policy in cls)
        raise InvalidPullPolicyError(f'Unsupported value: "{text}": supported values: {supported}')


def default_pull_policy(image: str | Reference) -> PullPolicy:
    """The policy the API server fills in when a container leaves ``imagePullPolicy`` empty.

    ``SetDefaults_Container``: the tag that ``ParseImageName`` reports decides. It is ``latest``
    when the image has neither tag nor digest, absent for a digest-only image, and kept next to
    a digest (``nginx:latest@sha256:...`` stays Always). A tag of exactly ``latest`` gives
    Always (the comparison is case-sensitive); anything else, including an image that does not
    parse (validation rejects that separately), gives IfNotPresent.
    """
    if isinstance(image, Reference):
        ref = image
    else:
        try:
            ref = Reference.parse(image)
        except ValueError:  # upstream ignores the error: the tag is then ""
            return PullPolicy.IF_NOT_PRESENT
    tag = ref.tag
    if tag is None and ref.digest is None:
        tag = DEFAULT_TAG
    return PullPolicy.ALWAYS if tag == DEFAULT_TAG else PullPolicy.IF_NOT_PRESENT


def should_pull(policy: PullPolicy, present: bool) -> bool:
    """Whether kubelet pulls (``shouldPullImage``): Always yes, Never no, IfNotPresent if absent.

    ``present`` means usable as it is: an image whose pull credentials must still be verified
    (KEP-2535) is not present. When the answer is no and the image is absent, the container
    fails with ``ErrImageNeverPull``.
    """
    if policy is PullPolicy.ALWAYS:
        return True
    if policy is PullPolicy.NEVER:
        return False
    return not present
