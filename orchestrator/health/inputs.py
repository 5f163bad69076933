"""The raw inputs of many customers' scores, one grouped query per component.

Every query is bounded by ``customer_id IN (...)`` and the event name, so it walks the
``usage_event (customer_id, name, occurred_at)`` index for just those customers: the cost
follows the customers being scored, never the size of the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from orchestrator.db.tables import usage_events
from orchestrator.health.model import Adoption, Frequency, HealthDefinition, Latest, Penalty

_E = usage_events


def load_inputs(
    connection: Connection, definition: HealthDefinition, customer_ids: Sequence[int], now: datetime
) -> dict[int, dict[str, Any]]:
    """customer id → component id → raw input, for :func:`orchestrator.health.score.score`."""
    inputs: dict[int, dict[str, Any]] = {cid: {} for cid in customer_ids}
    if not customer_ids:
        return inputs
    for component in definition.components:
        if isinstance(component, Frequency | Penalty):
            found = _counts(connection, customer_ids, component.event, now - component.within, now)
        elif isinstance(component, Adoption):
            found = _seen(connection, customer_ids, component.events, now)
        else:
            assert isinstance(component, Latest)
            found = _latest(connection, customer_ids, component.event, component.property, now)
        for customer_id, raw in found.items():
            inputs[customer_id][component.id] = raw
    return inputs


def _counts(
    connection: Connection, ids: Sequence[int], name: str, since: datetime, now: datetime
) -> dict[int, Any]:
    query = (
        select(_E.c.customer_id, func.count())
        .where(
            _E.c.customer_id.in_(ids),
            _E.c.name == name,
            _E.c.occurred_at > since,
            _E.c.occurred_at <= now,
        )
        .group_by(_E.c.customer_id)
    )
    return {cid: count for cid, count in connection.execute(query)}


def _seen(
    connection: Connection, ids: Sequence[int], names: Sequence[str], now: datetime
) -> dict[int, Any]:
    query = (
        select(_E.c.customer_id, _E.c.name)
        .where(_E.c.customer_id.in_(ids), _E.c.name.in_(names), _E.c.occurred_at <= now)
        .distinct()
    )
    seen: dict[int, Any] = {}
    for cid, name in connection.execute(query):
        seen.setdefault(cid, set()).add(name)
    return seen


def _latest(
    connection: Connection, ids: Sequence[int], name: str, key: str, now: datetime
) -> dict[int, Any]:
    ranked = (
        select(
            _E.c.customer_id,
            _E.c.properties,
            func.row_number()
            .over(partition_by=_E.c.customer_id, order_by=(_E.c.occurred_at.desc(), _E.c.id.desc()))
            .label("rank"),
        )
        .where(_E.c.customer_id.in_(ids), _E.c.name == name, _E.c.occurred_at <= now)
        .subquery()
    )
    query = select(ranked.c.customer_id, ranked.c.properties).where(ranked.c.rank == 1)
    return {cid: (props or {}).get(key) for cid, props in connection.execute(query)}
