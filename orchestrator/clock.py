"""Time as a value passed in, so scheduling logic is testable without waiting.

Entry points make the clock (``SystemClock``) and hand it down; library code never reads
time itself. Two readings: ``now()``, the moment (UTC), and ``monotonic()``, seconds that only
ever grow, for "has a while passed" (the template freshness caches). Tests move a
``FrozenClock`` instead of sleeping.

Two documented exceptions read real time on purpose: the send-rate limiter (Dramatiq's
buckets are keyed by wall-clock time, shared with other processes) and what compares with
the world outside (file modification times in the outbox, a provider's rate-limit reset).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Something that tells the current time, always timezone-aware UTC."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start; never goes back."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class FrozenClock:
    """A clock that moves only when told to: the tests' time machine."""

    def __init__(self, start: datetime) -> None:
        self._now = ensure_utc(start)
        self._elapsed = 0.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        """Seconds this clock was moved forward (setting it back does not undo them)."""
        return self._elapsed

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        self._elapsed += max(0.0, delta.total_seconds())
        return self._now

    def set(self, moment: datetime) -> None:
        moment = ensure_utc(moment)
        self._elapsed += max(0.0, (moment - self._now).total_seconds())
        self._now = moment


def ensure_utc(moment: datetime) -> datetime:
    """Treat a naive datetime as UTC; convert an aware one to UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
