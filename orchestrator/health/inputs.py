"""The raw inputs of many customers' scores, in one round trip.

The components' questions are joined with ``UNION ALL`` into one statement (a row says which
component it answers), so scoring one customer costs one round trip, not one per component.

Each question is asked per customer, walking the ``usage_event (customer_id, name,
occurred_at)`` index for that customer and event name only, so its cost follows the
customers being scored and their events in the window, never the size of the table: a count
reads the customer's events in its window, "ever seen" (adoption) stops at the first one, and
"the latest" reads one. On PostgreSQL that is spelled out (each customer of the array joined
to each question, ``LATERAL``): given ``customer_id = ANY(:ids)`` instead, the planner read
every customer's events through the ``occurred_at`` index or the whole table, and the cost
grew with the table (bench/README, "Session 8"). SQLite keeps the grouped statement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Select,
    String,
    bindparam,
    cast,
    column,
    func,
    literal,
    null,
    select,
    text,
    type_coerce,
    union_all,
)

from orchestrator.db.planning import PLAN_EACH_TIME, without_jit
from orchestrator.db.tables import usage_events
from orchestrator.health.model import Adoption, Frequency, HealthDefinition, Latest, Penalty
from orchestrator.journeys.durations import parse_duration
from orchestrator.usage.prefetch import Key

_E = usage_events
_JSON = _E.c.properties.type


def load_inputs(
    connection: Connection, definition: HealthDefinition, customer_ids: Sequence[int], now: datetime
) -> dict[int, dict[str, Any]]:
    """customer id → component id → raw input, for :func:`orchestrator.health.score.score`."""
    inputs: dict[int, dict[str, Any]] = {cid: {} for cid in customer_ids}
    if not customer_ids or not definition.components:
        return inputs
    if connection.dialect.name == "postgresql":
        query, params = _INPUTS_POSTGRES, _postgres_params(definition, customer_ids, now)
        without_jit(connection, len(customer_ids) * _questions(params))
    else:
        query = _statement(definition)
        params = {"ids": list(customer_ids), "now": now}
        for index, component in enumerate(definition.components):
            if isinstance(component, Frequency | Penalty):
                params[f"since_{index}"] = now - component.within
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


def usage_answers(
    definition: HealthDefinition,
    inputs: Mapping[int, Mapping[str, Any]],
    questions: Iterable[Key],
) -> dict[int, dict[Key, object]]:
    """Customer id → the usage questions (:mod:`orchestrator.usage.prefetch` keys) these
    inputs, read as of the same now, answer already: a count or seen over a component's own
    event and window (frequency, penalty), and "ever seen" of an adoption feature. The stage
    rules ask several of the health file's questions again; with these they are not read
    twice."""
    readers: dict[Key, Callable[[Mapping[str, Any]], object]] = {}
    for key in questions:
        reader = _reader(definition, key)
        if reader is not None:
            readers[key] = reader
    if not readers:
        return {}
    return {
        customer_id: {key: read(found) for key, read in readers.items()}
        for customer_id, found in inputs.items()
    }


def _reader(definition: HealthDefinition, key: Key) -> Callable[[Mapping[str, Any]], object] | None:
    kind, name, argument = key
    name = str(name)
    if kind not in ("count", "seen"):
        return None
    within = None if argument is None else parse_duration(str(argument))
    for component in definition.components:
        if _counts(component, name, within):
            return partial(_count_of if kind == "count" else _any_of, component.id)
        adopted = isinstance(component, Adoption) and name in component.events
        if adopted and kind == "seen" and within is None:
            return partial(_adopted, component.id, name)
    return None


def _count_of(component_id: str, found: Mapping[str, Any]) -> int:
    return int(found.get(component_id, 0))  # no row: no such event


def _any_of(component_id: str, found: Mapping[str, Any]) -> bool:
    return _count_of(component_id, found) > 0


def _adopted(component_id: str, name: str, found: Mapping[str, Any]) -> bool:
    return name in found.get(component_id, ())


def _counts(component: object, name: object, within: timedelta | None) -> bool:
    """Whether this component's input is the count of ``name`` in the last ``within``."""
    if not isinstance(component, Frequency | Penalty):
        return False
    return component.event == name and component.within == within


# SQLite: built once per definition, with the ids, ``now`` and each window's start as
# parameters: building it per request cost a third of a single event's CPU.
_STATEMENTS: dict[int, tuple[HealthDefinition, Any]] = {}


