"""A customer's latest events, for the console's customer page: the last few of any name (the
timeline) and the last few of one name (the tier's changes).

No index orders one customer's events by their moment alone: ``usage_event`` has ``(customer_id,
name, occurred_at)`` and ``(customer_id, event_key)``. Ordered by moment and id, PostgreSQL's
plan either sorts every event the customer ever sent or walks the ``occurred_at`` index, through
every other customer's newer events, back to this one's: 530-630 ms for a customer whose events
are a year old beneath 630,000 newer ones (bench/recent_probe.py; the shipped form 1.7-3.2 ms
for any customer, the old one 1.2 for most). On PostgreSQL the names the customer used are found
by skipping through the first index (one descent a name), each name's latest are read from the
end of its range, and the latest of those are kept: the rows read are at most the names times
the page's length, however long the history. SQLite, the embedded database of small
installations, keeps the plain query (it has no ``LATERAL``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, text

from orchestrator.db.planning import PLAN_EACH_TIME
from orchestrator.db.tables import usage_events

_E = usage_events


@dataclass(frozen=True)
class RecentEvent:
    name: str
    occurred_at: datetime
    properties: dict[str, Any]


def recent_events(connection: Connection, customer_id: int, limit: int) -> list[RecentEvent]:
    """The customer's last ``limit`` events, latest first (the later stored first on a tie)."""
    if connection.dialect.name == "postgresql":
        query: Any = _RECENT_BY_NAME.bindparams(customer_id=customer_id, limit=limit)
    else:
        query = (
            select(_E.c.name, _E.c.occurred_at, _E.c.properties)
            .where(_E.c.customer_id == customer_id)
            .order_by(_E.c.occurred_at.desc(), _E.c.id.desc())
            .limit(limit)
        )
    return _read(connection, query)


def recent_events_named(
    connection: Connection, customer_id: int, name: str, limit: int
) -> list[RecentEvent]:
    """The customer's last ``limit`` events of ``name``, latest first: one range of the index
    read from its end on either database."""
    query = (
        select(_E.c.name, _E.c.occurred_at, _E.c.properties)
        .where(_E.c.customer_id == customer_id, _E.c.name == name)
        .order_by(_E.c.occurred_at.desc(), _E.c.id.desc())
        .limit(limit)
    )
    return _read(connection, query)


def _read(connection: Connection, query: Any) -> list[RecentEvent]:
    rows = connection.execute(query.execution_options(**PLAN_EACH_TIME))
    return [RecentEvent(r.name, r.occurred_at, dict(r.properties or {})) for r in rows]


# The names by a recursive skip (each the least name above the last), then each name's latest
# ``limit`` with every event tied at the last moment kept, so the final order by moment and id
# picks the same rows as the plain query would.
_RECENT_BY_NAME = (
    text(
        """WITH RECURSIVE names(name) AS (
    (SELECT e.name FROM usage_event AS e WHERE e.customer_id = :customer_id
        ORDER BY e.name LIMIT 1)
    UNION ALL
    SELECT (SELECT e.name FROM usage_event AS e
            WHERE e.customer_id = :customer_id AND e.name > n.name ORDER BY e.name LIMIT 1)
        FROM names AS n WHERE n.name IS NOT NULL
)
SELECT t.name, t.occurred_at, t.properties FROM names AS n CROSS JOIN LATERAL (
    SELECT e.id, e.name, e.occurred_at, e.properties FROM usage_event AS e
    WHERE e.customer_id = :customer_id AND e.name = n.name
    ORDER BY e.occurred_at DESC FETCH FIRST (:limit) ROWS WITH TIES
) AS t
ORDER BY t.occurred_at DESC, t.id DESC LIMIT :limit"""
    )
    .bindparams(bindparam("customer_id"), bindparam("limit"))
    .columns(_E.c.name, _E.c.occurred_at, _E.c.properties)
)
