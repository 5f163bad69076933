"""``stepmail simulate``: the mails a sample customer would get, decided by the same code the
worker runs (:func:`orchestrator.delivery.decide`), with no database and no sending."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestrator.checks import render_sample
from orchestrator.delivery import Claim, decide
from orchestrator.errors import StepmailError
from orchestrator.journeys.loader import load_journeys
from orchestrator.rendering.renderer import MailRenderer
from orchestrator.samples import sample_customer
from orchestrator.settings import Settings
from orchestrator.timezones import zone


@dataclass(frozen=True)
class TimelineEntry:
    day: int
    at: datetime  # in the customer's time zone
    step_id: str
    action: str  # "send" or the state the step would end in
    detail: str  # the subject, or why not


def simulate_journey(
    settings: Settings, journey_id: str, tier: str, locale: str, days: int, start: datetime
) -> list[TimelineEntry]:
    journey = load_journeys(settings.journeys_dir).get(journey_id)
    if journey is None:
        raise StepmailError(f"no journey {journey_id!r} in {settings.journeys_dir}")
    customer = sample_customer(tier, locale, start)
    renderer = MailRenderer(settings.templates_dir, settings.default_locale)
    local = zone(customer.timezone)
    timeline = []
    for step in journey.steps:
        due = start + step.after
        if step.after > timedelta(days=days):
            continue
        claim = Claim(0, 0, 0, journey.id, step.id, due, attempts=1)
        decision = decide(claim, "active", journey, step, customer, None, due)
        if decision is None:
            mail = render_sample(settings, renderer, journey, step, tier, locale)
            action, detail = "send", mail.subject
        else:
            action, detail = decision.state.value, decision.reason
        timeline.append(
            TimelineEntry(step.after.days, due.astimezone(local), step.id, action, detail)
        )
    return timeline


def format_timeline(timeline: list[TimelineEntry]) -> str:
    if not timeline:
        return "(no mails in this window)"
    width = max(len(entry.step_id) for entry in timeline)
    return "\n".join(
        f"day {e.day:>3}  {e.at:%Y-%m-%d %H:%M %Z}  {e.step_id:<{width}}  {e.action:<7} {e.detail}"
        for e in timeline
    )
