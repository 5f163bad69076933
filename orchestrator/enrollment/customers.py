"""A stored customer, read and changed inside the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from orchestrator.db.tables import customers, enrollments
from orchestrator.errors import CustomerNotFound


def customer_row(connection: Connection, external_id: str) -> Any:
    """The customer's row; CustomerNotFound when there is none."""
    row = connection.execute(
        select(customers).where(customers.c.external_id == external_id)
    ).first()
    if row is None:
        raise CustomerNotFound(f"no customer with external_id {external_id!r}")
    return row


def update_customer_row(connection: Connection, customer_id: int, values: dict[str, Any]) -> None:
    connection.execute(update(customers).where(customers.c.id == customer_id).values(**values))


@dataclass(frozen=True)
class EnrollmentSummary:
    state: str
    anchor_at: datetime


def latest_enrollment(
    connection: Connection, customer_id: int, journey_id: str
) -> EnrollmentSummary | None:
    """The customer's latest entry into the journey (its state and anchor), or None."""
    row = connection.execute(
        select(enrollments.c.state, enrollments.c.anchor_at)
        .where(enrollments.c.customer_id == customer_id, enrollments.c.journey_id == journey_id)
        .order_by(enrollments.c.anchor_at.desc(), enrollments.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else EnrollmentSummary(row.state, row.anchor_at)
