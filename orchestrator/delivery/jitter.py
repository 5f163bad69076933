"""Spread retries out, so sends that failed together do not come back together.

A provider outage fails every send in flight at once. Retried after the same backoff, they
would all wake in the same scheduler tick and hit the provider (and the database) as one wave,
outage after outage. So each delay is stretched by a random share of itself: never shortened,
so a provider's ``Retry-After`` and the reconciliation window still hold as minimums.

The random source is passed in (``Runtime.jitter``), so tests choose what it draws.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

BACKOFF_SPREAD = 0.5  # a transient failure's backoff (or Retry-After) waits up to 1.5 times it
REQUEUE_SPREAD = 1.0  # a row put back for a send slot comes back in one to two seconds
RECONCILE_SPREAD = 0.1  # an unknown outcome waits its window plus up to a tenth of it


class RandomSource(Protocol):
    """What jitter needs of ``random.Random``: a float in [0, 1)."""

    def random(self) -> float: ...


def spread(delay: timedelta, source: RandomSource, share: float) -> timedelta:
    """``delay`` stretched by up to ``share`` of itself, uniformly: in [delay, delay·(1+share))."""
    return delay * (1 + share * source.random())
