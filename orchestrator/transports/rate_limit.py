"""The send-rate limit (``STEPMAIL_SEND_RATE_LIMIT``, mails a second): one budget shared by
every worker thread and process, so a burst of due steps cannot hurt the sender's reputation.

It uses Dramatiq's ``BucketRateLimiter`` on Redis (or, in embedded mode, an in-process
backend). One big one-second bucket would let ``2 × limit`` mails through across a bucket
boundary, so the second is cut into short buckets holding a slot or a few each: any sliding
second then sees at most the limit plus one bucket's slots (one slot below 100 mails/s).

A worker that finds no free slot sleeps until the next bucket opens, never spinning, and
gives up after ``max_wait`` seconds; the caller then puts the row back in the database to be
dispatched again shortly. Nothing is dropped.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Any

from dramatiq.rate_limits import BucketRateLimiter
from dramatiq.rate_limits.backends import RedisBackend, StubBackend

from orchestrator.settings import Settings

MIN_BUCKET_MS = 10  # shorter buckets cost Redis round trips and gain nothing in smoothness
DEFAULT_MAX_WAIT = 5.0  # seconds a worker thread waits for a slot before re-queueing the row


def bucket_plan(rate: float) -> tuple[int, int]:
    """``(bucket length in ms, slots per bucket)`` for ``rate`` mails a second.

    Slots per bucket stay as few as possible (one below 100 mails/s) and the bucket length is
    rounded up, so the effective rate never exceeds ``rate`` (it is at most ~10 % under).
    """
    if rate <= 0:
        raise ValueError("rate must be positive")
    slots = max(1, math.ceil(rate * MIN_BUCKET_MS / 1000))
    return math.ceil(slots * 1000 / rate), slots


class SendRateLimiter:
    """Hands out send slots; ``acquire`` blocks (sleeping) for at most ``max_wait`` seconds."""

    def __init__(
        self,
        backend: Any,
        rate: float,
        key: str,
        *,
        max_wait: float = DEFAULT_MAX_WAIT,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.rate = rate
        self.bucket_ms, self.slots_per_bucket = bucket_plan(rate)
        self.max_wait = max_wait
        self._backend = backend
        self._limiter = BucketRateLimiter(  # type: ignore[no-untyped-call]
            backend, key, limit=self.slots_per_bucket, bucket=self.bucket_ms
        )
        self._sleep, self._monotonic, self._wall_clock = sleep, monotonic, wall_clock

    def __repr__(self) -> str:
        return (
            f"SendRateLimiter({self.rate}/s: {self.slots_per_bucket} per {self.bucket_ms} ms, "
            f"backend={type(self._backend).__name__})"
        )

    def try_acquire(self) -> bool:
        """Take a slot in the current bucket if one is free; never waits."""
        with self._limiter.acquire(raise_on_failure=False) as acquired:
            return bool(acquired)

    def acquire(self) -> bool:
        """Take a slot, sleeping bucket by bucket; False once ``max_wait`` has passed."""
        deadline = self._monotonic() + self.max_wait
        while not self.try_acquire():
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                return False
            self._sleep(min(remaining, self.until_next_bucket()))
        return True

    def until_next_bucket(self) -> float:
        """Seconds until the next bucket opens, plus a little jitter so that the threads
        waiting for it do not all reach Redis in the same millisecond."""
        now_ms = self._wall_clock() * 1000
        wait_ms = self.bucket_ms - (now_ms % self.bucket_ms)
        return (wait_ms + random.uniform(0, min(2.0, self.bucket_ms / 10))) / 1000

    def close(self) -> None:
        """Drop the Redis connections (a pool handed to redis-py is not closed with it)."""
        client = getattr(self._backend, "client", None)
        if client is not None:
            client.close()
            client.connection_pool.disconnect()


class _PruningStubBackend(StubBackend):
    """Dramatiq's in-process backend never forgets a key; a limiter makes a key per bucket,
    so in a long-running embedded process expired keys are dropped now and then."""

    PRUNE_EVERY = 1024

    def _put(self, key: str, value: int, ttl: int) -> bool:
        if len(self.db) >= self.PRUNE_EVERY:
            now = time.monotonic()
            self.db = {k: v for k, v in self.db.items() if v[1] > now}
        result: bool = super()._put(key, value, ttl)  # type: ignore[no-untyped-call]
        return result


def build_send_rate_limiter(settings: Settings) -> SendRateLimiter | None:
    """The limiter the settings ask for: None when the limit is 0 (off); shared through Redis
    when it is configured, else held in this process (embedded mode has only one)."""
    if settings.send_rate_limit <= 0:
        return None
    backend: Any = (
        RedisBackend(url=settings.redis_url) if settings.redis_url else _PruningStubBackend()  # type: ignore[no-untyped-call]
    )
    key = f"stepmail:{settings.queue_name}:send-rate"
    return SendRateLimiter(backend, settings.send_rate_limit, key)
