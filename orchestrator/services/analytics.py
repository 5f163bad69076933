"""Journey analytics for the console and the read API: funnels (JSON and CSV), the overview,
the list of journeys, a customer's page and their sends; and the jobs that keep the numbers:
the rollup job (every 10 s, from the rows that changed), its rebuild, and the snapshot of the
health bands (every five minutes; backfilled once from the score history).

Reads open one connection and never scan the sends (:mod:`orchestrator.analytics`). The
numbers are the rollups': they lag the sends by the rollup job's interval.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select

from orchestrator.analytics.bands import backfill_from_history, snapshot_bands
from orchestrator.analytics.counters import JOURNEY_ROW, local_day
from orchestrator.analytics.customers import (
    CustomerDetail,
    SendSummary,
    customer_detail,
    customer_sends,
)
from orchestrator.analytics.funnel import Funnel, funnel_csv, read_funnel
from orchestrator.analytics.overview import Overview, read_overview
from orchestrator.analytics.rollups import (
    CountReport,
    clear_rollups_since,
    count_changes,
    uncount_enrollments_since,
    uncount_since,
)
from orchestrator.clock import Clock
from orchestrator.db.tables import analytics_daily
from orchestrator.errors import InvalidRequest, JobAlreadyRunning, JourneyNotFound
from orchestrator.guards.cursors import Page, decode_cursor, encode_cursor, page_of
from orchestrator.journeys.model import Journey
from orchestrator.scheduling.periodic import claim_window, finish_window

__all__ = [
    "AnalyticsRules",
    "CountReport",
    "CustomerDetail",
    "Funnel",
    "JourneySummary",
    "Overview",
    "SendSummary",
    "customer_page",
    "customer_sends_page",
    "journey_funnel",
    "journey_funnel_csv",
    "journey_list",
    "overview",
    "rebuild_rollups",
    "refresh_band_snapshot",
    "refresh_rollups",
    "run_rollups_if_due",
    "snapshot_bands_if_due",
]
log = logging.getLogger(__name__)

ROLLUPS = "analytics-rollups"
ROLLUPS_EVERY = timedelta(seconds=10)
ROLLUPS_CLAIM = timedelta(minutes=10)  # a pass whose process died is taken over after this
BANDS = "health-bands"
BANDS_EVERY = timedelta(minutes=5)  # how old the overview's "bands now" may be
BANDS_BACKFILL = "health-bands-backfill"
ONCE = timedelta(days=36500)  # a watermark a century wide: the backfill runs once per install
MAX_RANGE_DAYS = 366
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2999, 12, 31)
DEFAULT_RANGE_DAYS = 30
BATCH = 10_000  # rows per counting transaction (locked for a fraction of a second)
BATCHES_PER_RUN = 50  # a periodic run counts at most this many batches (500,000 rows)
RECENT_DAYS = 30  # the journey list's numbers


@dataclass(frozen=True)
class AnalyticsRules:
    """The journeys, the time zone whose days the numbers are counted in, the attribution
    window (shown with a funnel), and how long the message archive keeps a mail."""

    journeys: Mapping[str, Journey]
    timezone: str
    attribution_window: timedelta = timedelta(days=7)
    archive_retention: timedelta = timedelta(days=90)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class JourneySummary:
    """A journey as the list shows it, with its last 30 days (enrollments begun, mails sent,
    conversions of those enrollments)."""

    id: str
    name: str
    description: str
    trigger: str
    goal: str | None
    steps: tuple[str, ...]
    track_clicks: bool
    enrolled_30d: int
    sent_30d: int
    converted_30d: int


# -- reads -----------------------------------------------------------------------------------


def date_range(
    rules: AnalyticsRules, now: datetime, date_from: date | None, date_to: date | None
) -> tuple[date, date]:
    """The range asked for, defaults filled in (the 30 days up to today), checked: InvalidRequest
    naming ``from`` or ``to`` when it is reversed or longer than 366 days."""
    for name, day in (("from", date_from), ("to", date_to)):
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            raise _bad_query(name, f"must be between {FIRST_DAY} and {LAST_DAY}")
    end = date_to or local_day(now, rules.zone)
    start = date_from or end - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if start > end:
        raise _bad_query("from", "must not be after `to`")
    if (end - start).days >= MAX_RANGE_DAYS:
        raise _bad_query("to", f"a range is at most {MAX_RANGE_DAYS} days")
    return start, end


def journey_funnel(
    engine: Engine,
    journey_id: str,
    date_from: date | None = None,
    date_to: date | None = None,
    *,
    tier: str | None = None,
    locale: str | None = None,
    rules: AnalyticsRules,
    clock: Clock,
) -> Funnel:
    """The journey's funnel per step × tier × language over the days ``[from, to]`` (the
    analytics time zone's). JourneyNotFound; InvalidRequest for a bad range."""
    journey = rules.journeys.get(journey_id)
    if journey is None:
        raise JourneyNotFound(f"no journey {journey_id!r}")
    start, end = date_range(rules, clock.now(), date_from, date_to)
    with engine.connect() as connection:
        return read_funnel(
            connection,
            journey,
            start,
            end,
            tier=tier,
            locale=locale,
            timezone=rules.timezone,
            attribution_window_days=rules.attribution_window.days,
        )


