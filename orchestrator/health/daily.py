"""The daily recompute: only customers whose score can have changed since the last run.

A score moves with time only when a windowed event (logins in 14 days, tickets in 30 days)
enters or leaves its window. So the candidates are the customers with such an event whose
``occurred_at`` lies in ``(since - window, until - window]`` (left a window) or in
``(since, until]`` (entered one, e.g. a future-dated event). Each slice is a range scan of
the ``usage_event (occurred_at)`` index: the work follows the events that moved, not the
number of customers.

One more group: the customers whose first ``actions_after`` days end in the window, a range
scan of ``customer (signed_up_at)``. Band actions wait for those days, so this is when a
customer who never used the product (no event ever moves their score) is first scored with
actions allowed: at risk, a CSM is pulled in. Without it they would never be looked at.

The scheduler runs this once a day (``orchestrator.services.health``); by hand it is
``stepmail health daily``, with ``--since`` the last successful run after an outage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, select

from orchestrator.db.tables import customers, usage_events
from orchestrator.health.model import HealthDefinition

_E = usage_events
_C = customers


@dataclass
class DailyReport:
    rows_examined: int = 0  # usage_event rows read from the index slices
    candidates: int = 0  # customers whose score can have changed, or who may now be acted on
    newly_actionable: int = 0  # of them, customers whose first actions_after days just ended
    task_ids: list[int] = field(default_factory=list)


def changed_customers(
    connection: Connection, definition: HealthDefinition, since: datetime, until: datetime
) -> tuple[set[int], int]:
    """Customers with a windowed event that entered or left its window; and rows examined."""
    slices: dict[tuple[datetime, datetime], set[str]] = {}
    for window, names in definition.windows().items():
        for lo, hi in ((since - window, until - window), (since, until)):
            slices.setdefault((lo, hi), set()).update(set(names))
    found: set[int] = set()
    examined = 0
    for (lo, hi), wanted in slices.items():
        query = select(_E.c.customer_id, _E.c.name).where(
            _E.c.occurred_at > lo, _E.c.occurred_at <= hi
        )
        for customer_id, name in connection.execute(query):
            examined += 1
            if name in wanted:
                found.add(customer_id)
    return found, examined


def newly_actionable(
    connection: Connection, definition: HealthDefinition, since: datetime, until: datetime
) -> set[int]:
    """Customers whose first ``actions_after`` days (no band actions) end in ``(since, until]``."""
    lo, hi = since - definition.actions_after, until - definition.actions_after
    query = select(_C.c.id).where(_C.c.signed_up_at > lo, _C.c.signed_up_at <= hi)
    return set(connection.execute(query).scalars())
