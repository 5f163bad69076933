"""The relationship columns of a stored customer (see
:mod:`orchestrator.customers.relationship`), read and written inside the caller's transaction:
a cancellation and a reactivation, the first exit from a signup journey, the latest goal."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, select, update

from orchestrator.customers.relationship import Relationship
from orchestrator.db.tables import customers

_C = customers


def relationships(connection: Connection, customer_ids: Iterable[int]) -> dict[int, Relationship]:
    """Customer id → their relationship, as the store has it now."""
    ids = list(set(customer_ids))
    if not ids:
        return {}
    query = select(_C.c.id, _C.c.cancelled_at, _C.c.exited_at, _C.c.converted_at).where(
        _C.c.id.in_(ids)
    )
    return {
        row.id: Relationship(row.cancelled_at, row.exited_at, row.converted_at)
        for row in connection.execute(query)
    }


def record_cancelled(connection: Connection, customer_id: int, at: datetime) -> None:
    """The subscription ended (the first cancellation's moment is kept)."""
    connection.execute(
        update(_C)
        .where(_C.c.id == customer_id, _C.c.cancelled_at.is_(None))
        .values(cancelled_at=at)
    )


def record_reactivated(connection: Connection, customer_id: int) -> None:
    """The subscription started again: the relationship no longer counts as ended."""
    connection.execute(
        update(_C).where(_C.c.id == customer_id).values(cancelled_at=None, exited_at=None)
    )


def record_exited(connection: Connection, customer_id: int, at: datetime) -> None:
    connection.execute(
        update(_C).where(_C.c.id == customer_id, _C.c.exited_at.is_(None)).values(exited_at=at)
    )


def record_converted(connection: Connection, customer_id: int, at: datetime) -> None:
    connection.execute(update(_C).where(_C.c.id == customer_id).values(converted_at=at))
