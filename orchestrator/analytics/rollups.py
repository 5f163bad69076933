"""The daily rollups, kept from the rows that changed: never a scan of all sends.

Every ``scheduled_send`` row remembers what the rollups hold of it (``counted_state``,
``counted_engagement`` and the ``stat_*`` day, tier, language and skip kind it is counted
under). A row whose outcome or engagement moved since is *uncounted*, and a partial index
holds exactly those rows (``UNCOUNTED_SEND_SQL``), so finding them costs what changed. The
same goes for enrollments (enrolled, converted, and the journey version each started on:
``journey_version_starts``).

:func:`count_changes` takes a batch of them above an id, locked (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL), adds ``new - old`` of each to its rollup row, added up per row first (one row
per journey, step, tier, language and day, not per mail), and marks them counted, in the
caller's transaction: the database does it, set-based (:mod:`counting_sql`). So:

- nothing on the send path writes a rollup, and no worker waits on a hot counter row: the
  periodic job (:func:`orchestrator.services.analytics.refresh_rollups`) is the only writer,
  one batch at a time;
- every state change is seen, by whichever code path made it (a settled unknown send, a
  resent failed one, a cancellation), because the row itself says it is uncounted;
- the rollups always equal the sum of what the rows say they count for, after every commit
  (a pass that dies leaves nothing: its transaction rolls back, rows stay uncounted);
  ``tests/services/test_rollups.py`` recounts from scratch after random histories to prove it.

The funnel lags the sends by at most the job's interval (10 s).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, delete, func, select, text, union_all, update

from orchestrator.analytics.counting_sql import counting_statements, register_sqlite_functions
from orchestrator.db.models import NOT_COUNTED_ENROLLMENT_SQL
from orchestrator.db.tables import (
    analytics_daily,
    enrollments,
    journey_version_starts,
    journey_versions,
    scheduled_sends,
)

_SENDS = scheduled_sends
_ENROLLMENTS = enrollments
_DAILY = analytics_daily
_STARTS = journey_version_starts
_VERSIONS = journey_versions


@dataclass
class CountReport:
    """What one pass counted, and the last id it counted of each table (where the next batch
    of the same pass starts)."""

    sends: int = 0
    enrollments: int = 0
    rollup_rows: int = 0
    last_send_id: int = 0
    last_enrollment_id: int = 0

    @property
    def rows(self) -> int:
        return self.sends + self.enrollments

    def add(self, other: CountReport) -> None:
        self.sends += other.sends
        self.enrollments += other.enrollments
        self.rollup_rows += other.rollup_rows
        self.last_send_id = max(self.last_send_id, other.last_send_id)
        self.last_enrollment_id = max(self.last_enrollment_id, other.last_enrollment_id)


def count_changes(
    connection: Connection,
    zone: ZoneInfo,
    limit: int = 2000,
    *,
    after_send: int = 0,
    after_enrollment: int = 0,
) -> CountReport:
    """Count up to ``limit`` uncounted sends with an id above ``after_send`` and as many
    enrollments above ``after_enrollment``, in the caller's transaction; a report of zero
    rows means none is left above those ids."""
    if connection.dialect.name == "sqlite":
        register_sqlite_functions(connection.connection.driver_connection)
    params = {"zone": zone.key, "limit": limit}
    sends, last_send, written = _count(connection, "scheduled_send", params, after_send)
    enrolled, last_enrollment, more = _count(connection, "enrollment", params, after_enrollment)
    return CountReport(
        sends,
        enrolled,
        written + more,
        max(last_send, after_send),
        max(last_enrollment, after_enrollment),
    )


def _count(
    connection: Connection, table: str, params: dict[str, Any], after: int
) -> tuple[int, int, int]:
    """Count one batch of ``table``: (rows counted, the last of their ids, rollup rows)."""
    statements = counting_statements(connection.dialect.name, table)
    bound = {**params, "after": after}
    if len(statements) == 1:  # PostgreSQL: all in one
        rows, last, written = connection.execute(text(statements[0]), bound).one()
        return int(rows), int(last), int(written)
    upsert, *more, mark = statements
    written = connection.execute(text(upsert), bound).rowcount
    if written < 0:  # Python's sqlite3 counts no rows for a statement that opens with WITH
        written = connection.execute(text("SELECT changes()")).scalar_one()
    for statement in more:
        connection.execute(text(statement), bound)
    ids = list(connection.execute(text(mark), bound).scalars())
    return len(ids), max(ids, default=0), int(written)


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
        _forget_version_starts,
    )


def _forget_version_starts(connection: Connection, ids: list[int]) -> None:
    """Take enrollments about to be counted again off their versions' starts (the next pass
    adds them back), so the starts stay exact through a rebuild."""
    version = _ENROLLMENTS.c.started_version_id
    starts = connection.execute(
        select(version, func.count())
        .where(_ENROLLMENTS.c.id.in_(ids), version.is_not(None))
        .group_by(version)
        .order_by(version)
    ).all()
    for version_id, forgotten in starts:
        connection.execute(
            update(_STARTS)
            .where(_STARTS.c.version_id == version_id)
            .values(enrollments=_STARTS.c.enrollments - forgotten)
        )


def _uncount(
    connection: Connection,
    table: Any,
    values: dict[str, Any],
    counted: Any,
    since: date | None,
    after_id: int,
    limit: int,
    before: Callable[[Connection, list[int]], None] | None = None,
) -> int:
    chosen = select(table.c.id).where(table.c.id > after_id, counted).order_by(table.c.id)
    if since is not None:
        chosen = chosen.where(table.c.stat_day >= since)
    ids = list(connection.execute(chosen.limit(limit).with_for_update()).scalars())
    if ids:
        if before is not None:
            before(connection, ids)
        connection.execute(update(table).where(table.c.id.in_(ids)).values(values))
    return ids[-1] if ids else 0


def clear_rollups_since(connection: Connection, since: date | None) -> int:
    """Delete the rollup rows from ``since`` on (all: None), once their rows are uncounted."""
    statement = delete(_DAILY)
    if since is not None:
        statement = statement.where(_DAILY.c.day >= since)
    return int(connection.execute(statement).rowcount)


def version_starts(connection: Connection, journey_id: str) -> dict[int, int]:
    """version id → enrollments that started on it, exact and live: the counted ones from
    ``journey_version_starts``, the rest through the partial index of enrollments never
    counted (those since the job's last pass), in one statement so a pass committing between
    two reads can neither hide nor double a row."""
    version = _ENROLLMENTS.c.started_version_id
    counted = select(_STARTS.c.version_id.label("version_id"), _STARTS.c.enrollments.label("n"))
    counted = counted.join_from(_STARTS, _VERSIONS, _VERSIONS.c.id == _STARTS.c.version_id).where(
        _VERSIONS.c.journey_id == journey_id
    )
    not_yet = (
        select(version.label("version_id"), func.count().label("n"))
        .where(
            text(NOT_COUNTED_ENROLLMENT_SQL),  # as its index says it, so the planner uses it
            _ENROLLMENTS.c.journey_id == journey_id,
            version.is_not(None),
        )
        .group_by(version)
    )
    both = union_all(counted, not_yet).subquery()
    rows = connection.execute(
        select(both.c.version_id, func.sum(both.c.n)).group_by(both.c.version_id)
    )
    return {int(version_id): int(n) for version_id, n in rows}
