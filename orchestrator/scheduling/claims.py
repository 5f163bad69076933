"""Claiming due rows, inside the scheduler's transaction: the rows whose ``wake_at`` has come
move to ``dispatched`` with a lease, in one ``SELECT … FOR UPDATE SKIP LOCKED`` and one
``UPDATE``; the cost follows what is due, through the partial index on ``wake_at``.

Rows still ``sending`` after their lease lost their worker. One whose mail was never handed
over is dispatched again like any other (the claim it lost is given back); one whose
transport call began becomes ``stalled`` and is dispatched, and the worker decides what
became of it (see :mod:`orchestrator.delivery.hand_over`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, case, select, text, update

from orchestrator.db.models import WAKEABLE_SQL
from orchestrator.db.tables import scheduled_sends
from orchestrator.delivery.hand_over import began
from orchestrator.journeys.states import SendState

_T = scheduled_sends
# Literal SQL, identical to the partial index's predicate, so the planner always uses the index.
WAKEABLE = text(WAKEABLE_SQL)


def claim_rows(
    connection: Connection, now: datetime, batch_size: int, lease: timedelta
) -> list[int]:
    """Up to ``batch_size`` due rows, now ``dispatched`` (or ``stalled``) with a lease."""
    due = (
        select(_T.c.id)
        .where(WAKEABLE, _T.c.wake_at <= now)
        .order_by(_T.c.wake_at)
        .limit(batch_size)
    )
    if connection.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
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


def earliest_wake(connection: Connection) -> datetime | None:
    """The earliest time any row wants attention."""
    query = select(_T.c.wake_at).where(WAKEABLE).order_by(_T.c.wake_at).limit(1)
    return connection.execute(query).scalar()


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
