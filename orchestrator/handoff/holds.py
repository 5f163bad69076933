"""Mails held while a human is in charge: a journey's scheduled send whose customer has an open
CSM task of a kind the journey names (``hold_while_task``, default ``at_risk``) is ``held``,
with a ``send_hold`` row naming the task. ``held`` is not a state the scheduler reads, so a
held mail costs nothing while it waits. Closing the task ends its holds: each mail goes back
to ``pending`` (due now; the journey's grace counts from the release) or is cancelled, as its
journey's ``on_task_closed`` says. Everything runs in the caller's transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from orchestrator.db.tables import scheduled_sends, send_holds
from orchestrator.journeys.model import Journey
from orchestrator.journeys.states import SendState

log = logging.getLogger(__name__)
_SENDS = scheduled_sends
_HOLDS = send_holds


def hold_send(
    connection: Connection,
    send_id: int,
    customer_id: int,
    task_id: int,
    reason: str,
    now: datetime,
) -> None:
    """Hold the row (only while it is still this worker's ``sending`` claim) for ``task_id``."""
    held = connection.execute(
        update(_SENDS)
        .where(_SENDS.c.id == send_id, _SENDS.c.state == SendState.SENDING.value)
        .values(state=SendState.HELD.value, reason=reason[:1000], updated_at=now)
    )
    if held.rowcount:
        connection.execute(
            insert(_HOLDS).values(
                scheduled_send_id=send_id, customer_id=customer_id, task_id=task_id, held_at=now
            )
        )


def end_holds(
    connection: Connection,
    task_id: int,
    journeys: Mapping[str, Journey],
    now: datetime,
) -> dict[str, int]:
    """The task closed: release or cancel every mail it held; returns how many of each."""
    rows = connection.execute(
        select(_HOLDS.c.id, _SENDS.c.id.label("send_id"), _SENDS.c.journey_id, _SENDS.c.state)
        .join(_SENDS, _SENDS.c.id == _HOLDS.c.scheduled_send_id)
        .where(_HOLDS.c.task_id == task_id, _HOLDS.c.ended_at.is_(None))
    ).all()
    counts = {"released": 0, "cancelled": 0}
    for row in rows:
        journey = journeys.get(row.journey_id)
        outcome = "cancelled" if journey and journey.on_task_closed == "cancel" else "released"
        if row.state == SendState.HELD.value:
            _end_one(connection, row.send_id, task_id, outcome, now)
            counts[outcome] += 1
        connection.execute(
            update(_HOLDS).where(_HOLDS.c.id == row.id).values(ended_at=now, outcome=outcome)
        )
    if rows:
        log.info("task %d closed: %s", task_id, counts)
    return counts


def _end_one(
    connection: Connection, send_id: int, task_id: int, outcome: str, now: datetime
) -> None:
    values: dict[str, object]
    if outcome == "cancelled":
        values = {
            "state": SendState.CANCELLED.value,
            "reason": f"held for CSM task #{task_id}, cancelled when it closed",
        }
    else:  # due now; held_until makes the grace count from the release, not from due_at
        values = {
            "state": SendState.PENDING.value,
            "wake_at": now,
            "held_until": now,
            "reason": f"released: CSM task #{task_id} closed",
        }
    connection.execute(
        update(_SENDS)
        .where(_SENDS.c.id == send_id, _SENDS.c.state == SendState.HELD.value)
        .values(**values, updated_at=now)
    )


@dataclass(frozen=True)
class HoldLine:
    """A mail held for a task, as the console shows it."""

    send_id: int
    journey_id: str
    step_id: str
    task_id: int
    held_at: datetime
    ended_at: datetime | None
    outcome: str | None


def holds_of(connection: Connection, customer_id: int, limit: int = 20) -> list[HoldLine]:
    """The customer's holds, the ones still waiting first, then the latest."""
    query = (
        select(
            _HOLDS.c.scheduled_send_id,
            _SENDS.c.journey_id,
            _SENDS.c.step_id,
            _HOLDS.c.task_id,
            _HOLDS.c.held_at,
            _HOLDS.c.ended_at,
            _HOLDS.c.outcome,
        )
        .join(_SENDS, _SENDS.c.id == _HOLDS.c.scheduled_send_id)
        .where(_HOLDS.c.customer_id == customer_id)
        .order_by(_HOLDS.c.ended_at.is_not(None), _HOLDS.c.held_at.desc(), _HOLDS.c.id.desc())
        .limit(limit)
    )
    return [HoldLine(*row) for row in connection.execute(query)]
