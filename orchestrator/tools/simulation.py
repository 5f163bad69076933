"""``stepmail simulate``: run the real pipeline for one scripted customer, with no side effects.

The simulator does not re-implement anything: it enrolls a sample customer through the
signup service into a throwaway SQLite database, moves a :class:`FrozenClock` from one due
time to the next, feeds the scripted events through the same ingestion service as
``POST /v1/events``, runs the daily health job, and lets the scheduler tick deliver inline
into a recording transport. What it prints is read back from that database, so the
simulator and the pipeline cannot disagree. The database lives in a temporary folder that
is deleted afterwards; nothing is sent.

The run starts at ``start`` (``--start``, default now), so send windows, quiet days and the
frequency cap (the installation's settings, as the worker reads them) defer mails exactly as
they would from that moment; a script can change the customer's contract value, tier or plan
(``10d:acv=3600000``) through the same service as ``PATCH /v1/customers``. Sends not made by
the end are listed as pending, with when they would go.
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

from pydantic import ValidationError

from orchestrator.clock import FrozenClock
from orchestrator.customers.changes import CustomerPatch
from orchestrator.customers.tiers import Tier
from orchestrator.customers.timezones import zone
from orchestrator.enrollment.signup import SignupRequest
from orchestrator.errors import InvalidInput, InvalidJson, JourneyNotFound, SimulationDidNotSettle
from orchestrator.guards.bounds import MAX_MOMENT, MIN_MOMENT
from orchestrator.guards.strict_json import check_storable
from orchestrator.journeys.durations import format_duration, parse_duration
from orchestrator.journeys.loader import load_journeys
from orchestrator.journeys.model import ALL_TIERS, Journey
from orchestrator.rendering.renderer import MailRenderer
from orchestrator.rendering.samples import sample_customer
from orchestrator.runtime import Runtime, journey_catalog, tier_thresholds
from orchestrator.services.admin import scratch_database
from orchestrator.services.customers import update_customer
from orchestrator.services.delivery import deliver
from orchestrator.services.events import track_events
from orchestrator.services.health import run_daily_health
from orchestrator.services.scheduling import next_wake_at, tick
from orchestrator.services.signup import enroll_signup
from orchestrator.services.timeline import TimelineRow, timeline_rows
from orchestrator.settings import Settings
from orchestrator.transports.base import SendResult
from orchestrator.transports.mail import OutgoingMail
from orchestrator.usage.events import EventIn, EventSubmission

SIMULATED_ID = "simulated-customer"
MAX_STEPS = 10_000
MAX_DAYS = 3650  # ten years: longer is a typo, and each day is a health run
SCHEMA = "stepmail.simulation/1"
_SCRIPT = re.compile(r"^(?P<at>[^:]+):(?P<name>[a-z0-9][a-z0-9_.:-]*?)(?::(?P<props>.*))?$")
_LOCALE = re.compile(r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
_CHANGE = re.compile(r"^(?P<at>[^:]+):(?P<field>acv|tier|plan)=(?P<value>.*)$")
CHANGES = {"acv": "annual_contract_value", "tier": "tier", "plan": "plan"}


@dataclass(frozen=True)
class ScriptedEvent:
    """``2d:report_created`` or ``4d 6h:nps_submitted:score=3``: an event at an offset."""

    after: timedelta
    name: str
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScriptedChange:
    """``10d:acv=3600000``, ``12d:tier=high`` (``tier=auto``: follow the contract value again)
    or ``5d:plan=Business``: a change of the customer at an offset."""

    after: timedelta
    field: str  # acv, tier or plan
    value: str

    def patch(self) -> CustomerPatch:
        """The change as ``PATCH /v1/customers`` takes it; InvalidInput naming the value."""
        value: object = None if (self.field, self.value) == ("tier", "auto") else self.value
        try:
            return CustomerPatch.model_validate({CHANGES[self.field]: value})
        except ValidationError as exc:
            problem = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise InvalidInput(f"--event {self.field}={self.value!r}: {problem}") from None


ScriptItem = ScriptedEvent | ScriptedChange


def parse_script_item(text: str) -> ScriptItem:
    """An event (``2d:report_created[:k=v,...]``) or a change (``10d:acv=3600000``)."""
    found = _CHANGE.match(text.strip())
    if found is None:
        return parse_scripted_event(text)
    change = ScriptedChange(_offset(text, found["at"]), found["field"], found["value"].strip())
    change.patch()  # refused now, not halfway through the run
    return change


def _offset(text: str, at: str) -> timedelta:
    try:
        return parse_duration(at.strip())
    except ValueError as exc:
        raise InvalidInput(f"--event {text!r}: {exc}") from None


def parse_scripted_event(text: str) -> ScriptedEvent:
    found = _SCRIPT.match(text.strip())
    if found is None:
        raise InvalidInput(f"--event {text!r}: expected OFFSET:NAME[:key=value,...]")
    after = _offset(text, found["at"])
    properties: dict[str, Any] = {}
    for pair in filter(None, (found["props"] or "").split(",")):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--event {text!r}: properties are key=value pairs")
        properties[key.strip()] = parse_value(value.strip())
    _refuse_what_the_api_refuses(text, properties)
    return ScriptedEvent(after, found["name"], properties)


def _refuse_what_the_api_refuses(text: str, properties: dict[str, Any]) -> None:
    """NaN, 1e400, integers beyond 64 bits and the like (``json.loads`` reads them; the API's
    strict JSON does not): refused as ``stepmail track`` refuses them, naming the property."""
    try:
        check_storable(properties)
    except InvalidJson as exc:
        where = ".".join(str(part) for part in exc.errors[0]["loc"])
        raise InvalidInput(f"--event {text!r}: {where}: {exc.errors[0]['msg']}") from None


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
    kind: str  # mail, skipped, missed, cancelled, failed, event, change, score, task, ended,
    # and pending (not sent by the end: ``at`` is when it would go)
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


@dataclass(frozen=True)
class SimulationRequest:
    """What ``stepmail simulate`` was asked; :meth:`checked` refuses a bad value in one line."""

    journey_id: str
    tier: str
    locale: str
    days: int
    start: datetime
    script: Sequence[ScriptItem] = ()
    annual_contract_value: Decimal | None = None

    def checked(self) -> SimulationRequest:
        if self.tier not in ALL_TIERS:
            raise InvalidInput(f"--tier must be one of {', '.join(ALL_TIERS)}, not {self.tier!r}")
        if not _LOCALE.fullmatch(self.locale):
            raise InvalidInput(
                f"--locale {self.locale!r}: expected a language code such as ja or en-US"
            )
        if not 1 <= self.days <= MAX_DAYS:
            raise InvalidInput(f"--days must be from 1 to {MAX_DAYS}, not {self.days}")
        if self.start.tzinfo is None:
            raise InvalidInput("--start needs a time zone")
        if not MIN_MOMENT <= self.start < MAX_MOMENT - timedelta(days=self.days):
            # compared before adding: year 9999 plus the days would overflow, not compare
            raise InvalidInput("--start and --days must stay between 1970 and 3000")
        for item in self.script:
            if item.after > timedelta(days=self.days):
                raise InvalidInput(
                    f"--event at {format_duration(item.after)} is after the last simulated day "
                    f"(--days {self.days})"
                )
        acv = self.annual_contract_value
        if acv is not None and not (0 <= acv < 10**14):
            raise InvalidInput(f"--acv must be from 0 to less than 10^14, not {acv}")
        return self

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


@dataclass(frozen=True)
class Simulation:
    """What happened (``timeline``) and the sends not made by the end (``pending``)."""

    request: SimulationRequest
    timezone: str
    timeline: list[TimelineEntry]
    pending: list[TimelineEntry]


def simulate_journey(
    settings: Settings,
    journey_id: str,
    tier: str,
    locale: str,
    days: int,
    start: datetime,
    events: Sequence[ScriptItem] = (),
    annual_contract_value: Decimal | None = None,
) -> list[TimelineEntry]:
    """What ``journey_id`` does for a sample customer of ``tier`` over ``days`` days."""
    request = SimulationRequest(
        journey_id, tier, locale, days, start, events, annual_contract_value
    )
    return simulate(settings, request).timeline


def simulate(settings: Settings, request: SimulationRequest) -> Simulation:
    """Run the pipeline for the request's sample customer and script, in a throwaway database."""
    request = request.checked()
    journeys = load_journeys(settings.journeys_dir)
    if request.journey_id not in journeys:
        raise JourneyNotFound(f"no journey {request.journey_id!r} in {settings.journeys_dir}")

    def simulated(journey: Journey) -> bool:
        """Only this journey is entered at signup; journeys entered on events or by health
        actions stay, so their mails appear too."""
        return journey.id == request.journey_id or journey.trigger != "signup"

    with tempfile.TemporaryDirectory(prefix="stepmail-simulate-") as folder:
        engine = scratch_database(Path(folder) / "simulation.db")
        clock = FrozenClock(request.start)
        catalog = journey_catalog(settings, engine, clock, include=simulated)
        runtime = Runtime(
            settings=settings,
            engine=engine,
            catalog=catalog,
            renderer=MailRenderer(settings.templates_dir, settings.default_locale),
            transport=RecordingTransport(),
            clock=clock,
            jitter=_NoJitter(),
        )
        try:
            catalog.start()
            _enroll(runtime, request)
            changes = _run(runtime, request.start, request.end, request.script)
            return _result(runtime, request, changes)
        finally:
            runtime.close()


