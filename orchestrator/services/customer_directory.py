"""Finding a customer and everything known about them, for the console's customer pages.

Search is by the start of an external id, an address or a company name: each is a range on a
B-tree index (``external_id``'s unique key, ``ix_customer_email``, ``ix_customer_company``),
checked again with ``substr`` so the match is exact on both databases, and paged by keyset
(the last row's value and id), so a page costs the same at any depth.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Column, Connection, Engine, and_, func, or_, select

from orchestrator.archive.store import archived_subjects
from orchestrator.customers.facts import CustomerFacts
from orchestrator.db.tables import (
    consent_records,
    csm_tasks,
    customers,
    enrollments,
    health_score_history,
    scheduled_sends,
    subscription_preferences,
    suppressions,
    task_notes,
)
from orchestrator.delivery.facts import customer_facts
from orchestrator.enrollment.stages import StageEntry, stage_history
from orchestrator.errors import CustomerNotFound, InvalidField
from orchestrator.handoff.holds import HoldLine, holds_of
from orchestrator.journeys.model import Journey, Step
from orchestrator.usage.recent import recent_events, recent_events_named
from orchestrator.usage.surveys import Answer, latest_answers

SearchField = Literal["any", "external_id", "email", "company"]
SEARCH_FIELDS: tuple[SearchField, ...] = ("any", "external_id", "email", "company")
MAX_QUERY = 200
_C = customers
_TOP = "\U0010ffff"  # above every character: the end of a prefix's range


@dataclass(frozen=True)
class CustomerRow:
    id: int
    external_id: str
    email: str
    name: str
    company: str
    tier: str
    health_score: int | None
    health_band: str | None


@dataclass(frozen=True)
class CustomerPage:
    rows: list[CustomerRow]
    next_after: tuple[str, int] | None  # the keyset of the next page, if there is one


def search_customers(
    engine: Engine,
    query: str,
    field_name: SearchField = "any",
    *,
    after: tuple[str, int] | None = None,
    limit: int = 25,
) -> CustomerPage:
    """Customers whose ``field_name`` starts with ``query`` (an address is compared in lower
    case). ``any`` looks in all three fields and shows the first matches of each; an empty
    query lists the newest customers."""
    text = query.strip()
    if len(text) > MAX_QUERY or "\x00" in text:
        raise InvalidField("q", f"at most {MAX_QUERY} characters, no NUL")
    with engine.connect() as connection:
        if not text:
            return _newest(connection, after, limit)
        if field_name == "any":
            fields: Sequence[SearchField] = ("external_id", "email", "company")
            found: dict[int, CustomerRow] = {}
            for each in fields:
                for row in _prefix(connection, each, text, None, limit).rows:
                    found.setdefault(row.id, row)
            return CustomerPage(sorted(found.values(), key=lambda r: r.external_id), None)
        return _prefix(connection, field_name, text, after, limit)


def prefix_statement(
    field_name: SearchField, text: str, after: tuple[str, int] | None, limit: int
) -> Any:
    """The page's SELECT: a range on the field's index, ``substr`` making the match exact."""
    column: Column[str] = getattr(_C.c, field_name)
    value = text.lower() if field_name == "email" else text
    where = [column >= value, column < value + _TOP, func.substr(column, 1, len(value)) == value]
    if after is not None:
        where.append(or_(column > after[0], and_(column == after[0], _C.c.id > after[1])))
    return _columns().where(*where).order_by(column, _C.c.id).limit(limit)


def _prefix(
    connection: Connection,
    field_name: SearchField,
    text: str,
    after: tuple[str, int] | None,
    limit: int,
) -> CustomerPage:
    rows = connection.execute(prefix_statement(field_name, text, after, limit + 1)).all()
    page = [_row(r) for r in rows[:limit]]
    more = len(rows) > limit
    return CustomerPage(page, (getattr(page[-1], field_name), page[-1].id) if more else None)


def _newest(connection: Connection, after: tuple[str, int] | None, limit: int) -> CustomerPage:
    query = _columns().order_by(_C.c.id.desc()).limit(limit + 1)
    if after is not None:
        query = query.where(_C.c.id < after[1])
    rows = connection.execute(query).all()
    page = [_row(r) for r in rows[:limit]]
    return CustomerPage(page, ("", page[-1].id) if len(rows) > limit else None)


def _columns() -> Any:
    return select(
        _C.c.id,
        _C.c.external_id,
        _C.c.email,
        _C.c.name,
        _C.c.company,
        _C.c.tier,
        _C.c.health_score,
        _C.c.health_band,
    )


def _row(row: Any) -> CustomerRow:
    return CustomerRow(
        row.id,
        row.external_id,
        row.email,
        row.name,
        row.company,
        row.tier,
        row.health_score,
        row.health_band,
    )


# -- one customer ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StepView:
    """One step of an enrollment: its row if it has one, else why it has none yet."""

    step_id: str
    description: str
    for_tier: bool  # the step is written for the customer's tier
    send_id: int | None = None
    state: str | None = None  # None: no row (an event step not triggered, an untaken branch)
    due_at: datetime | None = None
    wake_at: datetime | None = None
    sent_at: datetime | None = None
    reason: str | None = None
    attempts: int = 0
    delivery_status: str | None = None
    open_count: int = 0
    click_count: int = 0
    subject: str | None = None  # of a sent step: as archived, else see ``subject_source``
    archived: bool = False  # the subject is the one it went out with; the mail can be shown
    waits_for: str | None = None  # the event an unscheduled step waits for


@dataclass(frozen=True)
class EnrollmentView:
    id: int
    journey_id: str
    journey_name: str
    state: str
    entry_key: str
    anchor_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    paused_at: datetime | None
    steps: list[StepView]


@dataclass(frozen=True)
class Moment:
    """One line of the customer's timeline: an event they did, or a mail they got."""

    at: datetime
    kind: Literal["event", "mail"]
    title: str  # the event's name, or the mail's subject
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HealthPoint:
    at: datetime
    score: int
    band: str
    components: Mapping[str, Any]


