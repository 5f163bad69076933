"""What an event's ``data`` says about a send, a customer or an enrollment: ids the integrator
knows (their customer id, our send and task ids, journey and step), never an address. Read
only when an endpoint subscribes (:func:`orchestrator.webhooks.outbox.emit` calls these
lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from orchestrator.db.tables import customers, enrollments, scheduled_sends

_S, _C = scheduled_sends, customers


def send_data(
    connection: Connection | Session, send_ids: Sequence[int]
) -> dict[int, dict[str, Any]]:
    rows = connection.execute(
        select(
            _S.c.id,
            _S.c.journey_id,
            _S.c.step_id,
            _S.c.provider_message_id,
            _C.c.external_id,
        )
        .join(_C, _C.c.id == _S.c.customer_id)
        .where(_S.c.id.in_(list(send_ids)))
    )
    return {
        row.id: {
            "send_id": row.id,
            "customer_id": row.external_id,
            "journey": row.journey_id,
            "step": row.step_id,
            "provider_message_id": row.provider_message_id,
        }
        for row in rows
    }


def customer_ref(connection: Connection | Session, customer_id: int) -> str | None:
    """The integrator's id for our customer row."""
    value = connection.execute(
        select(_C.c.external_id).where(_C.c.id == customer_id)
    ).scalar_one_or_none()
    return None if value is None else str(value)


def enrollment_data(connection: Connection | Session, enrollment_id: int) -> dict[str, Any]:
    row = connection.execute(
        select(enrollments.c.journey_id, _C.c.external_id)
        .join(_C, _C.c.id == enrollments.c.customer_id)
        .where(enrollments.c.id == enrollment_id)
    ).one()
    return {
        "enrollment_id": enrollment_id,
        "journey": row.journey_id,
        "customer_id": row.external_id,
    }
