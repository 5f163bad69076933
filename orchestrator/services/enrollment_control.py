"""An operator's hand on a customer's journeys: pause, resume or end an enrollment, re-send a
failed step. Each is one transaction with its audit row (see :mod:`orchestrator.enrollment_holds`
for what pausing and resuming do to the schedule)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, select

from orchestrator.audit.log import Actor, record
from orchestrator.clock import Clock
from orchestrator.db.tables import scheduled_sends
from orchestrator.enrollment import holds
from orchestrator.enrollment.holds import HeldEnrollment
from orchestrator.errors import (
    EnrollmentNotFound,
    EnrollmentStateConflict,
    SendNotFailed,
    SendNotFound,
)


@dataclass(frozen=True)
class EnrollmentChanged:
    enrollment_id: int
    customer_id: int
    state: str
    rows: int = 0  # how many schedule rows the change held, released or cancelled


def pause_enrollment(
    engine: Engine, enrollment_id: int, *, actor: Actor, clock: Clock
) -> EnrollmentChanged:
    now = clock.now()
    with engine.begin() as connection:
        enrollment = _locked(connection, enrollment_id, "active", "pause")
        rows = holds.pause(connection, enrollment.id, f"paused by {actor.name}", now)
        record(
            connection,
            actor,
            "enrollment.pause",
            ("enrollment", enrollment.id),
            now,
            journey=enrollment.journey_id,
            customer_id=enrollment.customer_id,
            rows=rows,
        )
    return EnrollmentChanged(enrollment.id, enrollment.customer_id, "paused", rows)


def resume_enrollment(
    engine: Engine, enrollment_id: int, *, actor: Actor, clock: Clock
) -> EnrollmentChanged:
    now = clock.now()
    with engine.begin() as connection:
        enrollment = _locked(connection, enrollment_id, "paused", "resume")
        rows, shift = holds.resume(connection, enrollment, f"resumed by {actor.name}", now)
        record(
            connection,
            actor,
            "enrollment.resume",
            ("enrollment", enrollment.id),
            now,
            journey=enrollment.journey_id,
            customer_id=enrollment.customer_id,
            rows=rows,
            moved_later_seconds=int(shift.total_seconds()),
        )
    return EnrollmentChanged(enrollment.id, enrollment.customer_id, "active", rows)


def end_enrollment(
    engine: Engine, enrollment_id: int, *, actor: Actor, clock: Clock
) -> EnrollmentChanged:
    now = clock.now()
    with engine.begin() as connection:
        enrollment = _locked(connection, enrollment_id, ("active", "paused"), "end")
        holds.end(connection, enrollment.id, f"ended by {actor.name}", now)
        record(
            connection,
            actor,
            "enrollment.end",
            ("enrollment", enrollment.id),
            now,
            journey=enrollment.journey_id,
            customer_id=enrollment.customer_id,
            was=enrollment.state,
        )
    return EnrollmentChanged(enrollment.id, enrollment.customer_id, holds.ENDED_BY_OPERATOR)


def resend_failed_step(
    engine: Engine, send_id: int, *, actor: Actor, clock: Clock
) -> EnrollmentChanged:
    """The failed send goes back to ``pending``, due now: the next scheduler tick sends it,
    with every check (enrollment, suppression, conditions) made again at send time."""
    now = clock.now()
    sends = scheduled_sends
    with engine.begin() as connection:
        row = connection.execute(
            select(
                sends.c.enrollment_id,
                sends.c.customer_id,
                sends.c.journey_id,
                sends.c.step_id,
                sends.c.state,
            ).where(sends.c.id == send_id)
        ).first()
        if row is None:
            raise SendNotFound(f"no send {send_id}")
        if not holds.retry_failed(connection, send_id, f"re-send requested by {actor.name}", now):
            raise SendNotFailed(f"send {send_id} is {row.state}, not failed: nothing to re-send")
        record(
            connection,
            actor,
            "send.resend",
            ("send", send_id),
            now,
            journey=row.journey_id,
            step=row.step_id,
            customer_id=row.customer_id,
        )
    return EnrollmentChanged(row.enrollment_id, row.customer_id, "pending", 1)


def _locked(
    connection: Connection, enrollment_id: int, states: str | tuple[str, ...], verb: str
) -> HeldEnrollment:
    enrollment = holds.lock_enrollment(connection, enrollment_id)
    if enrollment is None:
        raise EnrollmentNotFound(f"no enrollment {enrollment_id}")
    allowed = (states,) if isinstance(states, str) else states
    if enrollment.state not in allowed:
        raise EnrollmentStateConflict(
            f"enrollment {enrollment_id} is {enrollment.state}: cannot {verb} it"
        )
    return enrollment
