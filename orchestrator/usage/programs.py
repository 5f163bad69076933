"""Registrations for a webinar or group session (journeys/programs.yaml), inside the caller's
transaction under the customer's lock: one ``program_registration`` per customer and session,
and one conditional UPDATE of ``program_seats`` keeps the session within its capacity even
when many customers register at once. A new registration is a ``program_registered`` event."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from orchestrator.db.tables import program_registrations, program_seats
from orchestrator.db.upsert import insert_ignoring_conflicts
from orchestrator.usage.events import NewEvent, store_new_events

Registration = Literal["registered", "already", "full"]
_R = program_registrations
_S = program_seats


def register(
    session: Session, customer_id: int, program_id: str, capacity: int, now: datetime
) -> tuple[Registration, list[NewEvent]]:
    connection = session.connection()
    already = connection.execute(
        select(_R.c.id).where(_R.c.customer_id == customer_id, _R.c.program_id == program_id)
    ).first()
    if already is not None:
        return "already", []
    insert_ignoring_conflicts(session, _S, [{"program_id": program_id, "taken": 0}], ["program_id"])
    seat = connection.execute(
        update(_S)
        .where(_S.c.program_id == program_id, _S.c.taken < capacity)
        .values(taken=_S.c.taken + 1)
    )
    if not seat.rowcount:
        return "full", []
    insert_ignoring_conflicts(
        session,
        _R,
        [{"program_id": program_id, "customer_id": customer_id, "registered_at": now}],
        ["program_id", "customer_id"],
    )
    event = {
        "customer_id": customer_id,
        "name": "program_registered",
        "event_key": f"program:{program_id}",
        "occurred_at": now,
        "received_at": now,
        "properties": {"program": program_id},
    }
    return "registered", store_new_events(session, [event])
