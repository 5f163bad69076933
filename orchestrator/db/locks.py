"""Row locks that make one customer's writers take turns, inside the caller's transaction.

PostgreSQL: ``SELECT … FOR UPDATE`` on the customer rows, in id order so two transactions
cannot deadlock. SQLite needs nothing: its transactions begin with ``BEGIN IMMEDIATE``,
which already serialises writers.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select

from orchestrator.db.tables import customers


def lock_customers(connection: Connection, customer_ids: Sequence[int]) -> None:
    """One writer per customer at a time, for these customers."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            select(customers.c.id)
            .where(customers.c.id.in_(list(customer_ids)))
            .order_by(customers.c.id)
            .with_for_update()
        ).all()