class _NoJitter:
    """Retry waits unstretched: a simulation gives the same answer every time."""

    def random(self) -> float:
        return 0.0


def _enroll(runtime: Runtime, request: SimulationRequest) -> None:
    sample = sample_customer(request.tier, request.locale, request.start)
    acv = sample.annual_contract_value
    if request.annual_contract_value is not None:
        acv = request.annual_contract_value
    # Explicit only when the contract alone would not give the tier: then a scripted contract
    # change moves the tier as it would for a real customer.
    derived = tier_thresholds(runtime.settings).tier_for(acv) == request.tier
    signup = SignupRequest(
        external_id=SIMULATED_ID,
        email=sample.email,
        name=sample.name,
        company=sample.company,
        plan=sample.plan,
        annual_contract_value=acv,
        currency=sample.currency,
        locale=sample.locale,
        timezone=sample.timezone,
        tier=None if derived else cast(Tier, request.tier),
        csm_name=sample.csm_name,
        csm_email=sample.csm_email,
        attributes=dict(sample.attributes),
        signed_up_at=request.start,
    )
    enroll_signup(
        runtime.engine,
        signup,
        journeys=runtime.journeys,
        rules=runtime.enrollment_rules(),
        clock=runtime.clock,
    )


def _run(
    runtime: Runtime, start: datetime, end: datetime, script: Sequence[ScriptItem]
) -> list[TimelineRow]:
    """Jump the clock to the next thing that happens (a due row, a scripted event or change,
    a daily run); returns the changes made, for the timeline."""
    assert isinstance(runtime.clock, FrozenClock)
    pending = sorted(script, key=lambda item: item.after)
    changes: list[TimelineRow] = []
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
            return changes
        runtime.clock.set(now)
        while pending and start + pending[0].after <= now:
            item = pending.pop(0)
            if isinstance(item, ScriptedChange):
                _change(runtime, item)
                changes.append(TimelineRow(now, "change", item.field, item.value))
            else:
                _ingest(runtime, item, now)
        if now >= next_daily:
            _daily(runtime, now)
            next_daily += timedelta(days=1)
        tick(runtime.engine, _InlineDispatcher(runtime), now, 500, timedelta(seconds=120))
    raise SimulationDidNotSettle("simulation did not settle; is a step rescheduling itself?")