@dataclass(frozen=True)
class TaskLine:
    id: int
    kind: str
    reason: str
    status: str
    assignee: str | None
    created_at: datetime
    due_at: datetime
    closed_at: datetime | None
    notes: int


@dataclass(frozen=True)
class CustomerProfile:
    id: int
    external_id: str
    email: str
    name: str
    company: str
    plan: str
    annual_contract_value: Decimal
    currency: str
    locale: str
    timezone: str
    tier: str
    tier_explicit: bool
    csm_name: str | None
    csm_email: str | None
    attributes: Mapping[str, Any]
    signed_up_at: datetime
    health_score: int | None
    health_band: str | None
    tier_history: list[Moment]
    health: list[HealthPoint]
    enrollments: list[EnrollmentView]
    timeline: list[Moment]
    timeline_cut: bool  # older events (and the mails among them) not shown
    tasks: list[TaskLine]
    consent: list[Mapping[str, Any]]
    suppression: Mapping[str, Any] | None
    preferences: Mapping[str, bool]
    subject_source: Literal["archived", "rendered", "none"]
    stage: str | None = None
    stage_source: str | None = None
    stage_changed_at: datetime | None = None
    stage_history: list[StageEntry] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)  # survey answers (NPS), latest first
    holds: list[HoldLine] = field(default_factory=list)  # mails held for a CSM task


SubjectOf = Callable[[CustomerFacts, Journey, Step], str | None]
EVENTS_SHOWN = 100
TIER_CHANGES_SHOWN = 50
HEALTH_POINTS = 90


