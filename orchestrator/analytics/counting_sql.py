"""The rollup job's counting, said in SQL: the rules of :mod:`orchestrator.analytics.counters`
as expressions over a row, so the database counts a batch of changed rows with a statement
or two, not the job with a loop per row (a first count of ten million sends takes minutes,
not hours).

A batch is the uncounted rows (the partial index of :data:`UNCOUNTED_SEND_SQL`) above an id,
oldest first, locked on PostgreSQL (``FOR UPDATE SKIP LOCKED``: a row a worker is writing is
left for the next pass). Of each row the statements work out what it counts for now
(``n_*``: outcome, skip kind, day, tier and language, stamped from the customer on first
count), subtract what it counted for before (its ``counted_*`` and ``stat_*`` columns), add
the difference to ``analytics_daily`` grouped per rollup row (in key order: two passes never
deadlock), and write the new marks. On PostgreSQL that is one statement per table (the
marks and the rollups both come from one materialized CTE, so they cannot disagree); on
SQLite, which has no writing CTEs, two, inside the caller's ``BEGIN IMMEDIATE`` transaction,
so no writer changes the rows between them.

The analytics day of an instant is PostgreSQL's ``timezone()``; SQLite has no time zones, so
there it is a Python function registered on the connection (:func:`register_sqlite_functions`)
and so is the language of a locale: the same rules as :mod:`counters`, by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from orchestrator.analytics.counters import (
    CONVERTED,
    COUNTERS,
    ENGAGEMENT_COUNTERS,
    ENROLLED,
    JOURNEY_ROW,
    SKIP_KINDS,
    SKIP_PREFIXES,
    language,
)
from orchestrator.db.models import UNCOUNTED_ENROLLMENT_SQL, UNCOUNTED_SEND_SQL
from orchestrator.journeys.states import COUNTED_SEND_STATES, SendState

KEYS = ("journey_id", "day", "step_id", "tier", "locale")
_OUTCOMES = tuple(state.value for state in COUNTED_SEND_STATES)
_SEND_COLUMNS = (
    "id, customer_id, journey_id, step_id, state, reason, sent_at, updated_at, engagement, "
    "counted_state, counted_engagement, stat_day, stat_tier, stat_locale, stat_kind"
)
_ENROLLMENT_COLUMNS = (
    "id, customer_id, journey_id, state, created_at, counted, stat_day, stat_tier, stat_locale, "
    "started_version_id"
)
Expressions = dict[str, str]


def _literal(value: str) -> str:
    assert "'" not in value and "\\" not in value  # constants of this package only
    return f"'{value}'"


def _flag(condition: str, sign: int) -> str:
    return f"CASE WHEN {condition} THEN {sign} ELSE 0 END"


def send_counter_sql(outcome: str, kind: str, engagement: str, sign: int) -> Expressions:
    """Every counter of one send, ``sign`` × what :func:`counters.send_counts` says."""
    sent = f"{outcome} = {_literal(SendState.SENT)}"
    skipped = f"{outcome} = {_literal(SendState.SKIPPED)}"
    exprs = dict.fromkeys(COUNTERS, "0")
    exprs["sent"] = _flag(sent, sign)
    for skip in SKIP_KINDS:
        exprs[f"skipped_{skip}"] = _flag(f"{skipped} AND {kind} = {_literal(skip)}", sign)
    for state in _OUTCOMES:
        if state not in (SendState.SENT, SendState.SKIPPED):
            assert state in COUNTERS
            exprs[state] = _flag(f"{outcome} = {_literal(state)}", sign)
    for bit, name in ENGAGEMENT_COUNTERS:
        exprs[name] = _flag(f"{sent} AND ({engagement} & {bit}) <> 0", sign)
    return exprs


def enrollment_counter_sql(bits: str, sign: int) -> Expressions:
    """Every counter of one enrollment, ``sign`` × :func:`counters.enrollment_counts`."""
    exprs = dict.fromkeys(COUNTERS, "0")
    exprs["enrolled"] = _flag(f"({bits} & {ENROLLED}) <> 0", sign)
    exprs["converted"] = _flag(f"({bits} & {CONVERTED}) <> 0", sign)
    return exprs


def skip_kind_sql(reason: str) -> str:
    """:func:`counters.skip_kind`: the kind by the start of the lowercased reason."""
    lowered = f"lower(coalesce({reason}, ''))"
    cases = " ".join(
        f"WHEN substr({lowered}, 1, {len(prefix)}) = {_literal(prefix)} THEN {_literal(kind)}"
        for prefix, kind in SKIP_PREFIXES
    )
    return f"CASE {cases} ELSE 'other' END"


class Dialect:
    """What differs between the databases: the locking, a day in a time zone, a language."""

    def __init__(self, name: str) -> None:
        self.postgres = name == "postgresql"

    def local_day(self, instant: str) -> str:
        if self.postgres:
            return f"CAST(timezone(CAST(:zone AS text), {instant}) AS date)"
        return f"stepmail_local_day({instant}, :zone)"

    def language(self, locale: str) -> str:
        if self.postgres:  # locales are checked (LOCALE_PATTERN): ASCII, no spaces inside
            trimmed = f"lower(btrim({locale}, ' ' || chr(9) || chr(10) || chr(13)))"
            first = f"split_part(split_part({trimmed}, '-', 1), '_', 1)"
            return f"coalesce(nullif({first}, ''), '?')"
        return f"stepmail_language({locale})"

    def customer_join(self) -> str:
        """The customer of a row not stamped yet (a stamped row needs none). PostgreSQL: a
        lateral index lookup per such row (``OFFSET 0`` keeps the planner from flattening it
        into a hash of every customer, per batch)."""
        if self.postgres:
            return (
                "LEFT JOIN LATERAL (SELECT id, tier, locale FROM customer "
                "WHERE customer.id = k.customer_id "
                "AND (k.stat_tier IS NULL OR k.stat_locale IS NULL) OFFSET 0) AS c ON true"
            )
        return "LEFT JOIN customer AS c ON c.id = k.customer_id"

    @property
    def lock(self) -> str:
        return " FOR UPDATE SKIP LOCKED" if self.postgres else ""


def _stamps(dialect: Dialect) -> str:
    """The tier and language a row is counted under: stamped once, from its customer."""
    stamped = "k.stat_tier IS NOT NULL AND k.stat_locale IS NOT NULL"
    return (
        f"CASE WHEN {stamped} THEN k.stat_tier ELSE coalesce(c.tier, '?') END AS n_tier, "
        f"CASE WHEN {stamped} THEN k.stat_locale WHEN c.id IS NULL THEN '?' "
        f"ELSE {dialect.language('c.locale')} END AS n_locale"
    )


def _chunk(table: str, columns: str, predicate: str, dialect: Dialect) -> str:
    return (
        f"chunk AS MATERIALIZED (SELECT {columns} FROM {table} "  # noqa: S608 (constants)
        f"WHERE ({predicate}) AND id > :after ORDER BY id LIMIT :limit{dialect.lock})"
    )


def _send_ctes(dialect: Dialect) -> str:
    outcomes = ", ".join(_literal(state) for state in _OUTCOMES)
    sent = _literal(SendState.SENT)
    return (
        "WITH "  # noqa: S608 (constants of this module)
        + _chunk("scheduled_send", _SEND_COLUMNS, UNCOUNTED_SEND_SQL, dialect)
        + ", stamped AS (SELECT k.*, "  # noqa: S608
        f"CASE WHEN k.state IN ({outcomes}) THEN k.state ELSE '' END AS n_outcome, "
        f"{_stamps(dialect)} FROM chunk AS k {dialect.customer_join()}), "
        "decided AS MATERIALIZED (SELECT s.*, "
        f"CASE WHEN s.n_outcome = {_literal(SendState.SKIPPED)} "
        f"THEN {skip_kind_sql('s.reason')} END AS n_kind, "
        "CASE WHEN s.n_outcome = '' THEN NULL "
        f"WHEN s.n_outcome = {sent} AND s.sent_at IS NOT NULL "
        f"THEN {dialect.local_day('s.sent_at')} "
        f"ELSE {dialect.local_day('s.updated_at')} END AS n_day FROM stamped AS s)"
    )


def _enrollment_ctes(dialect: Dialect) -> str:
    return (
        "WITH "  # noqa: S608 (constants of this module)
        + _chunk("enrollment", _ENROLLMENT_COLUMNS, UNCOUNTED_ENROLLMENT_SQL, dialect)
        + ", decided AS MATERIALIZED (SELECT k.*, "  # noqa: S608
        f"CASE WHEN k.state = 'converted' THEN {ENROLLED | CONVERTED} ELSE {ENROLLED} END "
        "AS n_bits, "
        "CASE WHEN k.counted <> 0 AND k.stat_day IS NOT NULL THEN k.stat_day "
        f"ELSE {dialect.local_day('k.created_at')} END AS n_day, "
        f"{_stamps(dialect)} FROM chunk AS k {dialect.customer_join()})"
    )


def _select(keys: Sequence[str], exprs: Expressions, where: str) -> str:
    named = [f"{key} AS {name}" for key, name in zip(keys, KEYS, strict=True)]
    counters = [f"{exprs[name]} AS {name}" for name in COUNTERS]
    return f"SELECT {', '.join(named + counters)} FROM decided WHERE {where}"  # noqa: S608


def _upsert(old: str, new: str) -> str:
    """Add the grouped differences of the old and the new counts to the rollup rows."""
    keys = ", ".join(KEYS)
    sums = ", ".join(f"sum({name}) AS {name}" for name in COUNTERS)
    nonzero = " OR ".join(f"{name} <> 0" for name in COUNTERS)
    added = ", ".join(f"{name} = analytics_daily.{name} + excluded.{name}" for name in COUNTERS)
    return (
        f"INSERT INTO analytics_daily ({keys}, {', '.join(COUNTERS)}) "  # noqa: S608
        f"SELECT * FROM (SELECT {keys}, {sums} FROM ({old} UNION ALL {new}) AS d "
        f"GROUP BY {keys}) AS g WHERE {nonzero} ORDER BY {keys} "
        f"ON CONFLICT ({keys}) DO UPDATE SET {added}"
    )


def _send_upsert() -> str:
    old = _select(
        ("journey_id", "stat_day", "step_id", "stat_tier", "stat_locale"),
        send_counter_sql("counted_state", "coalesce(stat_kind, 'other')", "counted_engagement", -1),
        "counted_state <> ''",
    )
    new = _select(
        ("journey_id", "n_day", "step_id", "n_tier", "n_locale"),
        send_counter_sql("n_outcome", "n_kind", "engagement", +1),
        "n_day IS NOT NULL",
    )
    return _upsert(old, new)


def _enrollment_upsert() -> str:
    journey_row = _literal(JOURNEY_ROW)
    old = _select(
        ("journey_id", "stat_day", journey_row, "stat_tier", "stat_locale"),
        enrollment_counter_sql("counted", -1),
        "counted <> 0",
    )
    new = _select(
        ("journey_id", "n_day", journey_row, "n_tier", "n_locale"),
        enrollment_counter_sql("n_bits", +1),
        "1 = 1",
    )
    return _upsert(old, new)


_SEND_MARKS = (
    "counted_state = d.n_outcome, counted_engagement = d.engagement, stat_day = d.n_day, "
    "stat_tier = d.n_tier, stat_locale = d.n_locale, stat_kind = d.n_kind"
)
_ENROLLMENT_MARKS = (
    "counted = d.n_bits, stat_day = d.n_day, stat_tier = d.n_tier, stat_locale = d.n_locale"
)


# An enrollment counted for the first time (``counted`` still 0) is added to the count of the
# version it started on; ``uncount_enrollments_since`` takes it off again for a rebuild.
_VERSION_STARTS_UPSERT = (
    "INSERT INTO journey_version_starts (version_id, enrollments) "
    "SELECT started_version_id, count(*) FROM decided "
    "WHERE counted = 0 AND started_version_id IS NOT NULL "
    "GROUP BY started_version_id ORDER BY started_version_id "
    "ON CONFLICT (version_id) DO UPDATE "
    "SET enrollments = journey_version_starts.enrollments + excluded.enrollments"
)


def _mark(table: str, marks: str, returning: str) -> str:
    return (
        f"UPDATE {table} AS t SET {marks} FROM decided AS d WHERE t.id = d.id RETURNING {returning}"  # noqa: S608
    )


def _postgres_statement(ctes: str, table: str, marks: str, writes: Sequence[str]) -> str:
    """One statement: mark the rows, add to the rollups (and to the versions' starts),
    report (rows, last id, rollup rows)."""
    upsert, *more = writes
    also = "".join(f", also_{n} AS ({w})" for n, w in enumerate(more))
    return (
        f"{ctes}, marked AS ({_mark(table, marks, 't.id')}), written AS ({upsert} RETURNING 1)"  # noqa: S608
        f"{also} SELECT (SELECT count(*) FROM marked), (SELECT coalesce(max(id), 0) FROM marked), "
        "(SELECT count(*) FROM written)"
    )


@cache
def counting_statements(dialect_name: str, table: str) -> tuple[str, ...]:
    """The statements that count a batch of ``table`` (``scheduled_send`` or ``enrollment``).
    PostgreSQL: one, returning (rows, last id, rollup rows). SQLite: the rollups' upsert (and
    for enrollments the versions' starts), then the marks (returning the ids)."""
    dialect = Dialect(dialect_name)
    writes: tuple[str, ...]
    if table == "scheduled_send":
        ctes, marks, writes = _send_ctes(dialect), _SEND_MARKS, (_send_upsert(),)
    else:
        ctes, marks = _enrollment_ctes(dialect), _ENROLLMENT_MARKS
        writes = (_enrollment_upsert(), _VERSION_STARTS_UPSERT)
    if dialect.postgres:
        return (_postgres_statement(ctes, table, marks, writes),)
    # SQLite's RETURNING names the target table's columns only, never by its alias.
    return (*(f"{ctes} {write}" for write in writes), f"{ctes} {_mark(table, marks, 'id')}")


def register_sqlite_functions(dbapi_connection: Any) -> None:
    """The day of an instant in a time zone and the language of a locale, for SQLite."""
    create: Callable[..., None] = dbapi_connection.create_function
    create("stepmail_local_day", 2, _sqlite_local_day, deterministic=True)
    create("stepmail_language", 1, language, deterministic=True)


def _sqlite_local_day(instant: str | None, zone: str) -> str | None:
    """SQLite keeps UTC instants as naive text (:class:`orchestrator.db.types.UTCDateTime`)."""
    if instant is None:
        return None
    moment = datetime.fromisoformat(instant).replace(tzinfo=UTC)
    day: date = moment.astimezone(_zone(zone)).date()
    return day.isoformat()


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)
