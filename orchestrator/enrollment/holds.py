"""An operator holds an enrollment, lets it go on, or ends it; a failed step is tried again.

Held rows are not lost. Pausing moves the enrollment to ``paused`` and its rows still to go
(``pending``, ``dispatched``) to ``paused``: the scheduler's partial index leaves them out, and
a message already on its way finds nothing to take. A row in a worker's hands at that moment
goes out (or is paused by ``decide`` if it comes back). Events keep working on a paused
enrollment: a goal still converts it, an exit still ends it, and steps they schedule are
paused when they come due.

Resuming moves every paused row later by exactly the time the enrollment was held (its due
time and any deferral), so the journey keeps its rhythm: the next mail comes as
long after the last one as it would have, nothing is sent in a burst, and no step becomes
``missed`` because of the hold. A row that was already late when paused is as late again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update

from orchestrator.db.tables import enrollments, scheduled_sends
from orchestrator.enrollment.store import end_enrollment
from orchestrator.journeys.states import SendState

_ENROLLMENTS = enrollments
_SENDS = scheduled_sends
ENDED_BY_OPERATOR = "ended"


@dataclass(frozen=True)
class HeldEnrollment:
    id: int
    customer_id: int
    journey_id: str
    state: str
    paused_at: datetime | None


def lock_enrollment(connection: Connection, enrollment_id: int) -> HeldEnrollment | None:
    """The enrollment, locked for this transaction (PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
    already serialises writers)."""
    row = connection.execute(
        select(
            _ENROLLMENTS.c.id,
            _ENROLLMENTS.c.customer_id,
            _ENROLLMENTS.c.journey_id,
            _ENROLLMENTS.c.state,
            _ENROLLMENTS.c.paused_at,
        )
        .where(_ENROLLMENTS.c.id == enrollment_id)
        .with_for_update()
    ).first()
    if row is None:
        return None
    return HeldEnrollment(row.id, row.customer_id, row.journey_id, row.state, row.paused_at)


def pause(connection: Connection, enrollment_id: int, reason: str, now: datetime) -> int:
    """Hold an active enrollment; returns how many rows were held."""
    connection.execute(
        update(_ENROLLMENTS)
        .where(_ENROLLMENTS.c.id == enrollment_id, _ENROLLMENTS.c.state == "active")
        .values(state="paused", paused_at=now)
    )
    held = connection.execute(
        update(_SENDS)
        .where(
            _SENDS.c.enrollment_id == enrollment_id,
            _SENDS.c.state.in_([SendState.PENDING.value, SendState.DISPATCHED.value]),
        )
        .values(state=SendState.PAUSED.value, reason=reason[:1000], updated_at=now)
    )
    return int(held.rowcount)


def resume(
    connection: Connection, enrollment: HeldEnrollment, reason: str, now: datetime
) -> tuple[int, timedelta]:
    """Let a paused enrollment go on: its held rows become ``pending``, each moved later by the
    time it was held. Returns how many rows, and by how much."""
    shift = max(now - (enrollment.paused_at or now), timedelta(0))
    rows = connection.execute(
        select(_SENDS.c.id, _SENDS.c.due_at, _SENDS.c.held_until).where(
            _SENDS.c.enrollment_id == enrollment.id, _SENDS.c.state == SendState.PAUSED.value
        )
    ).all()
    for row in rows:  # a handful per enrollment: one step each
        connection.execute(
            update(_SENDS)
            .where(_SENDS.c.id == row.id, _SENDS.c.state == SendState.PAUSED.value)
            .values(
                state=SendState.PENDING.value,
                due_at=row.due_at + shift,
                # From when it was due (or deferred to); a paused row's wake time may be a
                # lapsed worker lease.
                wake_at=(row.held_until or row.due_at) + shift,
                held_until=None if row.held_until is None else row.held_until + shift,
                reason=reason[:1000],
                updated_at=now,
            )
        )
    connection.execute(
        update(_ENROLLMENTS)
        .where(_ENROLLMENTS.c.id == enrollment.id, _ENROLLMENTS.c.state == "paused")
        .values(state="active", paused_at=None)
    )
    return len(rows), shift


def end(connection: Connection, enrollment_id: int, reason: str, now: datetime) -> None:
    """End the enrollment (``ended``) and cancel every step not yet sent, held ones included."""
    end_enrollment(connection, enrollment_id, ENDED_BY_OPERATOR, reason, now)


def retry_failed(connection: Connection, send_id: int, reason: str, now: datetime) -> bool:
    """A failed row goes back to ``pending``, due now; its grace counts from now (``held_until``)
    so an old step is not ``missed`` on the way. Its attempt count stays: attempt numbers are
    how a crash is told apart from a mail that never left (:mod:`orchestrator.hand_over`)."""
    result = connection.execute(
        update(_SENDS)
        .where(_SENDS.c.id == send_id, _SENDS.c.state == SendState.FAILED.value)
        .values(
            state=SendState.PENDING.value,
            wake_at=now,
            held_until=now,
            reason=reason[:1000],
            updated_at=now,
        )
    )
    return bool(result.rowcount)
