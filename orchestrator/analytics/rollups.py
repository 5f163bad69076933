"""The daily rollups, kept from the rows that changed: never a scan of all sends.

Every ``scheduled_send`` row remembers what the rollups hold of it (``counted_state``,
``counted_engagement`` and the ``stat_*`` day, tier, language and skip kind it is counted
under). A row whose outcome or engagement moved since is *uncounted*, and a partial index
holds exactly those rows (``UNCOUNTED_SEND_SQL``), so finding them costs what changed. The
same goes for enrollments (enrolled, converted).

:func:`count_changes` takes a batch of them, locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL),
adds ``new - old`` of each to its rollup row, added up per row first (one upsert per journey,
step, tier, language and day, not per mail), and marks them counted, in one transaction. So:

- nothing on the send path writes a rollup, and no worker waits on a hot counter row: the
  periodic job (:func:`orchestrator.services.analytics.refresh_rollups`) is the only writer,
  one batch at a time;
- every state change is seen, by whichever code path made it (a settled unknown send, a
  resent failed one, a cancellation), because the row itself says it is uncounted;
- the rollups always equal the sum of what the rows say they count for, after every commit;
  ``tests/services/test_rollups.py`` recounts from scratch after random histories to prove it.

The funnel lags the sends by at most the job's interval (10 s).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row, bindparam, delete, select, text, update
from sqlalchemy.dialects import sqlite

from orchestrator.analytics.counters import (
    COUNTERS,
    JOURNEY_ROW,
    counted_outcome,
    enrollment_bits,
    enrollment_counts,
    language,
    local_day,
    send_counts,
    skip_kind,
)
from orchestrator.db.models import UNCOUNTED_ENROLLMENT_SQL, UNCOUNTED_SEND_SQL
from orchestrator.db.tables import analytics_daily, customers, enrollments, scheduled_sends
from orchestrator.journeys.states import SendState

_SENDS = scheduled_sends
_ENROLLMENTS = enrollments
_DAILY = analytics_daily
Key = tuple[str, date, str, str, str]  # journey, day, step, tier, language


@dataclass
class CountReport:
    """What one pass counted."""

    sends: int = 0
    enrollments: int = 0
    rollup_rows: int = 0

    @property
    def rows(self) -> int:
        return self.sends + self.enrollments

    def add(self, other: CountReport) -> None:
        self.sends += other.sends
        self.enrollments += other.enrollments
        self.rollup_rows += other.rollup_rows


class _Deltas:
    """Counter changes per rollup row, added up before anything is written."""

    def __init__(self) -> None:
        self.rows: dict[Key, Counter[str]] = {}

    def add(self, key: Key, counts: Mapping[str, int], sign: int) -> None:
        if counts:
            row = self.rows.setdefault(key, Counter())
            for name, value in counts.items():
                row[name] += sign * value

    def nonzero(self) -> list[tuple[Key, Counter[str]]]:
        return sorted(  # one order for every writer: two passes cannot deadlock
            (key, row) for key, row in self.rows.items() if any(row.values())
        )


def count_changes(connection: Connection, zone: ZoneInfo, limit: int = 2000) -> CountReport:
    """Count up to ``limit`` uncounted sends and as many enrollments, in the caller's
    transaction; a report of zero rows means everything is counted."""
    deltas = _Deltas()
    sends = _uncounted(connection, _SENDS, UNCOUNTED_SEND_SQL, _SEND_COLUMNS, limit)
    enrolled = _uncounted(connection, _ENROLLMENTS, UNCOUNTED_ENROLLMENT_SQL, _ENR_COLUMNS, limit)
    stamps = _customer_stamps(connection, [*sends, *enrolled])
    send_marks = [_count_send(row, stamps, zone, deltas) for row in sends]
    enrollment_marks = [_count_enrollment(row, stamps, zone, deltas) for row in enrolled]
    written = apply_deltas(connection, deltas)
    _mark(connection, _SENDS, send_marks)
    _mark(connection, _ENROLLMENTS, enrollment_marks)
    return CountReport(len(sends), len(enrolled), written)


_SEND_COLUMNS = (
    "id",
    "customer_id",
    "journey_id",
    "step_id",
    "state",
    "reason",
    "sent_at",
    "updated_at",
    "engagement",
    "counted_state",
    "counted_engagement",
    "stat_day",
    "stat_tier",
    "stat_locale",
    "stat_kind",
)
_ENR_COLUMNS = (
    "id",
    "customer_id",
    "journey_id",
    "state",
    "created_at",
    "counted",
    "stat_day",
    "stat_tier",
    "stat_locale",
)


def _uncounted(
    connection: Connection, table: Any, predicate: str, columns: Sequence[str], limit: int
) -> list[Row[Any]]:
    """The uncounted rows, oldest first, through the partial index; locked, skipping rows
    another transaction holds (a worker mid-write, or a concurrent pass)."""
    query = (
        select(*(table.c[name] for name in columns))
        .where(text(predicate))
        .order_by(table.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(connection.execute(query))


def _customer_stamps(
    connection: Connection, rows: Iterable[Row[Any]]
) -> dict[int, tuple[str, str]]:
    """Tier and language now, for the rows not stamped yet (counted for the first time)."""
    ids = {row.customer_id for row in rows if row.stat_tier is None}
    if not ids:
        return {}
    found = connection.execute(
        select(customers.c.id, customers.c.tier, customers.c.locale).where(customers.c.id.in_(ids))
    )
    return {row.id: (row.tier, language(row.locale)) for row in found}


def _stamp(row: Row[Any], stamps: Mapping[int, tuple[str, str]]) -> tuple[str, str]:
    if row.stat_tier is not None and row.stat_locale is not None:
        return row.stat_tier, row.stat_locale
    return stamps.get(row.customer_id, ("?", "?"))


def _count_send(
    row: Row[Any], stamps: Mapping[int, tuple[str, str]], zone: ZoneInfo, deltas: _Deltas
) -> dict[str, Any]:
    outcome = counted_outcome(row.state)
    kind = skip_kind(row.reason) if outcome == SendState.SKIPPED else None
    # The day its outcome was decided: a sent mail's sending, else the row's last change (what
    # becomes of a mail, its engagement, never moves ``updated_at``), so a recount from the row
    # alone always finds the same day: the incremental count and a rebuild agree.
    if not outcome:
        day = None
    elif outcome == SendState.SENT and row.sent_at is not None:
        day = local_day(row.sent_at, zone)
    else:
        day = local_day(row.updated_at, zone)
    tier, locale = _stamp(row, stamps)
    if row.counted_state:
        old_key = (row.journey_id, row.stat_day, row.step_id, row.stat_tier, row.stat_locale)
        old = send_counts(row.counted_state, row.stat_kind, row.counted_engagement)
        deltas.add(old_key, old, -1)
    if day is not None:
        new = send_counts(outcome, kind, row.engagement)
        deltas.add((row.journey_id, day, row.step_id, tier, locale), new, +1)
    return {
        "b_id": row.id,
        "counted_state": outcome,
        "counted_engagement": row.engagement,
        "stat_day": day,
        "stat_tier": tier,
        "stat_locale": locale,
        "stat_kind": kind,
    }


def _count_enrollment(
    row: Row[Any], stamps: Mapping[int, tuple[str, str]], zone: ZoneInfo, deltas: _Deltas
) -> dict[str, Any]:
    tier, locale = _stamp(row, stamps)
    day = row.stat_day if row.counted and row.stat_day else local_day(row.created_at, zone)
    if row.counted:
        old_key = (row.journey_id, row.stat_day, JOURNEY_ROW, row.stat_tier, row.stat_locale)
        deltas.add(old_key, enrollment_counts(row.counted), -1)
    bits = enrollment_bits(row.state)
    deltas.add((row.journey_id, day, JOURNEY_ROW, tier, locale), enrollment_counts(bits), +1)
    return {
        "b_id": row.id,
        "counted": bits,
        "stat_day": day,
        "stat_tier": tier,
        "stat_locale": locale,
    }


def apply_deltas(connection: Connection, deltas: _Deltas) -> int:
    """Add the changes to their rollup rows (created at zero when new), in one statement
    (PostgreSQL: the rows as arrays, ``unnest``-ed); returns how many rows."""
    rows = [
        {
            "journey_id": key[0],
            "day": key[1],
            "step_id": key[2],
            "tier": key[3],
            "locale": key[4],
            **{name: change.get(name, 0) for name in COUNTERS},
        }
        for key, change in deltas.nonzero()
    ]
    if not rows:
        return 0
    if connection.dialect.name == "postgresql":
        arrays = {name: [row[name] for row in rows] for name in _KEYS + COUNTERS}
        connection.execute(_PG_UPSERT, arrays)
    else:
        connection.execute(_sqlite_upsert(), rows)
    return len(rows)


_KEYS = ("journey_id", "day", "step_id", "tier", "locale")
_KEY_TYPES = ("text", "date", "text", "text", "text")
# One statement whatever the number of rows: its text never changes, so it is parsed once.
_PG_UPSERT = text(
    f"INSERT INTO analytics_daily ({', '.join(_KEYS + COUNTERS)}) "  # noqa: S608 (constants)
    "SELECT * FROM unnest("
    + ", ".join(
        [f"CAST(:{k} AS {t}[])" for k, t in zip(_KEYS, _KEY_TYPES, strict=True)]
        + [f"CAST(:{name} AS integer[])" for name in COUNTERS]
    )
    + f") ON CONFLICT ({', '.join(_KEYS)}) DO UPDATE SET "
    + ", ".join(f"{name} = analytics_daily.{name} + excluded.{name}" for name in COUNTERS)
)


def _sqlite_upsert() -> Any:
    statement = sqlite.insert(_DAILY)
    return statement.on_conflict_do_update(
        index_elements=list(_KEYS),
        set_={name: _DAILY.c[name] + statement.excluded[name] for name in COUNTERS},
    )


_MARK_TYPES = {
    "counted_state": "text",
    "counted_engagement": "integer",
    "counted": "integer",
    "stat_day": "date",
    "stat_tier": "text",
    "stat_locale": "text",
    "stat_kind": "text",
}


def _mark(connection: Connection, table: Any, marks: Sequence[dict[str, Any]]) -> None:
    """Write what each row now counts for. PostgreSQL: one ``UPDATE … FROM unnest(…)``;
    SQLite (in-process, no round trips): one compiled UPDATE, run for each row."""
    if not marks:
        return
    names = [name for name in marks[0] if name != "b_id"]  # this module's own column names
    if connection.dialect.name == "postgresql":
        arrays = ", ".join(f"CAST(:{n} AS {_MARK_TYPES[n]}[])" for n in names)
        by_arrays = text(
            f"UPDATE {table.name} SET {', '.join(f'{n} = m.{n}' for n in names)} "  # noqa: S608
            f"FROM unnest(CAST(:b_id AS integer[]), {arrays}) AS m(b_id, {', '.join(names)}) "
            f"WHERE {table.name}.id = m.b_id"
        )
        connection.execute(by_arrays, {k: [mark[k] for mark in marks] for k in ("b_id", *names)})
        return
    statement = (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values({name: bindparam(f"m_{name}", type_=table.c[name].type) for name in names})
    )
    params = [{f"m_{k}" if k != "b_id" else k: v for k, v in mark.items()} for mark in marks]
    connection.execute(statement, params)


def uncount_since(connection: Connection, since: date | None, after_id: int, limit: int) -> int:
    """For a rebuild: forget what up to ``limit`` counted sends with an id above ``after_id``
    count for on days from ``since`` (all days: None), so the next passes count them again
    under today's rules; returns the last id looked at (0: none were left)."""
    return _uncount(
        connection,
        _SENDS,
        {"counted_state": "", "counted_engagement": 0},
        _SENDS.c.counted_state != "",
        since,
        after_id,
        limit,
    )


def uncount_enrollments_since(
    connection: Connection, since: date | None, after_id: int, limit: int
) -> int:
    return _uncount(
        connection,
        _ENROLLMENTS,
        {"counted": 0},
        _ENROLLMENTS.c.counted != 0,
        since,
        after_id,
        limit,
    )


def _uncount(
    connection: Connection,
    table: Any,
    values: dict[str, Any],
    counted: Any,
    since: date | None,
    after_id: int,
    limit: int,
) -> int:
    chosen = select(table.c.id).where(table.c.id > after_id, counted).order_by(table.c.id)
    if since is not None:
        chosen = chosen.where(table.c.stat_day >= since)
    ids = list(connection.execute(chosen.limit(limit).with_for_update()).scalars())
    if ids:
        connection.execute(update(table).where(table.c.id.in_(ids)).values(values))
    return ids[-1] if ids else 0


def clear_rollups_since(connection: Connection, since: date | None) -> int:
    """Delete the rollup rows from ``since`` on (all: None), once their rows are uncounted."""
    statement = delete(_DAILY)
    if since is not None:
        statement = statement.where(_DAILY.c.day >= since)
    return int(connection.execute(statement).rowcount)
