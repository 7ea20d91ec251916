"""Pull concurrency as kubelet configures it: serial or bounded-parallel pulls, a registry QPS
token bucket, and one shared pull for concurrent requests of the same image."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

#: kubelet's ``registryPullQPS`` default.
DEFAULT_REGISTRY_PULL_QPS = 5.0
#: kubelet's ``registryBurst`` default.
DEFAULT_REGISTRY_BURST = 10


class PullQPSExceeded(Exception):
    """The registry QPS token bucket is empty (kubelet's ``pull QPS exceeded``)."""

    def __init__(self) -> None:
        super().__init__("pull QPS exceeded")


class TokenBucket:
    """client-go's token-bucket rate limiter; ``try_accept`` never waits. QPS 0 = unlimited."""

    def __init__(self, qps: float, burst: int, clock: Callable[[], float]) -> None:
        if qps < 0:
            raise ValueError("registry QPS must be >= 0")
        if qps > 0 and burst < 1:
            raise ValueError("registry burst must be >= 1 when QPS is limited")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def try_accept(self) -> bool:
        """Takes a token if one is available."""
        if self.qps == 0:
            return True
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


class PullSlots:
    """Bounds concurrent pulls: one at a time (serialized, kubelet's default), ``n``, or none."""

    def __init__(self, serialize: bool = True, max_parallel: int | None = None) -> None:
        if serialize and max_parallel is not None and max_parallel != 1:
            raise ValueError("max_parallel_image_pulls needs serialize_image_pulls=False")
        limit = 1 if serialize else (max_parallel if max_parallel and max_parallel >= 1 else None)
        self.limit = limit
        self._semaphore = threading.BoundedSemaphore(limit) if limit else None

    def __enter__(self) -> PullSlots:
        if self._semaphore is not None:
            self._semaphore.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._semaphore is not None:
            self._semaphore.release()


class _Call(Generic[T]):
    """One call in flight: what its joiners wait for (Go's singleflight ``call``)."""

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None

    def outcome(self) -> T:
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]  # set before done


class SingleFlight(Generic[T]):
    """Runs one call per key at a time; concurrent callers with the same key share its result.

    (A plain event per call rather than ``concurrent.futures.Future``: that module imports
    ``logging``, which a re-pull of a present image otherwise never loads.)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inflight: dict[str, _Call[T]] = {}
        self._joined: dict[str, int] = {}

    def joined(self, key: str) -> int:
        """How many callers are waiting on the call in flight for ``key``."""
        with self._lock:
            return self._joined.get(key, 0)

    def do(self, key: str, call: Callable[[], T]) -> tuple[T, bool]:
        """Returns ``(result, shared)``; ``shared`` is True when joining another caller's call."""
        with self._lock:
            flight = self._inflight.get(key)
            leader = flight is None
            if flight is None:
                flight = _Call()
                self._inflight[key] = flight
            else:
                self._joined[key] = self._joined.get(key, 0) + 1
        if not leader:
            return flight.outcome(), True
        try:
            result = call()
        except BaseException as error:
            flight.error = error
            raise
        else:
            flight.result = result
            return result, False
        finally:
            with self._lock:
                self._inflight.pop(key, None)
                self._joined.pop(key, None)
            flight.done.set()
