"""The health-band distribution, kept as snapshots: no page view counts the customers.

The scheduler counts the customers per band every five minutes (one pass over the table: the
band has no index, so that a score changing it stays on its page, migration 0015) and keeps the
count as today's rows of ``health_band_daily``, with the moment it was taken; a day keeps its
last count. The overview shows the latest day's rows as
the bands "now" (:func:`latest_bands`) and the days of its range as the trend.

An install that upgrades has no trend before its first snapshot, so the first run backfills
it from ``health_score_history`` (:func:`backfill_from_history`): for every day from the first
score on, each customer's band as it stood at the day's end (a customer not scored yet counts
as ``''``, from the day it was created), for the days before the earliest snapshot; those rows
have no ``taken_at``. With no score history the trend starts on the day of the upgrade.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, delete, func, insert, select, text

from orchestrator.analytics.counting_sql import Dialect, register_sqlite_functions
from orchestrator.db.tables import customers, health_band_daily

UNSCORED = ""  # the band of customers without a health score yet
_DAILY = health_band_daily


def count_bands(connection: Connection) -> dict[str, int]:
    """Customers per band right now: the scan the snapshot exists to keep off page views."""
    rows = connection.execute(
        select(customers.c.health_band, func.count()).group_by(customers.c.health_band)
    )
    return {band or UNSCORED: int(count) for band, count in rows}


def snapshot_bands(connection: Connection, day: date, now: datetime) -> dict[str, int]:
    """Count the bands now and make it ``day``'s rows (a band that emptied loses its row)."""
    bands = count_bands(connection)
    connection.execute(delete(_DAILY).where(_DAILY.c.day == day))
    rows = [
        {"day": day, "band": band[:20], "customers": count, "taken_at": now}
        for band, count in bands.items()
    ]
    if rows:
        connection.execute(insert(_DAILY), rows)
    return bands


def latest_bands(connection: Connection) -> tuple[dict[str, int], datetime | None]:
    """The latest day's count and when it was taken (empty, None: none taken yet)."""
    latest = select(func.max(_DAILY.c.day)).scalar_subquery()
    rows = list(connection.execute(select(_DAILY).where(_DAILY.c.day == latest)))
    taken = max((row.taken_at for row in rows if row.taken_at is not None), default=None)
    return {row.band: row.customers for row in rows if row.customers}, taken


def band_trend(
    connection: Connection, date_from: date, date_to: date
) -> dict[date, dict[str, int]]:
    rows = connection.execute(
        select(_DAILY)
        .where(_DAILY.c.day >= date_from, _DAILY.c.day <= date_to)
        .order_by(_DAILY.c.day, _DAILY.c.band)
    )
    trend: dict[date, dict[str, int]] = {}
    for row in rows:
        trend.setdefault(row.day, {})[row.band] = row.customers
    return trend


def backfill_from_history(connection: Connection, zone: ZoneInfo, today: date) -> int:
    """Write the trend's days before the earliest snapshot (or ``today``) from the score
    history; returns how many days were written (0: no history before then)."""
    earliest = connection.execute(select(func.min(_DAILY.c.day))).scalar()
    until = min(earliest, today) if earliest is not None else today
    moves = _moves_per_day(connection, zone)
    scored = [day for day, band, _ in moves if band != UNSCORED]
    if not scored or min(scored) >= until:
        return 0
    days = _running_counts(moves, min(scored), until)
    rows = [
        {"day": day, "band": band[:20], "customers": count, "taken_at": None}
        for day, counts in days
        for band, count in sorted(counts.items())
        if count > 0
    ]
    if rows:
        connection.execute(insert(_DAILY), rows)
    return len(days)


def _moves_per_day(connection: Connection, zone: ZoneInfo) -> list[tuple[date, str, int]]:
    """How each band's count moved per day: +1 for the band a customer entered, -1 for the
    one it left (a first score leaves ''), +1 '' for each customer created."""
    dialect = Dialect(connection.dialect.name)
    if connection.dialect.name == "sqlite":
        register_sqlite_functions(connection.connection.driver_connection)
    day = dialect.local_day
    statement = text(
        "WITH changes AS (SELECT computed_at, band, lag(band) OVER "  # noqa: S608 (constants)
        "(PARTITION BY customer_id ORDER BY computed_at, id) AS left_band "
        "FROM health_score_history), "
        "moved AS (SELECT computed_at, band, coalesce(left_band, '') AS left_band FROM changes "
        "WHERE left_band IS NULL OR left_band <> band) "
        f"SELECT {day('computed_at')} AS day, band, 1 AS delta FROM moved "
        f"UNION ALL SELECT {day('computed_at')}, left_band, -1 FROM moved "
        f"UNION ALL SELECT {day('created_at')}, '', 1 FROM customer"
    )
    grouped = text(f"SELECT day, band, sum(delta) FROM ({statement.text}) AS m GROUP BY day, band")  # noqa: S608
    result = connection.execute(grouped, {"zone": zone.key})
    return [(_as_date(row[0]), str(row[1]), int(row[2])) for row in result if row[2]]


def _running_counts(
    moves: Iterable[tuple[date, str, int]], first: date, until: date
) -> list[tuple[date, dict[str, int]]]:
    """Each day's counts from ``first`` up to (not including) ``until``."""
    per_day: dict[date, Counter[str]] = {}
    for day, band, delta in moves:
        per_day.setdefault(day, Counter())[band] += delta
    counts: Counter[str] = Counter()
    for day in sorted(d for d in per_day if d < first):
        counts.update(per_day[day])
    days = []
    day = first
    while day < until:
        counts.update(per_day.get(day, Counter()))
        days.append((day, dict(counts)))
        day += timedelta(days=1)
    return days


def _as_date(value: object) -> date:
    """A day as the database hands it back (SQLite: the text the day function returned)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))