def _change(runtime: Runtime, change: ScriptedChange) -> None:
    update_customer(
        runtime.engine,
        SIMULATED_ID,
        change.patch(),
        rules=runtime.usage_rules(),
        clock=runtime.clock,
        notify=runtime.notify_now,
    )


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


def _result(
    runtime: Runtime, request: SimulationRequest, changes: Sequence[TimelineRow]
) -> Simulation:
    assert isinstance(runtime.transport, RecordingTransport)
    mails = runtime.transport.mails
    timeline = timeline_rows(runtime.engine, until=request.end)
    local = zone(timeline.timezone)

    def entry(row: TimelineRow) -> TimelineEntry:
        detail = _subject(mails, row.mail_key) if row.mail_key is not None else row.detail
        day = (row.at - request.start) // timedelta(days=1)
        return TimelineEntry(day, row.at.astimezone(local), row.kind, row.what, detail)

    # Stable: a change comes before what it caused at the same moment (its event, task, mail).
    rows = sorted([*changes, *timeline.rows], key=lambda row: row.at)
    return Simulation(
        request,
        timeline.timezone,
        [entry(row) for row in rows],
        [entry(row) for row in timeline.pending],
    )


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


def format_simulation(simulation: Simulation) -> str:
    """The timeline, then the sends still pending at the end (when each would go)."""
    text = format_timeline(simulation.timeline)
    if simulation.pending:
        days = simulation.request.days
        text += f"\n\nstill pending after day {days}:\n" + format_timeline(simulation.pending)
    return text


def simulation_json(simulation: Simulation) -> str:
    """The documented ``--json`` form (README, "Simulation"): schema ``stepmail.simulation/1``."""
    request = simulation.request

    def entries(items: Sequence[TimelineEntry]) -> list[dict[str, object]]:
        return [
            {
                "day": e.day,
                "at": e.at.isoformat(),
                "kind": e.kind,
                "what": e.what,
                "detail": e.detail,
            }
            for e in items
        ]

    document = {
        "schema": SCHEMA,
        "journey": request.journey_id,
        "tier": request.tier,
        "locale": request.locale,
        "start": request.start.isoformat(),
        "end": request.end.isoformat(),
        "days": request.days,
        "timezone": simulation.timezone,
        "timeline": entries(simulation.timeline),
        "pending": entries(simulation.pending),
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def parse_start(text: str, tier: str, locale: str) -> datetime:
    """``--start``: ISO 8601, a date (midnight) or a date and time; without an offset it is
    the sample customer's local time (their time zone decides windows and weekends)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"--start {text!r}: expected a date and time such as 2026-11-07T10:00 "
            "or 2026-11-07T10:00+09:00"
        ) from None
    if moment.tzinfo is None:
        if tier not in ALL_TIERS:
            raise InvalidInput(f"--tier must be one of {', '.join(ALL_TIERS)}, not {tier!r}")
        moment = moment.replace(tzinfo=zone(sample_customer(tier, locale, moment).timezone))
    return moment
