"""``stepmail simulate``: run the real pipeline for one scripted customer, with no side effects.

The simulator does not re-implement anything: it enrolls a sample customer through the
signup service into a throwaway SQLite database, moves a :class:`FrozenClock` from one due
time to the next, feeds the scripted events through the same ingestion service as
``POST /v1/events``, runs the daily health job, and lets the scheduler tick deliver inline
into a recording transport. What it prints is read back from that database, so the
simulator and the pipeline cannot disagree. The database lives in a temporary folder that
is deleted afterwards; nothing is sent.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from orchestrator.clock import FrozenClock
from orchestrator.customers.tiers import Tier
from orchestrator.customers.timezones import zone
from orchestrator.enrollment.signup import SignupRequest
from orchestrator.errors import InvalidInput, JourneyNotFound, SimulationDidNotSettle
from orchestrator.journeys.durations import parse_duration
from orchestrator.journeys.loader import load_journeys
from orchestrator.rendering.renderer import MailRenderer
from orchestrator.rendering.samples import sample_customer
from orchestrator.runtime import Runtime
from orchestrator.services.admin import scratch_database
from orchestrator.services.delivery import deliver
from orchestrator.services.events import track_events
from orchestrator.services.health import run_daily_health
from orchestrator.services.scheduling import next_wake_at, tick
from orchestrator.services.signup import enroll_signup
from orchestrator.services.timeline import timeline_rows
from orchestrator.settings import Settings
from orchestrator.transports.base import SendResult
from orchestrator.transports.mail import OutgoingMail
from orchestrator.usage.events import EventIn, EventSubmission

SIMULATED_ID = "simulated-customer"
MAX_STEPS = 10_000
_SCRIPT = re.compile(r"^(?P<at>[^:]+):(?P<name>[a-z0-9][a-z0-9_.:-]*?)(?::(?P<props>.*))?$")


@dataclass(frozen=True)
class ScriptedEvent:
    """``2d:report_created`` or ``4d 6h:nps_submitted:score=3``: an event at an offset."""

    after: timedelta
    name: str
    properties: dict[str, Any] = field(default_factory=dict)


def parse_scripted_event(text: str) -> ScriptedEvent:
    found = _SCRIPT.match(text.strip())
    if found is None:
        raise InvalidInput(f"--event {text!r}: expected OFFSET:NAME[:key=value,...]")
    try:
        after = parse_duration(found["at"].strip())
    except ValueError as exc:
        raise InvalidInput(f"--event {text!r}: {exc}") from None
    properties: dict[str, Any] = {}
    for pair in filter(None, (found["props"] or "").split(",")):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--event {text!r}: properties are key=value pairs")
        properties[key.strip()] = parse_value(value.strip())
    return ScriptedEvent(after, found["name"], properties)


def parse_value(text: str) -> Any:
    """``9`` → 9, ``true`` → True, anything else stays a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class TimelineEntry:
    day: int
    at: datetime  # in the customer's time zone
    kind: str  # mail, skipped, missed, cancelled, failed, event, score, task, ended
    what: str  # step, event name, band, task kind or journey
    detail: str  # subject, reason, properties


class RecordingTransport:
    """Keeps every mail instead of sending it; idempotent like the outbox."""

    name = "simulation"
    idempotent = True

    def __init__(self) -> None:
        self.mails: dict[str, OutgoingMail] = {}

    def send(self, mail: OutgoingMail) -> SendResult:
        self.mails.setdefault(mail.idempotency_key, mail)
        return SendResult(provider_message_id=mail.idempotency_key)

    def close(self) -> None:
        return None


class _InlineDispatcher:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def dispatch(self, send_ids: Sequence[int]) -> None:
        for send_id in send_ids:
            deliver(self.runtime.delivery_deps(), send_id)


def simulate_journey(
    settings: Settings,
    journey_id: str,
    tier: str,
    locale: str,
    days: int,
    start: datetime,
    events: Sequence[ScriptedEvent] = (),
    annual_contract_value: Decimal | None = None,
) -> list[TimelineEntry]:
    """What ``journey_id`` does for a sample customer of ``tier`` over ``days`` days."""
    journeys = load_journeys(settings.journeys_dir)
    if journey_id not in journeys:
        raise JourneyNotFound(f"no journey {journey_id!r} in {settings.journeys_dir}")
    # Only this journey is entered at signup; journeys entered on events or by health actions
    # stay, so their mails appear too.
    journeys = {jid: j for jid, j in journeys.items() if jid == journey_id or j.trigger != "signup"}
    with tempfile.TemporaryDirectory(prefix="stepmail-simulate-") as folder:
        engine = scratch_database(Path(folder) / "simulation.db")
        runtime = Runtime(
            settings=settings,
            engine=engine,
            journeys=journeys,
            renderer=MailRenderer(settings.templates_dir, settings.default_locale),
            transport=RecordingTransport(),
            clock=FrozenClock(start),
        )
        try:
            _enroll(runtime, tier, locale, start, annual_contract_value)
            _run(runtime, start, start + timedelta(days=days), events)
            return _timeline(runtime, start, start + timedelta(days=days))
        finally:
            runtime.close()


