"""The overview: mails per day (from the rollups), the backlog by state right now, how late
the oldest due row is, open CSM tasks, and the health bands now and day by day.

Each number comes from an index: the rollups' ``day`` index, the scheduler's partial index of
rows still to go (``WAKEABLE_SQL``), the partial index of sends whose outcome is unknown,
``csm_task (status, due_at)`` and the band snapshots (:mod:`orchestrator.analytics.bands`: the
latest is "now", at most a few minutes old), so the page costs the same at ten million sends
and a million customers. ``failed`` is read from the rollups (all days): the rows counted in
that state, exact up to the rollup job's lag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select, text

from orchestrator.analytics.bands import band_trend, latest_bands
from orchestrator.db.models import UNCOUNTED_SEND_SQL, UNKNOWN_SEND_SQL, WAKEABLE_SQL
from orchestrator.db.tables import analytics_daily, csm_tasks, scheduled_sends
from orchestrator.journeys.states import ACTIVE_SEND_STATES

_DAILY = analytics_daily
_SENDS = scheduled_sends
DAY_COUNTERS = ("sent", "delivered", "opened", "clicked", "bounced", "unsubscribed", "converted")
PENDING_SAMPLE = 10_001  # uncounted rows are counted up to this (a backlog, not a census)


@dataclass(frozen=True)
class DayActivity:
    """What the mails sent on one day did (engagement counted under the day they were sent)."""

    day: date
    sent: int
    delivered: int
    opened: int
    clicked: int
    bounced: int
    unsubscribed: int
    converted: int


@dataclass(frozen=True)
class Backlog:
    """Rows by state right now: still to go (pending, dispatched, sending, stalled,
    reconciling) and those waiting for a person or a fix (unknown, failed)."""

    pending: int
    dispatched: int
    sending: int
    stalled: int
    reconciling: int
    unknown: int
    failed: int
    due_now: int  # still to go and due already (wake time passed)
    oldest_due_at: datetime | None
    due_lag_seconds: float  # how long the oldest due row has waited (0: none waits)


@dataclass(frozen=True)
class BandDay:
    day: date
    customers: dict[str, int]  # band ('' for not scored yet) → customers


@dataclass(frozen=True)
class Overview:
    date_from: date
    date_to: date
    timezone: str
    days: tuple[DayActivity, ...]
    backlog: Backlog
    open_tasks: int
    overdue_tasks: int
    bands: dict[str, int]  # the latest snapshot ('' for not scored yet)
    bands_as_of: datetime | None  # when it was taken (None: none yet, or backfilled)
    band_trend: tuple[BandDay, ...]  # the daily snapshots in the range
    uncounted: int  # sends and enrollments the rollup job has not counted yet (capped)
    as_of: datetime


def read_overview(
    connection: Connection, date_from: date, date_to: date, now: datetime, timezone: str
) -> Overview:
    open_tasks, overdue = _tasks(connection, now)
    bands, bands_as_of = latest_bands(connection)
    trend = band_trend(connection, date_from, date_to)
    return Overview(
        date_from=date_from,
        date_to=date_to,
        timezone=timezone,
        days=_days(connection, date_from, date_to),
        backlog=_backlog(connection, now),
        open_tasks=open_tasks,
        overdue_tasks=overdue,
        bands=bands,
        bands_as_of=bands_as_of,
        band_trend=tuple(BandDay(day, counts) for day, counts in trend.items()),
        uncounted=_uncounted(connection),
        as_of=now,
    )


def _days(connection: Connection, date_from: date, date_to: date) -> tuple[DayActivity, ...]:
    rows = connection.execute(
        select(_DAILY.c.day, *(func.sum(_DAILY.c[name]).label(name) for name in DAY_COUNTERS))
        .where(_DAILY.c.day >= date_from, _DAILY.c.day <= date_to)
        .group_by(_DAILY.c.day)
    )
    found: dict[date, Mapping[Any, Any]] = {row.day: row._mapping for row in rows}
    days = []
    day = date_from
    while day <= date_to:
        values: Mapping[Any, Any] = found.get(day, {})
        days.append(DayActivity(day, *(int(values.get(name) or 0) for name in DAY_COUNTERS)))
        day += timedelta(days=1)
    return tuple(days)


def _backlog(connection: Connection, now: datetime) -> Backlog:
    states: dict[str, int] = dict(
        connection.execute(
            select(_SENDS.c.state, func.count()).where(text(WAKEABLE_SQL)).group_by(_SENDS.c.state)
        ).all()
    )
    oldest = connection.execute(
        select(func.min(_SENDS.c.wake_at)).select_from(_SENDS).where(text(WAKEABLE_SQL))
    ).scalar()
    due_now = connection.execute(
        select(func.count()).select_from(_SENDS).where(text(WAKEABLE_SQL), _SENDS.c.wake_at <= now)
    ).scalar_one()
    unknown = connection.execute(
        select(func.count()).select_from(_SENDS).where(text(UNKNOWN_SEND_SQL))
    ).scalar_one()
    failed = connection.execute(select(func.sum(_DAILY.c.failed))).scalar()
    waiting = oldest is not None and oldest <= now
    return Backlog(
        **{state.value: int(states.get(state.value, 0)) for state in ACTIVE_SEND_STATES},
        unknown=int(unknown),
        failed=int(failed or 0),
        due_now=int(due_now),
        oldest_due_at=oldest if waiting else None,
        due_lag_seconds=(now - oldest).total_seconds() if waiting and oldest else 0.0,
    )


def _tasks(connection: Connection, now: datetime) -> tuple[int, int]:
    open_tasks = csm_tasks.c.status == "open"
    count = connection.execute(
        select(func.count()).select_from(csm_tasks).where(open_tasks)
    ).scalar_one()
    overdue = connection.execute(
        select(func.count()).select_from(csm_tasks).where(open_tasks, csm_tasks.c.due_at < now)
    ).scalar_one()
    return int(count), int(overdue)


def _uncounted(connection: Connection) -> int:
    sample = select(_SENDS.c.id).where(text(UNCOUNTED_SEND_SQL)).limit(PENDING_SAMPLE).subquery()
    return int(connection.execute(select(func.count()).select_from(sample)).scalar_one())
