"""The scheduler tick: claim what is due in the database and hand its ids to the broker.

A claim moves rows to ``dispatched`` with a lease (``wake_at = now + lease``) in one short
transaction; the broker only ever carries row ids. If the message is lost (Redis emptied, a
worker killed), the lease runs out and a later tick dispatches the row again; the worker's
own state check makes a duplicate message harmless. On PostgreSQL the claim uses
``FOR UPDATE SKIP LOCKED`` so several schedulers never claim the same row.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import ColumnElement, Engine, case, select, text, update

from orchestrator.db.engine import is_postgres
from orchestrator.db.models import WAKEABLE_SQL
from orchestrator.db.tables import scheduled_sends
from orchestrator.delivery.hand_over import began
from orchestrator.journeys.states import SendState

log = logging.getLogger(__name__)

_T = scheduled_sends
# Literal SQL, identical to the partial index's predicate, so the planner always uses the index.
WAKEABLE = text(WAKEABLE_SQL)


class Dispatcher(Protocol):
    """Hands claimed row ids to whatever runs the send actor (a Dramatiq broker)."""

    def dispatch(self, send_ids: Sequence[int]) -> None: ...


def claim_due_sends(engine: Engine, now: datetime, batch_size: int, lease: timedelta) -> list[int]:
    """Claim up to ``batch_size`` rows whose ``wake_at`` has come; the cost follows what is due.

    Rows still ``sending`` after their lease lost their worker. One whose mail was never
    handed over is dispatched again like any other (the claim it lost is given back); one whose
    transport call began becomes ``stalled`` and is dispatched, and the worker decides what
    became of it (see :mod:`orchestrator.delivery.hand_over`).
    """
    due = (
        select(_T.c.id)
        .where(WAKEABLE, _T.c.wake_at <= now)
        .order_by(_T.c.wake_at)
        .limit(batch_size)
    )
    if is_postgres(engine):
        due = due.with_for_update(skip_locked=True)
    with engine.begin() as connection:
        ids = list(connection.execute(due).scalars())
        if not ids:
            return []
        connection.execute(
            update(_T)
            .where(_T.c.id.in_(ids))
            .values(
                state=_case_dispatched(),
                attempts=case((_never_handed(), _T.c.attempts - 1), else_=_T.c.attempts),
                wake_at=now + lease,
                dispatches=_T.c.dispatches + 1,
                updated_at=now,
            )
        )
    return ids


def _case_dispatched() -> object:
    """Pending and dispatched rows become dispatched, and so does an expired ``sending`` row
    whose mail was never handed over; an expired row whose transport call began (or a
    ``stalled`` one whose message was lost again) becomes ``stalled``."""
    return case(
        (_never_handed(), SendState.DISPATCHED.value),
        (
            _T.c.state.in_([SendState.SENDING.value, SendState.STALLED.value]),
            SendState.STALLED.value,
        ),
        else_=SendState.DISPATCHED.value,
    )


def _never_handed() -> ColumnElement[bool]:
    """A ``sending`` row whose claim has no attempt: its worker died before the hand-over."""
    return (_T.c.state == SendState.SENDING.value) & ~began(_T.c.id, _T.c.attempts)


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
            dispatcher.dispatch(ids)
            total += len(ids)
        if len(ids) < batch_size:
            break
    return total


def next_wake_at(engine: Engine) -> datetime | None:
    """The earliest time any row wants attention: lets an idle scheduler report its lag."""
    query = select(_T.c.wake_at).where(WAKEABLE).order_by(_T.c.wake_at).limit(1)
    with engine.connect() as connection:
        return connection.execute(query).scalar()


def run_scheduler(
    engine: Engine,
    dispatcher: Dispatcher,
    clock_now: Callable[[], datetime],
    interval: float,
    batch_size: int,
    lease: timedelta,
    stop: threading.Event,
    periodic: Sequence[Callable[[datetime], object]] = (),
) -> None:
    """Tick every ``interval`` seconds until ``stop`` is set; a failed tick is logged, not fatal.

    ``periodic`` jobs are offered the time once a minute; each decides whether it is due (see
    :mod:`orchestrator.scheduling.periodic`), so the tick itself stays what is due and nothing else.
    """
    log.info("scheduler started (interval %.1fs, batch %d)", interval, batch_size)
    next_periodic = clock_now()
    while not stop.is_set():
        try:
            count = tick(engine, dispatcher, clock_now(), batch_size, lease)
            if count:
                log.info("dispatched %d due sends", count)
        except Exception:
            log.exception("scheduler tick failed; retrying next interval")
        if periodic and clock_now() >= next_periodic:
            next_periodic = clock_now() + PERIODIC_EVERY
            _run_periodic(periodic, clock_now())
        stop.wait(interval)
    log.info("scheduler stopped")


PERIODIC_EVERY = timedelta(minutes=1)


def _run_periodic(jobs: Sequence[Callable[[datetime], object]], now: datetime) -> None:
    for job in jobs:
        try:
            job(now)
        except Exception:
            log.exception("periodic job failed; it is offered again in a minute")
