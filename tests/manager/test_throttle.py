"""Registry QPS, pull slots and shared pulls."""

from __future__ import annotations

import threading
import time

import pytest
from fakeclock import FakeClock
from waiting import join_all

from ocistore.manager.throttle import PullSlots, SingleFlight, TokenBucket


def test_token_bucket_allows_burst_then_refills_at_qps() -> None:
    clock = FakeClock(now=0.0)
    bucket = TokenBucket(qps=5, burst=10, clock=clock)
    assert [bucket.try_accept() for _ in range(11)] == [True] * 10 + [False]
    clock.now = 0.2  # one token at 5 QPS
    assert bucket.try_accept() and not bucket.try_accept()
    clock.now = 100.0  # refills only up to the burst
    assert sum(bucket.try_accept() for _ in range(20)) == 10


def test_zero_qps_is_unlimited() -> None:
    bucket = TokenBucket(qps=0, burst=0, clock=FakeClock(now=0.0))
    assert all(bucket.try_accept() for _ in range(1000))


def test_bad_qps() -> None:
    with pytest.raises(ValueError):
        TokenBucket(qps=-1, burst=1, clock=FakeClock(now=0.0))


def _max_concurrency(slots: PullSlots, workers: int, limit: int, wait: float = 2.0) -> int:
    """The most workers ever inside ``slots`` at once. Each waits inside (up to ``wait`` s) until
    ``limit`` are in, so a bound below ``limit`` shows as a lower peak and no bound as a higher
    one, however the threads are scheduled."""
    active = 0
    peak = 0
    changed = threading.Condition()
    barrier = threading.Barrier(workers)

    def work() -> None:
        nonlocal active, peak
        barrier.wait()
        with slots:
            with changed:
                active += 1
                peak = max(peak, active)
                changed.notify_all()
                changed.wait_for(lambda: active >= limit, timeout=wait)
            time.sleep(0.05)  # others that were let in (an unbounded pool) arrive meanwhile
            with changed:
                active -= 1

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    join_all(threads)
    return peak


def test_serialized_pulls_run_one_at_a_time() -> None:
    assert _max_concurrency(PullSlots(serialize=True), 2, limit=2, wait=1.0) == 1


def test_parallel_pulls_are_bounded() -> None:
    assert _max_concurrency(PullSlots(serialize=False, max_parallel=2), 6, limit=2) == 2


def test_parallel_pulls_without_a_bound_all_run_at_once() -> None:
    assert _max_concurrency(PullSlots(serialize=False), 4, limit=4) == 4


def test_max_parallel_requires_serialize_false() -> None:
    with pytest.raises(ValueError):
        PullSlots(serialize=True, max_parallel=3)


def test_single_flight_shares_one_call() -> None:
    flight: SingleFlight[int] = SingleFlight()
    calls = 0
    started = threading.Event()
    release = threading.Event()

    def slow() -> int:
        nonlocal calls
        calls += 1
        started.set()
        release.wait(5)
        return 42

    results: list[tuple[int, bool]] = []
    leader = threading.Thread(target=lambda: results.append(flight.do("img", slow)))
    leader.start()
    started.wait(5)
    followers = [
        threading.Thread(target=lambda: results.append(flight.do("img", slow))) for _ in range(3)
    ]
    for thread in followers:
        thread.start()
    deadline = time.monotonic() + 10
    while flight.joined("img") < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert flight.joined("img") == 3
    release.set()
    join_all([leader, *followers])
    assert calls == 1
    assert sorted(results) == [(42, False), (42, True), (42, True), (42, True)]


def test_single_flight_propagates_errors_and_forgets() -> None:
    flight: SingleFlight[int] = SingleFlight()

    def fail() -> int:
        raise RuntimeError("nope")

    with pytest.raises(RuntimeError):
        flight.do("img", fail)
    assert flight.do("img", lambda: 7) == (7, False)


def test_single_flight_shares_the_leaders_failure() -> None:
    """Callers that joined a failing call get its error, not a result (kubelet: one
    ErrImagePull for every pod waiting on the same pull)."""
    flight: SingleFlight[int] = SingleFlight()
    started, release = threading.Event(), threading.Event()

    def failing() -> int:
        started.set()
        release.wait(5)
        raise RuntimeError("registry said no")

    outcomes: list[object] = []

    def attempt() -> None:
        try:
            outcomes.append(flight.do("img", failing))
        except RuntimeError as error:
            outcomes.append(str(error))

    leader = threading.Thread(target=attempt)
    leader.start()
    started.wait(5)
    followers = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in followers:
        thread.start()
    deadline = time.monotonic() + 10
    while flight.joined("img") < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    release.set()
    join_all([leader, *followers])
    assert outcomes == ["registry said no"] * 3
    assert flight.do("img", lambda: 7) == (7, False)  # forgotten once it ended
