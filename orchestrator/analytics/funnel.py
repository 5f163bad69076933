"""A journey's funnel for a date range: per step, and per tier and language within each step,
read from the daily rollups (one indexed range of ``analytics_daily``, a few thousand rows at
most), never from the sends.

What each number means (README, "Journey analytics"): the days are the analytics time zone's;
a step's numbers are its mails *decided* in the range (a sent mail under the day it was sent),
and what became of those mails, whenever it happened; ``enrolled`` and the journey's
``converted`` are the enrollments begun in the range and how many of them converted.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

from sqlalchemy import Connection, func, select

from orchestrator.analytics.counters import COUNTERS, JOURNEY_ROW, SKIP_KINDS
from orchestrator.db.tables import analytics_daily
from orchestrator.journeys.model import Journey

_DAILY = analytics_daily


@dataclass(frozen=True)
class FunnelCounts:
    """The counters of one slice of a funnel (a step, a tier and language, or the journey)."""

    enrolled: int = 0
    sent: int = 0
    skipped_tier: int = 0
    skipped_suppressed: int = 0
    skipped_opted_out: int = 0
    skipped_condition: int = 0
    skipped_other: int = 0
    missed: int = 0
    failed: int = 0
    unknown: int = 0
    cancelled: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0  # unique: mails with a click not flagged as a scanner's
    scanner_clicked: int = 0  # mails with a click flagged as a scanner's (not in clicked)
    bounced: int = 0
    unsubscribed: int = 0
    converted: int = 0

    @property
    def skipped(self) -> int:
        return sum(self.skipped_by_reason.values())

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        return {kind: getattr(self, f"skipped_{kind}") for kind in SKIP_KINDS}

    @property
    def due(self) -> int:
        """Mails that came due and were decided: sent, skipped, missed, failed or unknown
        (a cancelled step never came due: its enrollment ended first)."""
        return self.sent + self.skipped + self.missed + self.failed + self.unknown

    def plus(self, other: FunnelCounts) -> FunnelCounts:
        return FunnelCounts(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def as_dict(self) -> dict[str, Any]:
        """Every counter, with ``due``, ``skipped`` and ``skipped_by_reason``."""
        values: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        return {
            **values,
            "due": self.due,
            "skipped": self.skipped,
            "skipped_by_reason": self.skipped_by_reason,
        }


@dataclass(frozen=True)
class SegmentFunnel:
    tier: str
    locale: str
    counts: FunnelCounts


@dataclass(frozen=True)
class StepFunnel:
    """One step: its totals, and per tier and language. ``in_journey`` is False for a step
    that has numbers in the range but is no longer in the journey's file."""

    step_id: str
    in_journey: bool
    counts: FunnelCounts
    segments: tuple[SegmentFunnel, ...]


@dataclass(frozen=True)
class Funnel:
    journey_id: str
    journey_name: str
    date_from: date
    date_to: date
    timezone: str
    tier: str | None
    locale: str | None
    attribution_window_days: int
    journey: FunnelCounts  # enrolled and converted (the enrollments begun in the range)
    journey_segments: tuple[SegmentFunnel, ...]
    steps: tuple[StepFunnel, ...] = field(default_factory=tuple)


def read_funnel(
    connection: Connection,
    journey: Journey,
    date_from: date,
    date_to: date,
    *,
    tier: str | None,
    locale: str | None,
    timezone: str,
    attribution_window_days: int,
) -> Funnel:
    """The funnel of ``journey`` over ``[date_from, date_to]`` (days inclusive)."""
    segments = _segments(connection, journey.id, date_from, date_to, tier, locale)
    by_step: dict[str, list[SegmentFunnel]] = {}
    for step_id, segment in segments:
        by_step.setdefault(step_id, []).append(segment)
    journey_segments = tuple(by_step.pop(JOURNEY_ROW, []))
    ordered = [step.id for step in journey.steps]
    ordered += sorted(step_id for step_id in by_step if step_id not in ordered)
    known = {step.id for step in journey.steps}
    steps = tuple(
        StepFunnel(
            step_id,
            step_id in known,
            _total(by_step.get(step_id, [])),
            tuple(by_step.get(step_id, [])),
        )
        for step_id in ordered
    )
    return Funnel(
        journey_id=journey.id,
        journey_name=journey.name,
        date_from=date_from,
        date_to=date_to,
        timezone=timezone,
        tier=tier,
        locale=locale,
        attribution_window_days=attribution_window_days,
        journey=_total(journey_segments),
        journey_segments=journey_segments,
        steps=steps,
    )


def _segments(
    connection: Connection,
    journey_id: str,
    date_from: date,
    date_to: date,
    tier: str | None,
    locale: str | None,
) -> list[tuple[str, SegmentFunnel]]:
    query = (
        select(
            _DAILY.c.step_id,
            _DAILY.c.tier,
            _DAILY.c.locale,
            *(func.sum(_DAILY.c[name]).label(name) for name in COUNTERS),
        )
        .where(
            _DAILY.c.journey_id == journey_id,
            _DAILY.c.day >= date_from,
            _DAILY.c.day <= date_to,
        )
        .group_by(_DAILY.c.step_id, _DAILY.c.tier, _DAILY.c.locale)
        .order_by(_DAILY.c.step_id, _DAILY.c.tier, _DAILY.c.locale)
    )
    if tier is not None:
        query = query.where(_DAILY.c.tier == tier)
    if locale is not None:
        query = query.where(_DAILY.c.locale == locale)
    return [
        (row.step_id, SegmentFunnel(row.tier, row.locale, counts_of(row._mapping)))
        for row in connection.execute(query)
    ]


def counts_of(values: Mapping[Any, Any]) -> FunnelCounts:
    return FunnelCounts(**{name: int(values[name] or 0) for name in COUNTERS})


def _total(segments: Iterable[SegmentFunnel]) -> FunnelCounts:
    total = FunnelCounts()
    for segment in segments:
        total = total.plus(segment.counts)
    return total


CSV_COLUMNS = ("step", "tier", "locale", "due", "skipped", *COUNTERS)


def funnel_csv(funnel: Funnel) -> str:
    """The funnel as CSV: the journey's own line (step ``(journey)``), then per step a line of
    its totals (tier and locale ``all``) and a line per tier and language."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerow(_csv_row("(journey)", "all", "all", funnel.journey))
    for segment in funnel.journey_segments:
        writer.writerow(_csv_row("(journey)", segment.tier, segment.locale, segment.counts))
    for step in funnel.steps:
        writer.writerow(_csv_row(step.step_id, "all", "all", step.counts))
        for segment in step.segments:
            writer.writerow(_csv_row(step.step_id, segment.tier, segment.locale, segment.counts))
    return out.getvalue()


def _csv_row(step: str, tier: str, locale: str, counts: FunnelCounts) -> Sequence[object]:
    numbers = [getattr(counts, name) for name in COUNTERS]
    return [_cell(step), _cell(tier), _cell(locale), counts.due, counts.skipped, *numbers]


def _cell(text: str) -> str:
    """A spreadsheet never reads a cell as a formula (CSV injection)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