def _statement(definition: HealthDefinition) -> Any:
    key = id(definition)
    cached = _STATEMENTS.get(key)
    if cached is not None and cached[0] is definition:
        return cached[1]
    parts = [
        _component_select(index, component) for index, component in enumerate(definition.components)
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
    """A column of this type, or a NULL cast to it."""
    return cast(null(), type_) if value is None else type_coerce(value, type_)


def _component_select(index: int, component: Any) -> Select[Any]:
    customer = _E.c.customer_id.in_(bindparam("ids", expanding=True))
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


def _postgres_params(
    definition: HealthDefinition, customer_ids: Sequence[int], now: datetime
) -> dict[str, Any]:
    """The components as arrays of questions: counts in a window, names ever seen, latest."""
    counts: list[tuple[int, str, datetime]] = []
    seen: list[tuple[int, str]] = []
    latest: list[tuple[int, str]] = []
    for index, component in enumerate(definition.components):
        if isinstance(component, Frequency | Penalty):
            counts.append((index, component.event, now - component.within))
        elif isinstance(component, Adoption):
            seen.extend((index, name) for name in dict.fromkeys(component.events))
        else:
            assert isinstance(component, Latest)
            latest.append((index, component.event))
    return {
        "ids": list(customer_ids),
        "now": now,
        "count_components": [index for index, _, _ in counts],
        "count_names": [name for _, name, _ in counts],
        "count_sinces": [since for _, _, since in counts],
        "seen_components": [index for index, _ in seen],
        "seen_names": [name for _, name in seen],
        "latest_components": [index for index, _ in latest],
        "latest_names": [name for _, name in latest],
    }


def _questions(params: dict[str, Any]) -> int:
    """How many questions each customer is asked (PostgreSQL's parameters)."""
    return sum(len(params[key]) for key in ("count_names", "seen_names", "latest_names"))


# PostgreSQL: one text for every definition (its questions come as arrays), each question
# asked per customer through the (customer_id, name, occurred_at) index; see the module's
# docstring for why the customers drive the join. Each is a LATERAL subquery with an aggregate
# or a LIMIT, which the planner cannot pull up into a join over the whole table (an EXISTS it
# can, and did: a hash semi-join over every event, 120 ms at 30 events a customer).
# Each probe's start is a row comparison on the index's own columns, (customer_id, name,
# occurred_at), which only that index can use: with plain bounds on occurred_at the planner
# could still walk the occurred_at index inside each probe, reading every customer's events in
# the window (seen on a table whose statistics were taken while it was nearly empty). The end
# stays plain: with both as row comparisons it took the (customer_id, event_key) index.
_INPUTS_POSTGRES = (
    text("""
    SELECT q.component, c.id, n.count, CAST(NULL AS varchar), CAST(NULL AS json)
    FROM unnest(CAST(:ids AS integer[])) AS c(id)
    CROSS JOIN unnest(CAST(:count_components AS integer[]), CAST(:count_names AS varchar[]),
        CAST(:count_sinces AS timestamptz[])) AS q(component, name, since)
    CROSS JOIN LATERAL (
        SELECT count(*) AS count FROM usage_event AS e
        WHERE e.customer_id = c.id AND e.name = q.name
            AND (e.customer_id, e.name, e.occurred_at) > (c.id, q.name, q.since)
            AND e.occurred_at <= :now
    ) AS n
    WHERE n.count > 0
    UNION ALL
    SELECT q.component, c.id, NULL, q.name, NULL
    FROM unnest(CAST(:ids AS integer[])) AS c(id)
    CROSS JOIN unnest(CAST(:seen_components AS integer[]), CAST(:seen_names AS varchar[]))
        AS q(component, name)
    CROSS JOIN LATERAL (
        SELECT FROM usage_event AS e
        WHERE e.customer_id = c.id AND e.name = q.name
            AND (e.customer_id, e.name, e.occurred_at) > (c.id, q.name, '-infinity')
            AND e.occurred_at <= :now
        LIMIT 1
    ) AS seen
    UNION ALL
    SELECT q.component, c.id, NULL, NULL, latest.properties
    FROM unnest(CAST(:ids AS integer[])) AS c(id)
    CROSS JOIN unnest(CAST(:latest_components AS integer[]), CAST(:latest_names AS varchar[]))
        AS q(component, name)
    CROSS JOIN LATERAL (
        SELECT e.properties FROM usage_event AS e
        WHERE e.customer_id = c.id AND e.name = q.name
            AND (e.customer_id, e.name, e.occurred_at) > (c.id, q.name, '-infinity')
            AND e.occurred_at <= :now
        ORDER BY e.occurred_at DESC, e.id DESC
        LIMIT 1
    ) AS latest
""")
    .columns(
        column("component", Integer),
        column("customer_id", Integer),
        column("count", Integer),
        column("name", String),
        column("properties", _JSON),
    )
    .execution_options(**PLAN_EACH_TIME)
)