def journey_funnel_csv(
    engine: Engine,
    journey_id: str,
    date_from: date | None = None,
    date_to: date | None = None,
    *,
    tier: str | None = None,
    locale: str | None = None,
    rules: AnalyticsRules,
    clock: Clock,
) -> str:
    """The same funnel as CSV (one line per step, tier and language, and per step's total)."""
    funnel = journey_funnel(
        engine, journey_id, date_from, date_to, tier=tier, locale=locale, rules=rules, clock=clock
    )
    return funnel_csv(funnel)


def overview(
    engine: Engine,
    date_from: date | None = None,
    date_to: date | None = None,
    *,
    rules: AnalyticsRules,
    clock: Clock,
) -> Overview:
    """Mails per day, the backlog now, due lag, open tasks, health bands and their trend."""
    now = clock.now()
    start, end = date_range(rules, now, date_from, date_to)
    with engine.connect() as connection:
        return read_overview(connection, start, end, now, rules.timezone)


def journey_list(
    engine: Engine,
    *,
    rules: AnalyticsRules,
    clock: Clock,
    cursor: str | None = None,
    limit: int = 100,
) -> Page[JourneySummary]:
    """The loaded journeys by id, with their last 30 days; a page at a time."""
    after = str(decode_cursor("journeys", cursor, (str,))[0]) if cursor else ""
    chosen = sorted(j for j in rules.journeys if j > after)[: limit + 1]
    shown, last = page_of(chosen, limit)
    end = local_day(clock.now(), rules.zone)
    recent = _recent_totals(engine, end - timedelta(days=RECENT_DAYS - 1), end, shown)
    items = [_summary(rules.journeys[j], recent.get(j, (0, 0, 0))) for j in shown]
    return Page(items, None if last is None else encode_cursor("journeys", [last]))


def _recent_totals(
    engine: Engine, start: date, end: date, journey_ids: list[str]
) -> dict[str, tuple[int, int, int]]:
    if not journey_ids:
        return {}
    daily = analytics_daily
    journey_row = daily.c.step_id == JOURNEY_ROW
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                daily.c.journey_id,
                func.sum(daily.c.enrolled),
                func.sum(daily.c.sent),
                func.sum(daily.c.converted).filter(journey_row),
            )
            .where(daily.c.day >= start, daily.c.day <= end, daily.c.journey_id.in_(journey_ids))
            .group_by(daily.c.journey_id)
        )
        return {row[0]: (int(row[1] or 0), int(row[2] or 0), int(row[3] or 0)) for row in rows}


def _summary(journey: Journey, recent: tuple[int, int, int]) -> JourneySummary:
    trigger: str
    if isinstance(journey.trigger, str):
        trigger = journey.trigger
    else:  # an event, or a list of events (any of them enters)
        trigger = ", ".join(match.event for match in journey.trigger_events)
    return JourneySummary(
        id=journey.id,
        name=journey.name,
        description=journey.description,
        trigger=trigger,
        goal=journey.goal.event if journey.goal is not None else None,
        steps=tuple(step.id for step in journey.steps),
        track_clicks=journey.track_clicks,
        enrolled_30d=recent[0],
        sent_30d=recent[1],
        converted_30d=recent[2],
    )


def customer_page(engine: Engine, external_id: str, *, rules: AnalyticsRules) -> CustomerDetail:
    """Profile, tier, health and every enrollment with its steps. CustomerNotFound."""
    with engine.connect() as connection:
        return customer_detail(connection, external_id, rules.journeys)


def customer_sends_page(
    engine: Engine, external_id: str, *, cursor: str | None = None, limit: int = 50
) -> Page[SendSummary]:
    """The customer's sends, latest due first. CustomerNotFound; InvalidRequest for a cursor
    that is not one of this list's."""
    after = None
    if cursor:
        due, send_id = decode_cursor("sends", cursor, (datetime, int))
        assert isinstance(due, datetime) and isinstance(send_id, int)
        after = (due, send_id)
    with engine.connect() as connection:
        found = customer_sends(connection, external_id, after=after, limit=limit + 1)
    shown, last = page_of(found, limit)
    next_cursor = None if last is None else encode_cursor("sends", [last.due_at, last.id])
    return Page(shown, next_cursor)


