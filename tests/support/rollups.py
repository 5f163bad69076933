"""The rollups as they stand, and what they should be: every row's own say, recounted from
scratch in Python with :mod:`orchestrator.analytics.counters` (the job counts in SQL)."""

from __future__ import annotations

from collections import Counter
from datetime import date

from sqlalchemy import select

from orchestrator.analytics.counters import (
    COUNTERS,
    JOURNEY_ROW,
    counted_outcome,
    enrollment_bits,
    enrollment_counts,
    local_day,
    send_counts,
    skip_kind,
)
from orchestrator.db.tables import analytics_daily, enrollments, scheduled_sends
from orchestrator.runtime import Runtime

Key = tuple[str, date, str, str, str]


def rollups(runtime: Runtime) -> dict[Key, dict[str, int]]:
    with runtime.engine.connect() as connection:
        rows = connection.execute(select(analytics_daily))
        found = {}
        for row in rows:
            values = {name: getattr(row, name) for name in COUNTERS if getattr(row, name)}
            if values:
                found[(row.journey_id, row.day, row.step_id, row.tier, row.locale)] = values
        return found


def recount(runtime: Runtime) -> dict[Key, dict[str, int]]:
    """What every row says it counts for, added up from scratch."""
    totals: dict[Key, Counter[str]] = {}
    zone = runtime.analytics_rules().zone
    with runtime.engine.connect() as connection:
        for row in connection.execute(select(scheduled_sends)):
            outcome = counted_outcome(row.state)
            if not outcome:
                continue
            assert row.counted_state == outcome and row.counted_engagement == row.engagement
            if outcome == "sent":
                assert row.stat_day == local_day(row.sent_at, zone)
            kind = skip_kind(row.reason) if outcome == "skipped" else None
            key = (row.journey_id, row.stat_day, row.step_id, row.stat_tier, row.stat_locale)
            totals.setdefault(key, Counter()).update(send_counts(outcome, kind, row.engagement))
        for row in connection.execute(select(enrollments)):
            key = (row.journey_id, row.stat_day, JOURNEY_ROW, row.stat_tier, row.stat_locale)
            counts = enrollment_counts(enrollment_bits(row.state))
            totals.setdefault(key, Counter()).update(counts)
    return {key: dict(+counter) for key, counter in totals.items() if +counter}


def total(runtime: Runtime, name: str) -> int:
    return sum(values.get(name, 0) for values in rollups(runtime).values())
