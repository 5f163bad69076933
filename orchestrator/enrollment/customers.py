"""A stored customer, read and changed inside the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, update

from orchestrator.db.tables import customers
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