# -- keeping the numbers ---------------------------------------------------------------------


def refresh_rollups(
    engine: Engine, *, rules: AnalyticsRules, batches: int | None = BATCHES_PER_RUN
) -> CountReport:
    """Count what changed, a batch per transaction, until nothing is left (or ``batches``
    batches ran: None, no limit). A pass walks the ids upwards: a row that changes behind it,
    or that a worker held locked, is counted by the next pass."""
    report = CountReport()
    done = 0
    while batches is None or done < batches:
        with engine.begin() as connection:  # each batch picks up where the last one ended
            one = count_changes(
                connection,
                rules.zone,
                BATCH,
                after_send=report.last_send_id,
                after_enrollment=report.last_enrollment_id,
            )
        report.add(one)
        done += 1
        if one.rows == 0:
            break
    return report


def run_rollups_if_due(
    engine: Engine, *, rules: AnalyticsRules, now: datetime
) -> CountReport | None:
    """The periodic job: every 10 s, one scheduler counts what changed. None: not due, or
    another process has it."""
    window = claim_window(engine, ROLLUPS, ROLLUPS_EVERY, now, ROLLUPS_CLAIM)
    if window is None:
        return None
    try:
        report = refresh_rollups(engine, rules=rules)
    finally:
        finish_window(engine, ROLLUPS, window)
    if report.rows:
        log.info("rollups: counted %d sends, %d enrollments", report.sends, report.enrollments)
    return report


def rebuild_rollups(
    engine: Engine, *, rules: AnalyticsRules, clock: Clock, since: date | None = None
) -> CountReport:
    """``stepmail analytics rebuild``: count every row again under today's rules (from the
    day ``since`` on; None: everything), then count what is uncounted (rows from before
    analytics existed). Holds the rollup job's claim throughout, so no periodic pass runs
    meanwhile; JobAlreadyRunning when another process holds it. Funnels are incomplete while
    it runs."""
    now = clock.now()
    window = claim_window(engine, ROLLUPS, timedelta(0), now, timedelta(hours=6))
    if window is None:
        raise JobAlreadyRunning("the rollup job is running right now; try again in a minute")
    try:
        for uncount in (uncount_since, uncount_enrollments_since):
            after = 0
            while True:
                with engine.begin() as connection:
                    after = uncount(connection, since, after, BATCH)
                if after == 0:
                    break
        with engine.begin() as connection:
            clear_rollups_since(connection, since)
        return refresh_rollups(engine, rules=rules, batches=None)
    finally:
        finish_window(engine, ROLLUPS, window)


def snapshot_bands_if_due(
    engine: Engine, *, rules: AnalyticsRules, now: datetime
) -> dict[str, int] | None:
    """The periodic job: every five minutes, the customers per health band, kept as today's
    snapshot (the overview's bands now and its trend); on its first run, the trend's earlier
    days from the score history. None: not due, or another process has it."""
    window = claim_window(engine, BANDS, BANDS_EVERY, now, timedelta(hours=1))
    if window is None:
        return None
    try:
        _backfill_once(engine, rules, now)
        return refresh_band_snapshot(engine, rules=rules, now=now)
    finally:
        finish_window(engine, BANDS, window)


def refresh_band_snapshot(
    engine: Engine, *, rules: AnalyticsRules, now: datetime
) -> dict[str, int]:
    """Count the customers per band now and keep it as today's snapshot."""
    with engine.begin() as connection:
        return snapshot_bands(connection, local_day(now, rules.zone), now)


def _backfill_once(engine: Engine, rules: AnalyticsRules, now: datetime) -> None:
    window = claim_window(engine, BANDS_BACKFILL, ONCE, now, timedelta(hours=1))
    if window is None:
        return
    try:
        with engine.begin() as connection:
            days = backfill_from_history(connection, rules.zone, local_day(now, rules.zone))
        if days:
            log.info("health bands: the trend's %d days before the first snapshot backfilled", days)
    except Exception:
        finish_window(engine, BANDS_BACKFILL, replace(window, until=window.since))  # retried
        raise
    finish_window(engine, BANDS_BACKFILL, window)


def _bad_query(name: str, message: str) -> InvalidRequest:
    return InvalidRequest([{"type": "value_error", "loc": ["query", name], "msg": message}])
