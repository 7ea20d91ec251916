"""Per-key exponential back-off, the way client-go's ``flowcontrol.Backoff`` does it for kubelet."""

from __future__ import annotations

import threading
from collections.abc import Callable

#: kubelet's ``imageBackOffPeriod``: the first window after a failed pull.
IMAGE_BACKOFF_INITIAL = 10.0
#: kubelet's ``MaxImageBackOff``: the cap on the window.
IMAGE_BACKOFF_MAX = 300.0


class _Entry:
    # A plain class: a dataclass would compile three methods at every import of the manager.
    __slots__ = ("backoff", "last_update")

    def __init__(self, backoff: float, last_update: float) -> None:
        self.backoff = backoff
        self.last_update = last_update


class Backoff:
    """Exponential back-off per key: 10 s, 20 s, 40 s … capped at 300 s, forgotten after 600 s.

    ``clock`` returns monotonic seconds; tests inject a fake one. Thread-safe.
    """

    def __init__(
        self,
        initial: float = IMAGE_BACKOFF_INITIAL,
        maximum: float = IMAGE_BACKOFF_MAX,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError("back-off needs 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def _expired(self, entry: _Entry, now: float) -> bool:
        # client-go's hasExpired: an entry idle for more than twice the cap starts over.
        return now - entry.last_update > 2 * self.maximum

    def next(self, key: str, now: float) -> float:
        """Records a failure of ``key`` at ``now`` and returns the new back-off window."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or self._expired(entry, now):
                entry = _Entry(backoff=self.initial, last_update=now)
                self._entries[key] = entry
            else:
                entry.backoff = min(entry.backoff * 2, self.maximum)
                entry.last_update = now
            return entry.backoff

    def get(self, key: str) -> float:
        """The current window of ``key`` (0 when it has none)."""
        with self._lock:
            entry = self._entries.get(key)
            return entry.backoff if entry else 0.0

    def is_in_backoff_since_update(self, key: str, now: float) -> bool:
        """True while ``now`` is inside the window that began at the key's last failure."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or self._expired(entry, now):
                return False
            return now - entry.last_update < entry.backoff

    def remaining(self, key: str, now: float) -> float:
        """Seconds left in the key's window (0 when not backing off)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or self._expired(entry, now):
                return 0.0
            return max(0.0, entry.backoff - (now - entry.last_update))

    def reset(self, key: str) -> None:
        """Forgets ``key`` (client-go's ``Reset``)."""
        with self._lock:
            self._entries.pop(key, None)

    def gc(self, now: float) -> None:
        """Drops entries idle for more than twice the cap (called after each successful pull)."""
        with self._lock:
            for key in [k for k, e in self._entries.items() if self._expired(e, now)]:
                del self._entries[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
