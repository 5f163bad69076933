"""Compile a journey into an enrollment's schedule: pure functions of (journey, anchor, now)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orchestrator.journeys.model import Journey, Step


@dataclass(frozen=True)
class PlannedSend:
    """One row-to-be of the durable schedule."""

    step_id: str
    due_at: datetime
    missed: bool


def compile_journey(journey: Journey, anchor: datetime, now: datetime) -> list[PlannedSend]:
    """Every step's due time from ``anchor``; steps already later than the grace are missed.

    Tiers and conditions are not decided here: they are evaluated at send time, with the
    customer's data as it is then.
    """
    return [
        PlannedSend(step.id, due, is_missed(journey, due, now))
        for step, offset in journey.scheduled_offsets()
        for due in (anchor + offset,)
    ]


def is_missed(journey: Journey, due_at: datetime, now: datetime) -> bool:
    """A step later than the grace is not sent at all: a day-1 tip on day 9 would confuse."""
    return now - due_at > journey.grace


def step_applies_to_tier(step: Step, tier: str) -> bool:
    return tier in step.tiers
