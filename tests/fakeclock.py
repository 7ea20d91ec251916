"""A clock the test moves by hand: injected wherever the code under test reads the time."""

from __future__ import annotations


class FakeClock:
    """Monotonic seconds that only move when the test sets ``now``."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
