"""The send-rate limit: bucket sizes, a sliding second never over the limit (plus one
bucket), bounded waits that give up instead of spinning, and the backend per mode."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from dramatiq.rate_limits.backends import RedisBackend

from orchestrator.transports.rate_limit import (
    SendRateLimiter,
    _PruningStubBackend,
    bucket_plan,
    build_send_rate_limiter,
)
from tests.support.environment import make_settings
from tests.support.timing import max_per_sliding_second


@pytest.mark.parametrize(
    ("rate", "plan"),
    [(10, (100, 1)), (0.5, (2000, 1)), (3, (334, 1)), (150, (14, 2)), (1000, (10, 10))],
)
def test_bucket_plans(rate: float, plan: tuple[int, int]) -> None:
    assert bucket_plan(rate) == plan


def test_the_effective_rate_is_never_above_and_at_most_10_percent_below() -> None:
    for rate in [0.1, 0.7, 1, 2.5, 7, 33, 95, 99, 101, 199, 250, 999, 5000]:
        bucket_ms, slots = bucket_plan(rate)
        effective = slots * 1000 / bucket_ms
        assert 0.9 * rate <= effective <= rate, rate


def test_many_threads_share_the_budget_over_any_sliding_second() -> None:
    limiter = SendRateLimiter(_PruningStubBackend(), 20, "t", max_wait=10)  # type: ignore[no-untyped-call]
    taken: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(4):
            assert limiter.acquire()
            with lock:
                taken.append(time.monotonic())

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(taken) == 32
    assert max_per_sliding_second(taken) <= 20 + limiter.slots_per_bucket


def test_a_thread_that_finds_no_slot_sleeps_then_gives_up() -> None:
    fake_now = [0.0]
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        fake_now[0] += seconds

    limiter = SendRateLimiter(
        _PruningStubBackend(),  # type: ignore[no-untyped-call]
        0.1,  # one slot per ten seconds
        "t",
        max_wait=3,
        sleep=sleep,
        monotonic=lambda: fake_now[0],
    )
    assert limiter.acquire()
    assert not limiter.acquire()
    assert naps and sum(naps) == pytest.approx(3)  # slept its budget away, never spun
    assert all(nap > 0 for nap in naps)


def test_until_next_bucket_points_at_the_next_opening() -> None:
    limiter = SendRateLimiter(
        _PruningStubBackend(),  # type: ignore[no-untyped-call]
        10,
        "t",
        wall_clock=lambda: 1000.03,  # 30 ms into a 100 ms bucket
    )
    assert 0.070 <= limiter.until_next_bucket() <= 0.073


def test_the_in_process_backend_forgets_expired_buckets() -> None:
    backend = _PruningStubBackend()  # type: ignore[no-untyped-call]
    for n in range(_PruningStubBackend.PRUNE_EVERY + 10):
        backend.add(f"k{n}", 1, ttl=0)  # type: ignore[no-untyped-call]
    assert len(backend.db) < _PruningStubBackend.PRUNE_EVERY


def test_the_limiter_follows_the_settings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert build_send_rate_limiter(make_settings(tmp_path, url)) is None
    embedded = build_send_rate_limiter(make_settings(tmp_path, url, send_rate_limit=5))
    assert embedded is not None and "_PruningStubBackend" in repr(embedded)
    shared = build_send_rate_limiter(
        make_settings(tmp_path, url, send_rate_limit=5, redis_url="redis://127.0.0.1:1/0")
    )
    assert shared is not None and isinstance(shared._backend, RedisBackend)
    shared.close()
