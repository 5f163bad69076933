"""A journey as a picture: its steps in the order a customer of one tier meets them, each with
when it comes (a delay from the start, an event, a branch of a wait), what it waits for, its
condition, and the journey's goal and exits. Pure: drawn by ``templates/journey.html``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from orchestrator.journeys.model import ALL_TIERS, Journey, Step, WaitFor

Timing = Literal["timed", "event", "if_seen", "if_timeout"]


@dataclass(frozen=True)
class MapStep:
    id: str
    description: str
    template: str
    timing: Timing
    at: timedelta | None  # from the start, for timed steps and timeout branches
    after: timedelta  # the step's own delay (after the start, the event or the branch)
    event: str | None  # the event an event step or an if_seen branch waits for
    branch_of: str | None  # the waiting step whose branch this is
    wait: WaitFor | None  # this step waits, then branches
    condition: str | None
    transactional: bool
    from_csm: bool  # sent as the customer's CSM for this tier
    for_tier: bool

    @property
    def day(self) -> int | None:
        """The day from the start this step comes on (day 0 is the start's day)."""
        return None if self.at is None else self.at.days

    @property
    def remainder(self) -> timedelta:
        """What comes after the whole days (``3d 4h`` is day 3 + 4h)."""
        return timedelta(0) if self.at is None else self.at - timedelta(days=self.at.days)


@dataclass(frozen=True)
class JourneyMap:
    journey: Journey
    tier: str
    steps: tuple[MapStep, ...]

    @property
    def trigger(self) -> str:
        trigger = self.journey.trigger
        if isinstance(trigger, str):
            return trigger
        return " or ".join(match.event for match in self.journey.trigger_events)

    @property
    def skipped_for_tier(self) -> int:
        return sum(not step.for_tier for step in self.steps)


def journey_map(journey: Journey, tier: str) -> JourneyMap:
    if tier not in ALL_TIERS:
        raise ValueError(f"unknown tier {tier!r}")
    branches = journey.branch_targets()
    steps = [_map_step(journey, step, branches.get(step.id), tier) for step in journey.steps]
    timed = [s for s in steps if s.at is not None]
    waiting = [s for s in steps if s.at is None]
    ordered = sorted(timed, key=lambda s: s.at or timedelta(0)) + waiting
    return JourneyMap(journey, tier, tuple(ordered))


def _map_step(journey: Journey, step: Step, waiting: Step | None, tier: str) -> MapStep:
    timing: Timing = "timed"
    at: timedelta | None = step.after
    event = None
    if waiting is not None and waiting.wait_for is not None:
        wait = waiting.wait_for
        if wait.if_timeout == step.id:
            timing, at = "if_timeout", waiting.after + wait.timeout + step.after
        else:
            timing, at, event = "if_seen", None, wait.event
    elif step.on_event is not None:
        timing, at, event = "event", None, step.on_event.event
    return MapStep(
        id=step.id,
        description=step.description,
        template=step.template,
        timing=timing,
        at=at,
        after=step.after,
        event=event,
        branch_of=waiting.id if waiting is not None else None,
        wait=step.wait_for,
        condition=step.when,
        transactional=step.transactional,
        from_csm=tier in journey.csm_sender_tiers,
        for_tier=tier in step.tiers,
    )
