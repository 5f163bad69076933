"""Compile a journey into an enrollment's schedule: pure functions of (journey, anchor, now)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestrator.journeys.durations import format_duration
from orchestrator.journeys.model import Journey, Step


@dataclass(frozen=True)
class PlannedSend:
    """One row-to-be of the durable schedule."""

    step_id: str
    due_at: datetime
    missed: bool
    reason: str | None = None  # why it is missed, or why it goes at another time


@dataclass(frozen=True)
class EnrollmentSchedule:
    """Where an enrollment's clock starts (the anchor, moved by ``catch_up: compress``) and
    the rows it writes."""

    anchor: datetime
    sends: list[PlannedSend]


def compile_journey(journey: Journey, anchor: datetime, now: datetime) -> list[PlannedSend]:
    """Every step's due time from ``anchor``; steps already later than the grace (or past
    their expiry) are missed.

    Tiers and conditions are not decided here: they are evaluated at send time, with the
    customer's data as it is then.
    """
    planned = []
    for step, offset in journey.scheduled_offsets():
        due = anchor + offset
        why = late_reason(journey, step, due, now)
        planned.append(PlannedSend(step.id, due, why is not None, why))
    return planned


def schedule_enrollment(journey: Journey, anchor: datetime, now: datetime) -> EnrollmentSchedule:
    """The rows of a new enrollment, with the journey's ``catch_up`` policy for a customer
    who arrives late (an import, a backdated signup, an event that came in late):

    - ``skip_missed``: steps past the grace are missed (a day-1 tip on day 9 would confuse);
    - ``send_first``: so are they, but the first step (the welcome) goes now anyway;
    - ``compress``: the schedule starts now: the anchor moves so that the first step is due
      now, and every gap after it is kept.

    Nothing changes for a customer on time (no step past the grace).
    """
    planned = compile_journey(journey, anchor, now)
    first = journey.first_offset()
    if first is None or not any(send.missed for send in planned):
        return EnrollmentSchedule(anchor, planned)
    if journey.catch_up == "compress":
        moved = now - first
        return EnrollmentSchedule(moved, compile_journey(journey, moved, now))
    if journey.catch_up == "send_first":
        starts = {step.id for step, offset in journey.scheduled_offsets() if offset == first}
        late = f"enrolled late: sent now (catch_up: send_first; due {anchor + first:%Y-%m-%d})"
        planned = [
            PlannedSend(send.step_id, now, False, late)
            if send.step_id in starts and send.missed
            else send
            for send in planned
        ]
    return EnrollmentSchedule(anchor, planned)


def is_missed(journey: Journey, due_at: datetime, now: datetime) -> bool:
    """A step later than the grace is not sent at all: a day-1 tip on day 9 would confuse."""
    return now - due_at > journey.grace


def is_expired(step: Step, due_at: datetime, now: datetime) -> bool:
    """Past the step's own ``expires_after``, counted from its due time whatever held it up."""
    return step.expires_after is not None and now - due_at > step.expires_after


def late_reason(
    journey: Journey, step: Step, due_at: datetime, now: datetime, moment: str = "at enrollment"
) -> str | None:
    """Why a step written now (``moment`` says when) for ``due_at`` is already missed, or
    None."""
    if is_expired(step, due_at, now):
        expiry = format_duration(step.expires_after or timedelta(0))
        return f"expired {moment}: due {due_at.isoformat()}, expires after {expiry}"
    if is_missed(journey, due_at, now):
        return f"overdue past the journey's grace {moment}"
    return None


def step_applies_to_tier(step: Step, tier: str) -> bool:
    return tier in step.tiers
