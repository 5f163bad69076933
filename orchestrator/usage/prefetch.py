"""The usage questions a set of conditions asks, answered for many customers in one statement.

:class:`~orchestrator.usage.facts.UsageFacts` asks each question lazily, one query per
customer and question: right for one send, but the lifecycle rules run for every customer an
event batch touches, and 40 customers cost 200 queries. The rules are fixed text, so the
questions they can ask are known before any customer is looked at: every
``usage.count(name[, within])``, ``usage.seen(name[, within])`` and
``usage.weeks_with(name[, weeks])`` whose arguments are literals is answered here for all
the customers at once (one statement: on PostgreSQL one index range per customer and
distinct window, and one per customer and event name for all its ``weeks_with``; on SQLite
one grouped count per window, each week a window, in a ``UNION ALL``), and the answers
seed each customer's ``UsageFacts``. A question asked otherwise (other methods,
computed arguments) is still asked lazily, so every condition means what it meant.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from jinja2 import nodes
from sqlalchemy import Connection, bindparam, func, literal, select, text, union_all

from orchestrator.db.planning import BINARY_RESULTS, PLAN_EACH_TIME, plan_for_many_probes
from orchestrator.db.tables import usage_events
from orchestrator.errors import ConditionError
from orchestrator.journeys.conditions import parse_condition
from orchestrator.journeys.durations import parse_duration

_E = usage_events
_INSTANT = timedelta(microseconds=1)  # a stored instant's resolution, here and in PostgreSQL
# UsageFacts' answer key: ("count" | "seen", name, within), ("weeks_with", name, weeks)
Key = tuple[object, ...]
# event name; after (exclusive) and until, as offsets back from now (None: since ever)
Window = tuple[str, timedelta | None, timedelta]


def usage_questions(sources: Iterable[str]) -> frozenset[Key]:
    """The answer keys of the literal ``usage`` questions in these conditions."""
    return _questions(tuple(sources))


@lru_cache(maxsize=64)
def _questions(sources: tuple[str, ...]) -> frozenset[Key]:
    found: set[Key] = set()
    for source in sources:
        try:
            tree = parse_condition(source)
        except ConditionError:
            continue  # evaluated lazily, it fails the way it always did
        found |= node_questions(tree)
    return frozenset(found)


def node_questions(node: nodes.Node) -> frozenset[Key]:
    """The answer keys of the literal ``usage`` questions in one parsed expression."""
    calls = [node] if isinstance(node, nodes.Call) else []  # find_all skips the root
    keys = (question_key(call) for call in [*calls, *node.find_all(nodes.Call)])
    return frozenset(key for key in keys if key is not None)


def prefetch_usage(
    connection: Connection, customer_ids: Collection[int], questions: frozenset[Key], now: datetime
) -> dict[int, dict[Key, object]]:
    """Customer id → the answers to ``questions`` as of ``now`` (one statement, none when
    there is nothing to ask)."""
    if not customer_ids or not questions:
        return {}
    postgres = connection.dialect.name == "postgresql"
    plan = _plan(questions, postgres)
    ids = sorted(set(customer_ids))  # once each: a customer is one row per window
    params: dict[str, Any] = {"ids": ids}
    if postgres:  # the windows and spans as arrays (see _WINDOW_COUNTS_POSTGRES)
        params["names"] = [name for name, _, _ in plan.windows]
        params["afters"] = [None if after is None else now - after for _, after, _ in plan.windows]
        params["untils"] = [now - until for _, _, until in plan.windows]
        params["firsts"] = list(plan.first_only)  # psycopg binds lists as arrays
        params["span_names"] = [name for name, _ in plan.spans]
        params["span_starts"] = [now - timedelta(days=7 * weeks) for _, weeks in plan.spans]
        params["now"] = now
        most = max((weeks for _, weeks in plan.spans), default=0)  # the weeks' first instants
        params["week_starts"] = [now - timedelta(days=7 * w) + _INSTANT for w in range(most, 0, -1)]
        plan_for_many_probes(connection, len(ids) * (len(plan.windows) + len(plan.spans)))
    for i, (name, after, until) in enumerate([] if postgres else plan.windows):
        params[f"name_{i}"] = name
        params[f"until_{i}"] = now - until
        if after is not None:
            params[f"after_{i}"] = now - after
    answers: dict[int, dict[Key, object]] = {cid: dict(plan.none_seen) for cid in ids}
    for question, customer_id, count in connection.execute(plan.statement, params).all():
        known = answers[customer_id]
        if question < 0:  # a span: ``count`` has bit w set for each week w with such events
            for key, weeks in plan.weeks_in_span[-question - 1]:
                known[key] = (count & ((1 << weeks) - 1)).bit_count()  # w = 0: the last 7 days
            continue
        for key in plan.counted_by[question]:  # a row per window with events, so count >= 1
            known[key] = int(count) if key[0] == "count" else True
        for key in plan.weeks_by[question]:
            known[key] += 1  # type: ignore[operator]
    return answers


def prefetch_rest(
    connection: Connection,
    customer_ids: Collection[int],
    questions: frozenset[Key],
    now: datetime,
    known: Mapping[int, Mapping[Key, object]],
) -> dict[int, dict[Key, object]]:
    """:func:`prefetch_usage` for customers some of whose answers are ``known`` already, as of
    the same ``now`` (the health inputs just read): only the rest is asked, one statement per
    distinct set of questions left, none when nothing is."""
    asking: dict[frozenset[Key], set[int]] = defaultdict(set)
    answers: dict[int, dict[Key, object]] = {}
    for customer_id in customer_ids:
        given = known.get(customer_id, {})
        if given.keys() <= questions:  # the usual case (usage_answers asks only these): a copy
            mine = dict(given)
        else:
            mine = {key: given[key] for key in questions if key in given}
        answers[customer_id] = mine
        asking[questions.difference(mine)].add(customer_id)
    for rest, ids in asking.items():
        for customer_id, found in prefetch_usage(connection, ids, rest, now).items():
            answers[customer_id].update(found)
    return answers


def prefetch_each(
    connection: Connection, conditions: Iterable[tuple[int, tuple[str, ...]]], now: datetime
) -> dict[int, dict[Key, object]]:
    """Customer id → the answers to the literal usage questions of *its* conditions, for
    customers that ask different ones (a batch of sends of several steps): one statement per
    distinct set of questions, none for customers whose conditions ask nothing."""
    asking: dict[frozenset[Key], set[int]] = defaultdict(set)
    for customer_id, sources in conditions:
        questions = _questions(sources)
        if questions:
            asking[questions].add(customer_id)
    answers: dict[int, dict[Key, object]] = {}
    for questions, customer_ids in asking.items():
        for customer_id, known in prefetch_usage(connection, customer_ids, questions, now).items():
            answers.setdefault(customer_id, {}).update(known)  # as of the same now: never at odds
    return answers


@dataclass(frozen=True)
class _Plan:
    """The statement for a set of questions, built once: its windows are offsets back from
    ``now`` (a parameter), so its text never changes. On PostgreSQL it is planned each time
    all the same (``PLAN_EACH_TIME``, orchestrator/db/planning.py)."""

    windows: tuple[Window, ...]
    none_seen: dict[Key, object]  # every key's answer for a customer without such events
    counted_by: tuple[tuple[Key, ...], ...]  # per window: the count() and seen() keys it answers
    first_only: tuple[bool, ...]  # per window: only seen() asks it, so one event is enough
    weeks_by: tuple[tuple[Key, ...], ...]  # per window: the weeks_with() keys it adds a week to
    spans: tuple[tuple[str, int], ...]  # PostgreSQL: per event name, the most weeks asked
    weeks_in_span: tuple[tuple[tuple[Key, int], ...], ...]  # per span: (weeks_with key, weeks)
    statement: Any


@lru_cache(maxsize=64)
def _plan(questions: frozenset[Key], postgres: bool) -> _Plan:
    """On PostgreSQL a ``weeks_with`` question is read as one span of weeks per event name
    (one index range per customer, giving the weeks that have such events), not as a count per
    week: ``weeks_with('x', 8)`` was eight probes per customer. SQLite counts every week."""
    keys = sorted(questions, key=repr)
    spanned = [key for key in keys if postgres and key[0] == "weeks_with"]
    by_key = {key: _windows(key) for key in keys if key not in spanned}
    windows = tuple(sorted({w for ws in by_key.values() for w in ws}, key=repr))
    index = {window: i for i, window in enumerate(windows)}
    counted: list[list[Key]] = [[] for _ in windows]
    weeks: list[list[Key]] = [[] for _ in windows]
    for key, ws in by_key.items():
        for window in ws:
            (weeks if key[0] == "weeks_with" else counted)[index[window]].append(key)
    names = sorted({str(key[1]) for key in spanned})
    in_span = tuple(
        tuple((key, int(str(key[2]))) for key in spanned if key[1] == name) for name in names
    )
    return _Plan(
        windows,
        {key: False if key[0] == "seen" else 0 for key in keys},
        tuple(tuple(keys) for keys in counted),
        tuple(bool(keys) and all(key[0] == "seen" for key in keys) for keys in counted),
        tuple(tuple(keys) for keys in weeks),
        tuple((name, max(w for _, w in span)) for name, span in zip(names, in_span, strict=True)),
        in_span,
        _WINDOW_COUNTS_POSTGRES if postgres else _window_counts(windows),
    )


def _window_counts(windows: tuple[Window, ...]) -> Any:
    """One grouped count per window, joined with UNION ALL (SQLite)."""
    ids = _E.c.customer_id.in_(bindparam("ids", expanding=True))
    branches = []
    for i, (_, after, _until) in enumerate(windows):
        at = _E.c.occurred_at.type
        query = (
            select(literal(i).label("question"), _E.c.customer_id, func.count())
            .where(
                ids,
                _E.c.name == bindparam(f"name_{i}"),
                _E.c.occurred_at <= bindparam(f"until_{i}", type_=at),
            )
            .group_by(_E.c.customer_id)
        )
        if after is not None:
            query = query.where(_E.c.occurred_at > bindparam(f"after_{i}", type_=at))
        branches.append(query)
    return union_all(*branches)


# PostgreSQL: the windows as arrays (name, start or none, end), so the text is one short
# statement for any rules (a UNION ALL of a dozen windows is over 4 kB, which psycopg parses
# again on every call: it caches only shorter ones). Each customer and window is counted by
# its own range of the (customer_id, name, occurred_at) index (LATERAL per pair), so the cost
# follows the customers asked about and their events in the window. Counting per window over
# ``customer_id = ANY(:ids)`` instead let the planner, which cannot see a correlated window's
# bounds, pick the occurred_at index and read every customer's events in the window, the whole
# table for a "since ever" window: ~300 ms per 1,000 customers with 900,000 events stored
# (bench/README.md, session 8). A window without events gives no row. The
# window's start is a row comparison on the index's own columns, which only that index can
# use: given plain bounds on occurred_at, the planner still walked the occurred_at index inside
# each pair when the table's statistics were taken while it was nearly empty (8 against 2 ms
# a group of 12 single events, every customer's events in the window read 144 times). The end
# stays plain: with both bounds as row comparisons it took the (customer_id, event_key) index
# and read all the customer's events. A window only seen() asks about stops at its first
# event (LIMIT 1; no limit when count() asks it too): "ever seen" no longer reads every such
# event the customer ever sent.
# A span (the weeks_with questions of one event name) is one range of the same index per
# customer, from its start to now, giving the weeks that have such events as the bits of one
# number: a row per customer with such events, its question negative (-1 the first span).
# Bit 0 is the last 7 days; a week is (end - 7 days, end], as UsageFacts counts it, found by
# width_bucket over the weeks' first instants (a microsecond after each exclusive start, the
# resolution of a stored instant). One plain aggregate per customer: a DISTINCT of the weeks
# (a hash table per customer) cost about twice as much, and the week as numeric arithmetic
# on the epoch more than the bucket's binary search.
_WINDOW_COUNTS_POSTGRES = text("""
    SELECT w.question - 1, c.customer_id, n.count
    FROM unnest(CAST(:names AS varchar[]), CAST(:afters AS timestamptz[]),
        CAST(:untils AS timestamptz[]), CAST(:firsts AS boolean[]))
        WITH ORDINALITY AS w(name, after, until, first_only, question)
    CROSS JOIN unnest(CAST(:ids AS integer[])) AS c(customer_id)
    CROSS JOIN LATERAL (
        SELECT count(*) AS count FROM (
            SELECT FROM usage_event AS e
            WHERE e.customer_id = c.customer_id AND e.name = w.name
                AND (e.customer_id, e.name, e.occurred_at)
                    > (c.customer_id, w.name, coalesce(w.after, '-infinity'))
                AND e.occurred_at <= w.until
            LIMIT CASE WHEN w.first_only THEN 1 END
        ) AS found
    ) AS n
    WHERE n.count > 0
    UNION ALL
    SELECT -s.span, c.customer_id, d.weeks
    FROM unnest(CAST(:span_names AS varchar[]), CAST(:span_starts AS timestamptz[]))
        WITH ORDINALITY AS s(name, after, span)
    CROSS JOIN unnest(CAST(:ids AS integer[])) AS c(customer_id)
    CROSS JOIN LATERAL (
        SELECT bit_or(CAST(1 AS bigint) << (
            cardinality(CAST(:week_starts AS timestamptz[]))
            - width_bucket(e.occurred_at, CAST(:week_starts AS timestamptz[])))) AS weeks
        FROM usage_event AS e
        WHERE e.customer_id = c.customer_id AND e.name = s.name
            AND (e.customer_id, e.name, e.occurred_at) > (c.customer_id, s.name, s.after)
            AND e.occurred_at <= CAST(:now AS timestamptz)
    ) AS d
    WHERE d.weeks IS NOT NULL
""").execution_options(**PLAN_EACH_TIME, **BINARY_RESULTS)


def question_key(call: nodes.Call) -> Key | None:
    """The answer key of a literal ``usage.count/seen/weeks_with`` call; None for any other."""
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
    return (target.attr, event, within)  # count or seen


def _valid_window(within: object) -> bool:
    try:
        parse_duration(within)
    except ValueError:
        return False
    return isinstance(within, str)


def _windows(key: Key) -> list[Window]:
    """The counts a key's answer is made of, as UsageFacts asks them, back from now."""
    kind, name = key[0], str(key[1])
    if kind in ("count", "seen"):
        within = key[2]
        after = None if within is None else parse_duration(within)
        return [(name, after, timedelta(0))]
    weeks = int(str(key[2]))
    ends = [timedelta(days=7 * week) for week in range(weeks)]
    return [(name, end + timedelta(days=7), end) for end in ends]
