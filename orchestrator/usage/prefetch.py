"""The usage questions a set of conditions asks, answered for many customers in one statement.

:class:`~orchestrator.usage.facts.UsageFacts` asks each question lazily, one query per
customer and question: right for one send, but the lifecycle rules run for every customer an
event batch touches, and 40 customers cost 200 queries. The rules are fixed text, so the
questions they can ask are known before any customer is looked at: every
``usage.count(name[, within])``, ``usage.seen(name[, within])`` and
``usage.weeks_with(name[, weeks])`` whose arguments are literals is answered here for all
the customers at once (one grouped count per distinct window, all in one ``UNION ALL``), and
the answers seed each customer's ``UsageFacts``. A question asked otherwise (other methods,
computed arguments) is still asked lazily, so every condition means what it meant.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import Any

from jinja2 import nodes
from sqlalchemy import Connection, Select, func, literal, select, union_all

from orchestrator.db.tables import usage_events
from orchestrator.db.values import one_of
from orchestrator.errors import ConditionError
from orchestrator.journeys.conditions import parse_condition
from orchestrator.journeys.durations import parse_duration

_E = usage_events
Key = tuple[object, ...]  # UsageFacts' answer key: ("count", name, within), ("weeks_with", ...)
Window = tuple[str, datetime | None, datetime]  # event name, after (exclusive), until


def usage_questions(sources: Iterable[str]) -> frozenset[Key]:
    """The answer keys of the literal ``usage`` questions in these conditions."""
    found: set[Key] = set()
    for source in sources:
        try:
            tree = parse_condition(source)
        except ConditionError:
            continue  # evaluated lazily, it fails the way it always did
        for call in tree.find_all(nodes.Call):
            key = _key(call)
            if key is not None:
                found.add(key)
    return frozenset(found)


def prefetch_usage(
    connection: Connection, customer_ids: Collection[int], questions: Collection[Key], now: datetime
) -> dict[int, dict[Key, object]]:
    """Customer id → the answers to ``questions`` as of ``now`` (one statement, none when
    there is nothing to ask)."""
    if not customer_ids or not questions:
        return {}
    windows = {key: _windows(key, now) for key in questions}
    distinct = sorted({w for ws in windows.values() for w in ws}, key=repr)
    index = {window: i for i, window in enumerate(distinct)}
    ids = sorted(customer_ids)
    counts: dict[tuple[int, int], int] = {}
    query = union_all(*(_count(i, w, ids, connection.dialect.name) for i, w in enumerate(distinct)))
    for question, customer_id, count in connection.execute(query):
        counts[(customer_id, question)] = int(count)
    answers: dict[int, dict[Key, object]] = {}
    for customer_id in ids:
        known: dict[Key, object] = {}
        for key, key_windows in windows.items():
            found = [counts.get((customer_id, index[w]), 0) for w in key_windows]
            known[key] = found[0] if key[0] == "count" else sum(1 for n in found if n)
        answers[customer_id] = known
    return answers


def _key(call: nodes.Call) -> Key | None:
    target = call.node
    if not (
        isinstance(target, nodes.Getattr)
        and isinstance(target.node, nodes.Name)
        and target.node.name == "usage"
        and target.attr in ("count", "seen", "weeks_with")
        and not call.dyn_args
        and not call.dyn_kwargs
    ):
        return None
    names = ("name", "weeks" if target.attr == "weeks_with" else "within")
    given: dict[str, Any] = {}
    if len(call.args) > len(names):
        return None
    for name, arg in zip(names, call.args, strict=False):
        if not isinstance(arg, nodes.Const):
            return None
        given[name] = arg.value
    for keyword in call.kwargs:
        if keyword.key not in names or keyword.key in given:
            return None
        if not isinstance(keyword.value, nodes.Const):
            return None
        given[keyword.key] = keyword.value.value
    event = given.get("name")
    if not isinstance(event, str):
        return None
    if target.attr == "weeks_with":
        weeks = given.get("weeks", 4)
        if type(weeks) is not int or not 1 <= weeks <= 26:
            return None  # asked lazily: it raises as it always did
        return ("weeks_with", event, weeks)
    within = given.get("within")
    if within is not None and not _valid_window(within):
        return None
    return ("count", event, within)  # seen() asks count() with the same arguments


def _valid_window(within: object) -> bool:
    try:
        parse_duration(within)
    except ValueError:
        return False
    return isinstance(within, str)


def _windows(key: Key, now: datetime) -> list[Window]:
    """The counts a key's answer is made of, as UsageFacts asks them."""
    kind, name = key[0], str(key[1])
    if kind == "count":
        within = key[2]
        after = None if within is None else now - parse_duration(within)
        return [(name, after, now)]
    weeks = int(str(key[2]))
    ends = [now - timedelta(days=7 * week) for week in range(weeks)]
    return [(name, end - timedelta(days=7), end) for end in ends]


def _count(window_index: int, window: Window, customer_ids: list[int], dialect: str) -> Select[Any]:
    name, after, until = window
    query = (
        select(literal(window_index).label("question"), _E.c.customer_id, func.count())
        .where(
            one_of(_E.c.customer_id, customer_ids, dialect),
            _E.c.name == name,
            _E.c.occurred_at <= until,
        )
        .group_by(_E.c.customer_id)
    )
    if after is not None:
        query = query.where(_E.c.occurred_at > after)
    return query