def customer_profile(
    engine: Engine,
    external_id: str,
    *,
    journeys: Mapping[str, Journey],
    subject_of: SubjectOf | None = None,
) -> CustomerProfile:
    """Everything about one customer, read in one transaction (a consistent picture).

    The subject of a sent mail is the one the message archive kept as it went out; for a mail
    not archived (sent before the archive existed, or pruned after its retention)
    ``subject_of`` renders it again from the template and today's customer data, and
    ``subject_source`` says whether any subject shown was rendered so."""
    with engine.connect() as connection:
        row = connection.execute(select(_C).where(_C.c.external_id == external_id)).first()
        if row is None:
            raise CustomerNotFound(f"no customer {external_id!r}")
        facts = customer_facts(connection, row.id)
        enrolled = _enrollments(connection, row.id, row.tier, journeys, facts, subject_of)
        events = _events(connection, row.id)
        return CustomerProfile(
            id=row.id,
            external_id=row.external_id,
            email=row.email,
            name=row.name,
            company=row.company,
            plan=row.plan,
            annual_contract_value=row.annual_contract_value,
            currency=row.currency,
            locale=row.locale,
            timezone=row.timezone,
            tier=row.tier,
            tier_explicit=row.tier_explicit,
            csm_name=row.csm_name,
            csm_email=row.csm_email,
            attributes=dict(row.attributes or {}),
            signed_up_at=row.signed_up_at,
            health_score=row.health_score,
            health_band=row.health_band,
            tier_history=_tier_changes(connection, row.id),
            health=_health(connection, row.id),
            enrollments=enrolled,
            timeline=_timeline(events, enrolled),
            timeline_cut=_cut(events),
            tasks=_tasks(connection, row.id),
            consent=_consent(connection, row.id),
            suppression=_suppression(connection, row.email),
            preferences=_preferences(connection, row.id),
            subject_source=_subject_source(enrolled, subject_of),
            stage=row.stage,
            stage_source=row.stage_source,
            stage_changed_at=row.stage_changed_at,
            stage_history=stage_history(connection, row.id),
            answers=latest_answers(connection, row.id),
            holds=holds_of(connection, row.id),
        )


def _enrollments(
    connection: Connection,
    customer_id: int,
    tier: str,
    journeys: Mapping[str, Journey],
    facts: CustomerFacts,
    subject_of: SubjectOf | None,
) -> list[EnrollmentView]:
    found = connection.execute(
        select(enrollments)
        .where(enrollments.c.customer_id == customer_id)
        .order_by(enrollments.c.created_at.desc(), enrollments.c.id.desc())
    ).all()
    sends = connection.execute(
        select(scheduled_sends).where(scheduled_sends.c.customer_id == customer_id)
    ).all()
    by_enrollment: dict[int, dict[str, Any]] = {}
    for send in sends:
        by_enrollment.setdefault(send.enrollment_id, {})[send.step_id] = send
    archived = archived_subjects(connection, [s.id for s in sends if s.state == "sent"])
    return [
        EnrollmentView(
            id=e.id,
            journey_id=e.journey_id,
            journey_name=journeys[e.journey_id].name if e.journey_id in journeys else e.journey_id,
            state=e.state,
            entry_key=e.entry_key,
            anchor_at=e.anchor_at,
            ended_at=e.ended_at,
            end_reason=e.end_reason,
            paused_at=e.paused_at,
            steps=_steps(
                journeys.get(e.journey_id),
                by_enrollment.get(e.id, {}),
                tier,
                facts,
                subject_of,
                archived,
            ),
        )
        for e in found
    ]


def _steps(
    journey: Journey | None,
    rows: Mapping[str, Any],
    tier: str,
    facts: CustomerFacts,
    subject_of: SubjectOf | None,
    archived: Mapping[int, str],
) -> list[StepView]:
    """In the journey's order; rows whose step left the journey come last."""
    views: list[StepView] = []
    known = journey.steps if journey is not None else ()
    branches = journey.branch_targets() if journey is not None else {}
    for step in known:
        row = rows.get(step.id)
        if row is None:
            waits = step.on_event.event if step.on_event is not None else None
            if step.id in branches and branches[step.id].wait_for is not None:
                waits = branches[step.id].wait_for.event  # type: ignore[union-attr]
            views.append(StepView(step.id, step.description, tier in step.tiers, waits_for=waits))
            continue
        subject = archived.get(row.id)
        if subject is None and row.state == "sent" and subject_of is not None and journey:
            subject = subject_of(facts, journey, step)
        views.append(
            _step_view(
                step.id, step.description, tier in step.tiers, row, subject, row.id in archived
            )
        )
    for step_id, row in rows.items():
        if journey is None or step_id not in {s.id for s in known}:
            views.append(
                _step_view(step_id, "", True, row, archived.get(row.id), row.id in archived)
            )
    return views


def _subject_source(
    enrolled: list[EnrollmentView], subject_of: SubjectOf | None
) -> Literal["archived", "rendered", "none"]:
    sent = [s for e in enrolled for s in e.steps if s.state == "sent"]
    if sent and all(s.archived for s in sent):
        return "archived"
    return "rendered" if subject_of is not None else "none"