def _enroll(runtime: Runtime, tier: str, locale: str, start: datetime, acv: Decimal | None) -> None:
    sample = sample_customer(tier, locale, start)
    signup = SignupRequest(
        external_id=SIMULATED_ID,
        email=sample.email,
        name=sample.name,
        company=sample.company,
        plan=sample.plan,
        annual_contract_value=sample.annual_contract_value if acv is None else acv,
        currency=sample.currency,
        locale=sample.locale,
        timezone=sample.timezone,
        tier=cast(Tier, tier),  # checked by sample_customer
        csm_name=sample.csm_name,
        csm_email=sample.csm_email,
        attributes=dict(sample.attributes),
        signed_up_at=start,
    )
    enroll_signup(
        runtime.engine,
        signup,
        journeys=runtime.journeys,
        rules=runtime.enrollment_rules(),
        clock=runtime.clock,
    )


def _run(runtime: Runtime, start: datetime, end: datetime, script: Sequence[ScriptedEvent]) -> None:
    """Jump the clock to the next thing that happens (a due row, an event, a daily run)."""
    assert isinstance(runtime.clock, FrozenClock)
    pending = sorted(script, key=lambda e: e.after)
    next_daily = start + timedelta(days=1)
    for _ in range(MAX_STEPS):
        candidates = [next_daily]
        wake = next_wake_at(runtime.engine)
        if wake is not None:
            candidates.append(max(wake, runtime.clock.now()))
        if pending:
            candidates.append(start + pending[0].after)
        now = min(candidates)
        if now > end:
            return
        runtime.clock.set(now)
        while pending and start + pending[0].after <= now:
            _ingest(runtime, pending.pop(0), now)
        if now >= next_daily:
            _daily(runtime, now)
            next_daily += timedelta(days=1)
        tick(runtime.engine, _InlineDispatcher(runtime), now, 500, timedelta(seconds=120))
    raise SimulationDidNotSettle("simulation did not settle; is a step rescheduling itself?")


def _ingest(runtime: Runtime, event: ScriptedEvent, now: datetime) -> None:
    item = EventIn(
        external_id=SIMULATED_ID, name=event.name, occurred_at=now, properties=event.properties
    )
    track_events(
        runtime.engine,
        EventSubmission([item], batched=False),
        rules=runtime.usage_rules(),
        clock=runtime.clock,
        notify=runtime.notify_now,
    )


def _daily(runtime: Runtime, now: datetime) -> None:
    rules = runtime.usage_rules()
    if rules.health is None:
        return
    report = run_daily_health(runtime.engine, rules=rules, until=now, since=now - timedelta(days=1))
    runtime.notify_now(report.task_ids)


def _timeline(runtime: Runtime, start: datetime, end: datetime) -> list[TimelineEntry]:
    assert isinstance(runtime.transport, RecordingTransport)
    mails = runtime.transport.mails
    timeline = timeline_rows(runtime.engine, until=end)
    local = zone(timeline.timezone)
    return [
        TimelineEntry(
            (row.at - start).days,
            row.at.astimezone(local),
            row.kind,
            row.what,
            _subject(mails, row.mail_key) if row.mail_key is not None else row.detail,
        )
        for row in timeline.rows
    ]


def _subject(mails: dict[str, OutgoingMail], key: str) -> str:
    return mails[key].subject if key in mails else ""


def sent_mails(timeline: Sequence[TimelineEntry]) -> list[tuple[int, str]]:
    """(day, journey/step) of every mail sent: what tests compare with the real pipeline."""
    return [(entry.day, entry.what) for entry in timeline if entry.kind == "mail"]


def format_timeline(timeline: Sequence[TimelineEntry]) -> str:
    if not timeline:
        return "(nothing happens in this window)"
    width = max(len(entry.what) for entry in timeline)
    return "\n".join(
        f"day {e.day:>3}  {e.at:%Y-%m-%d %H:%M %Z}  {e.kind:<9} {e.what:<{width}}  {e.detail}"
        for e in timeline
    )
