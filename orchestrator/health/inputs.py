"""The raw inputs of many customers' scores, in one round trip.

Each component is one ``SELECT`` bounded by ``customer_id`` and the event name, so it walks
the ``usage_event (customer_id, name, occurred_at)`` index for just those customers: the cost
follows the customers being scored, never the size of the table. The components' selects are
joined with ``UNION ALL`` into one statement (a row says which component it answers), so
scoring one customer costs one round trip, not one per component.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Select,
    String,
    any_,
    bindparam,
    cast,
    func,
    literal,
    literal_column,
    null,
    select,
    true,
    type_coerce,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY

from orchestrator.db.tables import usage_events
from orchestrator.health.model import Adoption, Frequency, HealthDefinition, Latest, Penalty

_E = usage_events
_JSON = _E.c.properties.type


def load_inputs(
    connection: Connection, definition: HealthDefinition, customer_ids: Sequence[int], now: datetime
) -> dict[int, dict[str, Any]]:
    """customer id → component id → raw input, for :func:`orchestrator.health.score.score`."""
    inputs: dict[int, dict[str, Any]] = {cid: {} for cid in customer_ids}
    if not customer_ids or not definition.components:
        return inputs
    params: dict[str, Any] = {"ids": sorted(set(customer_ids)), "now": now}
    for index, component in enumerate(definition.components):
        if isinstance(component, Frequency | Penalty):
            params[f"since_{index}"] = now - component.within
    query = _statement(definition, connection.dialect.name)
    for index, customer_id, count, name, properties in connection.execute(query, params).all():
        component = definition.components[index]
        found = inputs[customer_id]
        if isinstance(component, Frequency | Penalty):
            found[component.id] = count
        elif isinstance(component, Adoption):
            found.setdefault(component.id, set()).add(name)
        else:
            assert isinstance(component, Latest)
            found[component.id] = (properties or {}).get(component.property)
    return inputs


# Built once per definition and dialect, with the ids, ``now`` and each window's start as
# parameters: building it per request cost a third of a single event's CPU.
_STATEMENTS: dict[tuple[int, str], tuple[HealthDefinition, Any]] = {}


def _statement(definition: HealthDefinition, dialect: str) -> Any:
    key = (id(definition), dialect)
    cached = _STATEMENTS.get(key)
    if cached is not None and cached[0] is definition:
        return cached[1]
    parts = [
        _component_select(index, component, dialect)
        for index, component in enumerate(definition.components)
    ]
    statement = parts[0] if len(parts) == 1 else union_all(*parts)
    if len(_STATEMENTS) >= 16:  # a few definitions live at once (reloaded when the file changes)
        _STATEMENTS.clear()
    _STATEMENTS[key] = (definition, statement)
    return statement


def _row(
    index: int, customer_id: Any, count: Any = None, name: Any = None, properties: Any = None
) -> list[Any]:
    """The columns every component's select has, typed alike for ``UNION ALL``."""
    return [
        type_coerce(literal(index, literal_execute=True), Integer).label("component"),
        customer_id.label("customer_id"),
        _typed(count, Integer()).label("count"),
        _typed(name, String()).label("name"),
        _typed(properties, _JSON).label("properties"),
    ]


def _typed(value: Any, type_: Any) -> Any:
    """A column of this type, or a NULL cast to it (PostgreSQL types a bare NULL as text)."""
    return cast(null(), type_) if value is None else type_coerce(value, type_)


def _ids(dialect: str) -> Any:
    """The customers, as one array parameter on PostgreSQL (see :mod:`orchestrator.db.values`)."""
    if dialect == "postgresql":
        return _E.c.customer_id == any_(bindparam("ids", type_=ARRAY(Integer)))
    return _E.c.customer_id.in_(bindparam("ids", expanding=True))


def _component_select(index: int, component: Any, dialect: str) -> Select[Any]:
    customer = _ids(dialect)
    now = bindparam("now", type_=_E.c.occurred_at.type)
    if isinstance(component, Frequency | Penalty):
        since = bindparam(f"since_{index}", type_=_E.c.occurred_at.type)
        return (
            select(*_row(index, _E.c.customer_id, count=func.count()))
            .where(
                customer,
                _E.c.name == component.event,
                _E.c.occurred_at > since,
                _E.c.occurred_at <= now,
            )
            .group_by(_E.c.customer_id)
        )
    if isinstance(component, Adoption) and dialect == "postgresql":
        return _adoption_probes(index, component, now)
    if isinstance(component, Latest) and dialect == "postgresql":
        return _latest_probe(index, component, now)
    if isinstance(component, Adoption):
        return (
            select(*_row(index, _E.c.customer_id, name=_E.c.name))
            .where(customer, _E.c.name.in_(component.events), _E.c.occurred_at <= now)
            .group_by(_E.c.customer_id, _E.c.name)  # DISTINCT would compare the json column
        )
    assert isinstance(component, Latest)
    ranked = (
        select(
            _E.c.customer_id,
            _E.c.properties,
            func.row_number()
            .over(partition_by=_E.c.customer_id, order_by=(_E.c.occurred_at.desc(), _E.c.id.desc()))
            .label("rank"),
        )
        .where(customer, _E.c.name == component.event, _E.c.occurred_at <= now)
        .subquery()
    )
    return select(*_row(index, ranked.c.customer_id, properties=ranked.c.properties)).where(
        ranked.c.rank == 1
    )


# PostgreSQL: adoption and "latest" ask one thing per customer (and feature), not a count, so
# each is one probe of the (customer_id, name, occurred_at) index that stops at its first row
# (LATERAL … LIMIT 1), whatever the customer's history. The selects above read every event of
# those names a customer ever sent: ~60 and ~35 ms per 1,000 customers with 300 events each
# (bench/README.md, session 8), growing with the history. LATERAL, not EXISTS: the planner
# estimates an unnested array at 10 rows and turns EXISTS into a hash of the whole table.
def _customers(index: int) -> Any:
    return (
        func.unnest(bindparam("ids", type_=ARRAY(Integer)))
        .table_valued("id")
        .render_derived(name=f"customer_{index}", with_types=False)
    )


def _adoption_probes(index: int, component: Adoption, now: Any) -> Select[Any]:
    customer = _customers(index)
    feature = (
        func.unnest(bindparam(f"features_{index}", list(component.events), type_=ARRAY(String())))
        .table_valued("name")
        .render_derived(name=f"feature_{index}")
    )
    used = (
        select(literal_column("1"))
        .where(
            _E.c.customer_id == customer.c.id,
            _E.c.name == feature.c.name,
            _E.c.occurred_at <= now,
        )
        .limit(literal_column("1"))  # a literal: a generic plan must know it is one row
        .lateral(f"used_{index}")
    )
    return select(*_row(index, customer.c.id, name=feature.c.name)).select_from(
        customer.join(feature, true()).join(used, true())
    )


def _latest_probe(index: int, component: Latest, now: Any) -> Select[Any]:
    customer = _customers(index)
    latest = (
        select(_E.c.properties)
        .where(
            _E.c.customer_id == customer.c.id,
            _E.c.name == component.event,
            _E.c.occurred_at <= now,
        )
        .order_by(_E.c.occurred_at.desc(), _E.c.id.desc())
        .limit(literal_column("1"))  # a literal: a generic plan must know it is one row
        .lateral(f"latest_{index}")
    )
    return select(*_row(index, customer.c.id, properties=latest.c.properties)).select_from(
        customer.join(latest, true())
    )