def _step_view(
    step_id: str,
    description: str,
    for_tier: bool,
    row: Any,
    subject: str | None,
    archived: bool = False,
) -> StepView:
    return StepView(
        step_id=step_id,
        description=description,
        for_tier=for_tier,
        send_id=row.id,
        state=row.state,
        due_at=row.due_at,
        wake_at=row.wake_at,
        sent_at=row.sent_at,
        reason=row.reason,
        attempts=row.attempts,
        delivery_status=row.delivery_status,
        open_count=row.open_count,
        click_count=row.click_count,
        subject=subject,
        archived=archived,
    )


def _events(connection: Connection, customer_id: int) -> list[Moment]:
    return [
        Moment(e.occurred_at, "event", e.name, e.properties)
        for e in recent_events(connection, customer_id, EVENTS_SHOWN)
    ]


def _tier_changes(connection: Connection, customer_id: int) -> list[Moment]:
    # Read by their own name: among the latest events of an active customer there may be none.
    changes = recent_events_named(connection, customer_id, "tier_changed", TIER_CHANGES_SHOWN)
    return [Moment(e.occurred_at, "event", e.name, e.properties) for e in changes]


def _timeline(events: list[Moment], enrolled: list[EnrollmentView]) -> list[Moment]:
    """The customer's events and sent mails, latest first. When the events shown are only the
    latest (:data:`EVENTS_SHOWN`), the mails sent before the oldest of them are left out too:
    older lines are the events' and the mails' together, or none (``timeline_cut``)."""
    mails = [
        Moment(
            step.sent_at,
            "mail",
            step.subject or "",
            {"journey": e.journey_id, "step": step.step_id, "status": step.delivery_status},
        )
        for e in enrolled
        for step in e.steps
        if step.state == "sent" and step.sent_at is not None
    ]
    if _cut(events):
        mails = [mail for mail in mails if mail.at >= events[-1].at]
    return sorted([*events, *mails], key=lambda m: m.at, reverse=True)


def _cut(events: list[Moment]) -> bool:
    return len(events) >= EVENTS_SHOWN


def _health(connection: Connection, customer_id: int) -> list[HealthPoint]:
    rows = connection.execute(
        select(health_score_history)
        .where(health_score_history.c.customer_id == customer_id)
        .order_by(health_score_history.c.computed_at.desc())
        .limit(HEALTH_POINTS)
    ).all()
    return [HealthPoint(r.computed_at, r.score, r.band, dict(r.components or {})) for r in rows][
        ::-1
    ]


def _tasks(connection: Connection, customer_id: int) -> list[TaskLine]:
    notes = (
        select(func.count())
        .where(task_notes.c.task_id == csm_tasks.c.id)
        .scalar_subquery()
        .label("notes")
    )
    rows = connection.execute(
        select(csm_tasks, notes)
        .where(csm_tasks.c.customer_id == customer_id)
        .order_by(csm_tasks.c.created_at.desc())
    )
    return [
        TaskLine(
            r.id,
            r.kind,
            r.reason,
            r.status,
            r.assignee,
            r.created_at,
            r.due_at,
            r.closed_at,
            r.notes,
        )
        for r in rows
    ]


def _consent(connection: Connection, customer_id: int) -> list[Mapping[str, Any]]:
    rows = connection.execute(
        select(consent_records)
        .where(consent_records.c.customer_id == customer_id)
        .order_by(consent_records.c.given_at)
    )
    return [
        {
            "source": r.source,
            "given_at": r.given_at,
            "text_version": r.text_version,
            "recorded_at": r.recorded_at,
            "details": dict(r.details or {}),
        }
        for r in rows
    ]


def _suppression(connection: Connection, email: str) -> Mapping[str, Any] | None:
    row = connection.execute(
        select(suppressions).where(suppressions.c.email == email.lower())
    ).first()
    if row is None:
        return None
    return {"reason": row.reason, "source": row.source, "created_at": row.created_at}


def _preferences(connection: Connection, customer_id: int) -> Mapping[str, bool]:
    rows = connection.execute(
        select(subscription_preferences.c.topic, subscription_preferences.c.subscribed).where(
            subscription_preferences.c.customer_id == customer_id
        )
    )
    return {topic: subscribed for topic, subscribed in rows}
