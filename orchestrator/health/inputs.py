"""The raw inputs of many customers' scores, in one round trip.

The components' questions are asked in one statement, so scoring one customer costs one round
trip, not one per component: on PostgreSQL one row a customer with a column a question, on
SQLite the questions joined with ``UNION ALL`` (a row says which component it answers).

Each question is asked per customer, walking the ``usage_event (customer_id, name,
occurred_at)`` index for that customer and event name only, so its cost follows the
customers being scored and their events in the window, never the size of the table: a count
reads the customer's events in its window, "ever seen" (adoption) stops at the first one, and
"the latest" reads the last one (and any others of its moment). On PostgreSQL that is spelled
out (a subquery a question, for each customer of the array): given ``customer_id =
ANY(:ids)`` instead, the planner read every customer's events through the ``occurred_at``
index or the whole table, and the cost grew with the table (bench/README, "Session 8").
SQLite keeps the grouped statement, whose "latest" ranks every event of the name the
customers sent: the embedded database is for small installations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

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

from orchestrator.db.planning import BINARY_RESULTS, PLAN_EACH_TIME, plan_for_many_probes
from orchestrator.db.tables import usage_events
from orchestrator.health.model import Adoption, Frequency, HealthDefinition, Latest, Penalty
from orchestrator.health.per_definition import per_definition
from orchestrator.journeys.durations import parse_duration
from orchestrator.usage.latest_sql import latest_properties_sql
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
        _load_postgres(connection, definition, customer_ids, now, inputs)
        return inputs
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


def _load_postgres(
    connection: Connection,
    definition: HealthDefinition,
    customer_ids: Sequence[int],
    now: datetime,
    inputs: dict[int, dict[str, Any]],
) -> None:
    """PostgreSQL's answers, one row a customer, into ``inputs`` as the grouped statement's
    rows would put them: a count only when not zero, a feature only when seen, the latest
    only when there is one (its properties are never NULL: the column is NOT NULL)."""
    built = _postgres_statement(definition)
    plan_for_many_probes(connection, len(customer_ids) * len(built.questions))
    components = definition.components
    readers = [
        _reader_of(n + 1, question, components) for n, question in enumerate(built.questions)
    ]
    # .all(): one fetch for every row, not a driver call for each (bench/README, "Session 28")
    for row in connection.execute(built.statement, built.params(customer_ids, now)).all():
        found = inputs[row[0]]
        for position, kind, component_id, detail in readers:
            answer = row[position]
            if answer is None:
                continue  # nothing seen, no latest event
            if kind == "count":
                if answer:
                    found[component_id] = answer
            elif kind == "seen":
                found.setdefault(component_id, set()).add(detail)
            else:
                found[component_id] = (answer or {}).get(detail)


def _reader_of(
    position: int, question: _Question, components: Sequence[Any]
) -> tuple[int, str, str, str]:
    """Where a question's answer is in a row, and what it says: the component's id, and the
    name seen or the property read."""
    component = components[question.component]
    detail = component.property if question.kind == "latest" else question.name
    return position, question.kind, component.id, detail


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
    readers = [reader for key in questions if (reader := _reader(definition, key)) is not None]
    if not readers:
        return {}
    answered: dict[int, dict[Key, object]] = {}
    for customer_id, found in inputs.items():  # one loop, no call a question: per customer
        get = found.get
        answers: dict[Key, object] = {}
        for key, component_id, reads, name in readers:
            if reads is _COUNT:
                answers[key] = int(get(component_id, 0))  # no row: no such event
            elif reads is _ANY:
                answers[key] = int(get(component_id, 0)) > 0
            else:
                answers[key] = name in get(component_id, ())
        answered[customer_id] = answers
    return answered


_COUNT, _ANY, _ADOPTED = "count", "any", "adopted"  # what a reader reads of a component


def _reader(definition: HealthDefinition, key: Key) -> tuple[Key, str, str, str] | None:
    """The question ``key`` as its answer is read from a customer's inputs: the component,
    whether its count, whether it is not zero, or whether ``name`` was adopted."""
    kind, name, argument = key
    name = str(name)
    if kind not in ("count", "seen"):
        return None
    within = None if argument is None else parse_duration(str(argument))
    for component in definition.components:
        if _counts(component, name, within):
            return key, component.id, _COUNT if kind == "count" else _ANY, name
        adopted = isinstance(component, Adoption) and name in component.events
        if adopted and kind == "seen" and within is None:
            return key, component.id, _ADOPTED, name
    return None


def _counts(component: object, name: object, within: timedelta | None) -> bool:
    """Whether this component's input is the count of ``name`` in the last ``within``."""
    if not isinstance(component, Frequency | Penalty):
        return False
    return component.event == name and component.within == within


