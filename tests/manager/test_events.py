"""kubelet's event messages, character for character."""

from __future__ import annotations

import pytest

from ocistore.manager import events


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (0.0004, "0s"),
        (0.0123, "12ms"),
        (0.999, "999ms"),
        (1.0, "1s"),
        (1.5, "1.5s"),
        (2.3456, "2.345s"),
        (61.25, "1m1.25s"),
        (3600.0, "1h0m0s"),
    ],
)
def test_go_duration(seconds: float, text: str) -> None:
    assert events.go_duration(seconds) == text


def test_messages() -> None:
    image = "nginx:1.27"
    assert events.pulling(image) == 'Pulling image "nginx:1.27"'
    assert events.already_present(image, verified_access=False) == (
        'Container image "nginx:1.27" already present on machine'
    )
    assert events.already_present(image, verified_access=True) == (
        'Container image "nginx:1.27" already present on machine and can be accessed by the pod'
    )
    assert events.never_pull(image) == (
        'Container image "nginx:1.27" is not present with pull policy of Never'
    )
    assert events.pulled(image, 1.2345, 2.5, 1234) == (
        'Successfully pulled image "nginx:1.27" in 1.234s (2.5s including waiting). '
        "Image size: 1234 bytes."
    )
    assert events.failed(image, "boom") == 'Failed to pull image "nginx:1.27": boom'
    assert events.back_off(image, None) == 'Back-off pulling image "nginx:1.27"'
    assert events.back_off(image, "ErrImagePull: boom") == (
        'Back-off pulling image "nginx:1.27": ErrImagePull: boom'
    )


def test_go_quoting_escapes() -> None:
    assert events.pulling('a"b\\c\n') == 'Pulling image "a\\"b\\\\c\\n"'
