"""client-go's flowcontrol.Backoff as kubelet configures it for images (10 s → 300 s)."""

from __future__ import annotations

import pytest

from ocistore.manager import IMAGE_BACKOFF_INITIAL, IMAGE_BACKOFF_MAX, Backoff


def test_kubelet_constants() -> None:
    assert (IMAGE_BACKOFF_INITIAL, IMAGE_BACKOFF_MAX) == (10.0, 300.0)


def test_windows_double_and_cap_at_300_seconds() -> None:
    backoff = Backoff()
    now = 1000.0
    windows = []
    for _ in range(8):
        windows.append(backoff.next("pod_nginx", now))
        now += 1  # consecutive failures, well inside the 600 s expiry
    assert windows == [10, 20, 40, 80, 160, 300, 300, 300]


def test_in_backoff_only_inside_the_window() -> None:
    backoff = Backoff()
    assert not backoff.is_in_backoff_since_update("k", 0.0)
    backoff.next("k", 100.0)
    assert backoff.is_in_backoff_since_update("k", 100.0)
    assert backoff.is_in_backoff_since_update("k", 109.999)
    assert not backoff.is_in_backoff_since_update("k", 110.0)
    assert backoff.remaining("k", 104.0) == pytest.approx(6.0)


def test_entry_expires_after_twice_the_cap_and_restarts_at_initial() -> None:
    backoff = Backoff()
    for t in (0.0, 1.0, 2.0):
        backoff.next("k", t)
    assert backoff.get("k") == 40
    # 600 s idle is not yet expired (strictly greater is required) ...
    assert backoff.next("k", 2.0 + 600.0) == 80
    # ... but 600.001 s idle is.
    assert backoff.next("k", 602.0 + 600.001) == 10
    assert not backoff.is_in_backoff_since_update("k", 602.0 + 600.001 + 10)


def test_keys_are_independent() -> None:
    backoff = Backoff()
    backoff.next("uid-a_nginx", 0)
    backoff.next("uid-a_nginx", 1)
    assert backoff.next("uid-b_nginx", 1) == 10
    assert backoff.get("uid-a_nginx") == 20


def test_gc_drops_only_stale_entries() -> None:
    backoff = Backoff()
    backoff.next("old", 0)
    backoff.next("fresh", 500)
    backoff.gc(700)
    assert backoff.get("old") == 0 and backoff.get("fresh") == 10
    assert len(backoff) == 1


def test_reset_forgets() -> None:
    backoff = Backoff()
    backoff.next("k", 0)
    backoff.reset("k")
    assert not backoff.is_in_backoff_since_update("k", 1)


@pytest.mark.parametrize(("initial", "maximum"), [(0, 10), (-1, 10), (20, 10)])
def test_invalid_parameters(initial: float, maximum: float) -> None:
    with pytest.raises(ValueError):
        Backoff(initial, maximum)