# SQLite: built once per definition, with the ids, ``now`` and each window's start as
# parameters: building it per request cost a third of a single event's CPU.
@per_definition
def _statement(definition: HealthDefinition) -> Any:
    parts = [
        _component_select(index, component) for index, component in enumerate(definition.components)
    ]
    return parts[0] if len(parts) == 1 else union_all(*parts)


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


@per_definition
def _postgres_statement(definition: HealthDefinition) -> _PostgresStatement:
    """The definition's questions as one statement, built once per definition."""
    questions: list[_Question] = []
    for index, component in enumerate(definition.components):
        if isinstance(component, Frequency | Penalty):
            questions.append(_Question("count", index, component.event, component.within))
        elif isinstance(component, Adoption):
            questions.extend(
                _Question("seen", index, name) for name in dict.fromkeys(component.events)
            )
        else:
            assert isinstance(component, Latest)
            questions.append(_Question("latest", index, component.event))
    answers = ", ".join(_ANSWERS[q.kind].format(n=n) for n, q in enumerate(questions))
    # fixed text only (the names are bound parameters), one space between words: psycopg
    # parses a statement over 4 kB again on every call
    sql = f"SELECT c.id, {answers} FROM unnest(CAST(:ids AS integer[])) AS c(id)"  # noqa: S608
    statement = (
        text(" ".join(sql.split()))
        .columns(
            column("customer_id", Integer),
            *(
                column(f"q{n}", _JSON if question.kind == "latest" else Integer)
                for n, question in enumerate(questions)
            ),
        )
        .execution_options(**PLAN_EACH_TIME, **BINARY_RESULTS)
    )
    return _PostgresStatement(statement, tuple(questions))


class _Question(NamedTuple):
    """One answer a customer's row carries: a count in a window, a name ever seen, or the
    properties of the latest event of a name; ``component`` is its component's index."""

    kind: str
    component: int
    name: str
    within: timedelta | None = None


class _PostgresStatement(NamedTuple):
    statement: Any
    questions: tuple[_Question, ...]

    def params(self, customer_ids: Sequence[int], now: datetime) -> dict[str, Any]:
        params: dict[str, Any] = {"ids": list(customer_ids), "now": now}
        for n, question in enumerate(self.questions):
            params[f"name_{n}"] = question.name
            if question.within is not None:
                params[f"since_{n}"] = now - question.within
        return params


# PostgreSQL: one row a customer, a scalar subquery a question (see the module's docstring
# for why the customers drive the probes). Each probe's start is a row comparison on the
# index's own columns, (customer_id, name, occurred_at), which only that index can use: with
# plain bounds on occurred_at the planner could walk the occurred_at index inside each probe,
# reading every customer's events in the window (seen on a table whose statistics were taken
# while it was nearly empty). The end stays plain: with both as row comparisons it took the
# (customer_id, event_key) index. "Seen" is a LIMIT 1 subquery, not EXISTS, which the planner
# may answer by hashing every event of the name.
#
# Before (session 20 and earlier) the questions came as arrays, cross-joined with the
# customers, one output row an answer: the same probes took 10-16% longer in the event
# bench, up to twice as long with 80 events a customer (bench/README, "Session 21").
_PROBE = """FROM usage_event AS e
        WHERE e.customer_id = c.id AND e.name = CAST(:name_{n} AS varchar)
            AND (e.customer_id, e.name, e.occurred_at)
                > (c.id, CAST(:name_{n} AS varchar), {since})
            AND e.occurred_at <= CAST(:now AS timestamptz)"""
# "The latest": usage/latest_sql.py says how, and why so.
_LATEST = latest_properties_sql("c.id", "CAST(:name_{n} AS varchar)", "CAST(:now AS timestamptz)")
_ANSWERS = {
    "count": "    (SELECT count(*) "
    + _PROBE.replace("{since}", "CAST(:since_{n} AS timestamptz)")
    + ") AS q{n}",
    "seen": "    (SELECT 1 "
    + _PROBE.replace("{since}", "'-infinity'")
    + "\n        LIMIT 1) AS q{n}",
    "latest": "    " + _LATEST + " AS q{n}",
}
