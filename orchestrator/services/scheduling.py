"""The scheduler tick: claim what is due in the database and hand its ids to the broker.

A claim moves rows to ``dispatched`` with a lease (``wake_at = now + lease``) in one short
transaction (:func:`orchestrator.scheduling.claims.claim_rows`); the broker only ever carries
row ids. If the message is lost (Redis emptied, a worker killed), the lease runs out and a
later tick dispatches the row again; the worker's own state check makes a duplicate message
harmless. On PostgreSQL the claim uses ``FOR UPDATE SKIP LOCKED`` so several schedulers
never claim the same row. The loop that ticks is :mod:`orchestrator.processes.scheduler`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine

from orchestrator.observability.metrics import CLAIMED
from orchestrator.scheduling.broker import Dispatcher
from orchestrator.scheduling.claims import claim_rows, earliest_wake


def claim_due_sends(engine: Engine, now: datetime, batch_size: int, lease: timedelta) -> list[int]:
    """Claim up to ``batch_size`` rows whose ``wake_at`` has come, in one transaction."""
    with engine.begin() as connection:
        return claim_rows(connection, now, batch_size, lease)


def tick(
    engine: Engine,
    dispatcher: Dispatcher,
    now: datetime,
    batch_size: int,
    lease: timedelta,
    max_batches: int = 100,
) -> int:
    """Claim and dispatch until nothing is due (or ``max_batches``); returns how many."""
    total = 0
    for _ in range(max_batches):
        ids = claim_due_sends(engine, now, batch_size, lease)
        if ids:
            CLAIMED.inc(len(ids))
            dispatcher.dispatch(ids)
            total += len(ids)
        if len(ids) < batch_size:
            break
    return total


def next_wake_at(engine: Engine) -> datetime | None:
    """The earliest time any row wants attention: lets an idle scheduler report its lag."""
    with engine.connect() as connection:
        return earliest_wake(connection)
