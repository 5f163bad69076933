"""A customer's lifecycle stage as stored (see :mod:`orchestrator.health.lifecycle`): every move
updates the customer row and adds a ``customer_stage_history`` row, inside the caller's
transaction, and returns the ``stage_changed`` event row the caller stores and reacts to (so
journeys can be entered on a stage: ``trigger: {event: stage_changed, properties: {to: x}}``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from orchestrator.db.tables import customer_stage_history, customers

STAGE_CHANGED = "stage_changed"
_H = customer_stage_history


@dataclass(frozen=True)
class StageEntry:
    stage: str
    previous: str | None
    source: str
    reason: str
    changed_at: datetime


def move_stage(
    connection: Connection,
    customer_id: int,
    previous: str | None,
    stage: str,
    source: str,
    reason: str,
    now: datetime,
) -> dict[str, Any]:
    """Record the move; the ``stage_changed`` event row to store (its key is the history row)."""
    connection.execute(
        update(customers)
        .where(customers.c.id == customer_id)
        .values(stage=stage, stage_source=source, stage_changed_at=now)
    )
    entry_id = record_stage_history(connection, customer_id, previous, stage, source, reason, now)
    return {
        "customer_id": customer_id,
        "name": STAGE_CHANGED,
        "event_key": f"stage:{entry_id}",
        "occurred_at": now,
        "received_at": now,
        "properties": {"from": previous, "to": stage, "source": source},
    }


def first_stage_values(stage: str, now: datetime) -> dict[str, Any]:
    """The customer columns of the stage a new customer starts in, for the insert that creates
    them (its history row is :func:`record_stage_history`'s): one statement less per signup
    than moving a stored customer."""
    return {"stage": stage, "stage_source": "signup", "stage_changed_at": now}


def record_stage_history(
    connection: Connection,
    customer_id: int,
    previous: str | None,
    stage: str,
    source: str,
    reason: str,
    now: datetime,
) -> int:
    """The history row of a move (its id keys the ``stage_changed`` event)."""
    entry_id: int = connection.execute(
        _INSERT_HISTORY,
        {
            "customer_id": customer_id,
            "stage": stage,
            "previous": previous,
            "source": source,
            "reason": reason[:500],
            "changed_at": now,
        },
    ).scalar_one()
    return entry_id


_INSERT_HISTORY = insert(_H).returning(_H.c.id)  # built once
_INSERT_HISTORIES = insert(_H)


def record_first_stages(
    connection: Connection, customer_ids: Sequence[int], stage: str, now: datetime
) -> None:
    """The history rows of new customers starting in ``stage`` at signup, in one statement
    (what :func:`record_stage_history` writes for one)."""
    rows = [
        {
            "customer_id": customer_id,
            "stage": stage,
            "previous": None,
            "source": "signup",
            "reason": "signup",
            "changed_at": now,
        }
        for customer_id in customer_ids
    ]
    if rows:
        connection.execute(_INSERT_HISTORIES, rows)


def stage_history(connection: Connection, customer_id: int, limit: int = 20) -> list[StageEntry]:
    """The customer's moves, latest first."""
    query = (
        select(_H)
        .where(_H.c.customer_id == customer_id)
        .order_by(_H.c.changed_at.desc(), _H.c.id.desc())
        .limit(limit)
    )
    return [
        StageEntry(r.stage, r.previous, r.source, r.reason, r.changed_at)
        for r in connection.execute(query)
    ]
