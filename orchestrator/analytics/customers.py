"""A customer as the console and ``GET /v1/customers/{external_id}`` show them: profile, tier,
health, every enrollment with each step's state, reason, next due time in the customer's own
time zone and the archived subject; and their sends, newest first, a page at a time.

Reads only, by the customer's indexes (``scheduled_send (customer_id, sent_at)``, the
enrollment's unique key, ``link_click (scheduled_send_id, …)``): a few rows per customer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, Row, and_, case, func, or_, select

from orchestrator.archive.store import archived_subjects
from orchestrator.customers.nps import nps_category
from orchestrator.db.tables import (
    customers,
    enrollments,
    link_clicks,
    scheduled_sends,
    suppressions,
    survey_responses,
)
from orchestrator.errors import CustomerNotFound
from orchestrator.journeys.model import Journey
from orchestrator.journeys.states import ACTIVE_SEND_STATES, Engagement

_SENDS = scheduled_sends
_WAITING = frozenset(state.value for state in ACTIVE_SEND_STATES)
NOT_SCHEDULED = "not_scheduled"  # a step of the journey with no row yet (an event step, a branch)


@dataclass(frozen=True)
class Health:
    score: int | None
    band: str | None
    updated_at: datetime | None


@dataclass(frozen=True)
class StepDetail:
    """One step of an enrollment. ``next_due_local`` is when a step still to go will next be
    looked at, in the customer's time zone (ISO 8601 with its offset)."""

    step_id: str
    send_id: int | None
    state: str
    reason: str | None
    due_at: datetime | None
    next_due_local: str | None
    sent_at: datetime | None
    sent_at_local: str | None
    subject: str | None  # as archived (None: not sent, or pruned)
    delivery_status: str | None
    opened: bool
    clicked: bool
    converted: bool


@dataclass(frozen=True)
class EnrollmentDetail:
    id: int
    journey_id: str
    journey_name: str
    state: str
    entry_key: str
    anchor_at: datetime
    started_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    steps: tuple[StepDetail, ...]


@dataclass(frozen=True)
class NpsAnswer:
    """The customer's latest answer to one survey."""

    survey: str
    score: int
    category: str
    comment: str | None
    answered_at: datetime


class CustomerProfile(BaseModel):
    """Who a customer is: the fields declared once, here; ``GET /v1/customers/{id}``'s model
    extends this one (orchestrator/api/customers.py) with its own nested shapes."""

    model_config = ConfigDict(frozen=True)

    external_id: str
    email: str
    name: str
    company: str
    plan: str
    tier: str
    tier_explicit: bool
    locale: str
    timezone: str
    annual_contract_value: Decimal
    currency: str
    csm_name: str | None
    csm_email: str | None
    attributes: dict[str, Any]
    signed_up_at: datetime
    created_at: datetime


class CustomerDetail(CustomerProfile):
    """The profile with health, suppression, every enrollment and its steps, NPS answers."""

    health: Health
    suppressed: str | None  # the suppression reason of the address, if it is suppressed
    enrollments: tuple[EnrollmentDetail, ...]
    stage: str | None = None  # the lifecycle stage (journeys/lifecycle.yaml)
    stage_source: str | None = None  # signup, rules, manual or pinned
    stage_changed_at: datetime | None = None
    cancelled_at: datetime | None = None
    nps: tuple[NpsAnswer, ...] = ()


class SendSummary(BaseModel):
    """One send of a customer, as their list of sends shows it (the console's page and
    ``GET /v1/customers/{id}/sends``, whose model extends this one)."""

    model_config = ConfigDict(frozen=True)

    id: int
    journey_id: str
    step_id: str
    enrollment_id: int
    state: str
    reason: str | None
    due_at: datetime
    sent_at: datetime | None
    subject: str | None
    delivery_status: str | None
    delivered: bool
    opened: bool
    clicked: bool
    bounced: bool
    unsubscribed: bool
    converted: bool
    clicks: int  # follows of its links, scanners' included
    scanner_clicks: int  # of which flagged as a scanner's


def customer_row(connection: Connection, external_id: str) -> Row[Any]:
    row = connection.execute(
        select(customers).where(customers.c.external_id == external_id)
    ).first()
    if row is None:
        raise CustomerNotFound(f"no customer {external_id!r}")
    return row


def customer_detail(
    connection: Connection, external_id: str, journeys: Mapping[str, Journey]
) -> CustomerDetail:
    """CustomerNotFound when nobody has that external id."""
    customer = customer_row(connection, external_id)
    zone = _zone(customer.timezone)
    sends = list(
        connection.execute(
            select(_SENDS).where(_SENDS.c.customer_id == customer.id).order_by(_SENDS.c.id)
        )
    )
    subjects = archived_subjects(connection, [row.id for row in sends])
    rows_by_enrollment: dict[int, list[Row[Any]]] = {}
    for row in sends:
        rows_by_enrollment.setdefault(row.enrollment_id, []).append(row)
    found = connection.execute(
        select(enrollments)
        .where(enrollments.c.customer_id == customer.id)
        .order_by(enrollments.c.created_at, enrollments.c.id)
    )
    details = tuple(
        _enrollment(
            row, journeys.get(row.journey_id), rows_by_enrollment.get(row.id, []), subjects, zone
        )
        for row in found
    )
    suppressed = connection.execute(
        select(suppressions.c.reason).where(suppressions.c.email == customer.email.lower())
    ).scalar()
    return CustomerDetail(
        external_id=customer.external_id,
        email=customer.email,
        name=customer.name,
        company=customer.company,
        plan=customer.plan,
        tier=customer.tier,
        tier_explicit=customer.tier_explicit,
        locale=customer.locale,
        timezone=customer.timezone,
        annual_contract_value=customer.annual_contract_value,
        currency=customer.currency,
        csm_name=customer.csm_name,
        csm_email=customer.csm_email,
        attributes=dict(customer.attributes or {}),
        signed_up_at=customer.signed_up_at,
        created_at=customer.created_at,
        health=Health(customer.health_score, customer.health_band, customer.health_updated_at),
        suppressed=suppressed,
        enrollments=details,
        stage=customer.stage,
        stage_source=customer.stage_source,
        stage_changed_at=customer.stage_changed_at,
        cancelled_at=customer.cancelled_at,
        nps=_nps_answers(connection, customer.id),
    )


def _nps_answers(connection: Connection, customer_id: int) -> tuple[NpsAnswer, ...]:
    answered = connection.execute(
        select(survey_responses)
        .where(survey_responses.c.customer_id == customer_id)
        .order_by(survey_responses.c.survey)
    )
    return tuple(
        NpsAnswer(row.survey, row.score, nps_category(row.score), row.comment, row.answered_at)
        for row in answered
    )


def _enrollment(
    row: Row[Any],
    journey: Journey | None,
    sends: Sequence[Row[Any]],
    subjects: Mapping[int, str],
    zone: ZoneInfo,
) -> EnrollmentDetail:
    by_step = {send.step_id: send for send in sends}
    order = [step.id for step in journey.steps] if journey is not None else []
    order += [send.step_id for send in sends if send.step_id not in order]
    steps = tuple(_step(step_id, by_step.get(step_id), subjects, zone) for step_id in order)
    return EnrollmentDetail(
        id=row.id,
        journey_id=row.journey_id,
        journey_name=journey.name if journey is not None else row.journey_id,
        state=row.state,
        entry_key=row.entry_key,
        anchor_at=row.anchor_at,
        started_at=row.created_at,
        ended_at=row.ended_at,
        end_reason=row.end_reason,
        steps=steps,
    )


def _step(
    step_id: str, send: Row[Any] | None, subjects: Mapping[int, str], zone: ZoneInfo
) -> StepDetail:
    if send is None:
        return StepDetail(
            step_id,
            None,
            NOT_SCHEDULED,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            False,
            False,
            False,
        )
    waiting = send.state in _WAITING
    return StepDetail(
        step_id=step_id,
        send_id=send.id,
        state=send.state,
        reason=send.reason,
        due_at=send.due_at,
        next_due_local=_local(send.wake_at, zone) if waiting else None,
        sent_at=send.sent_at,
        sent_at_local=_local(send.sent_at, zone),
        subject=subjects.get(send.id),
        delivery_status=send.delivery_status,
        opened=bool(send.engagement & Engagement.OPENED),
        clicked=bool(send.engagement & Engagement.CLICKED),
        converted=bool(send.engagement & Engagement.CONVERTED),
    )


def customer_sends(
    connection: Connection,
    external_id: str,
    *,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[SendSummary]:
    """Up to ``limit`` sends of the customer, latest due first, after the key ``after``
    (``(due_at, id)`` of the last one of the previous page). CustomerNotFound."""
    customer = customer_row(connection, external_id)
    query = (
        select(_SENDS)
        .where(_SENDS.c.customer_id == customer.id)
        .order_by(_SENDS.c.due_at.desc(), _SENDS.c.id.desc())
        .limit(limit)
    )
    if after is not None:
        due, send_id = after
        query = query.where(
            or_(_SENDS.c.due_at < due, and_(_SENDS.c.due_at == due, _SENDS.c.id < send_id))
        )
    rows = list(connection.execute(query))
    ids = [row.id for row in rows]
    subjects = archived_subjects(connection, ids)
    clicks = _click_counts(connection, ids)
    return [_summary(row, subjects, clicks) for row in rows]


def _summary(
    row: Row[Any], subjects: Mapping[int, str], clicks: Mapping[int, tuple[int, int]]
) -> SendSummary:
    bits = row.engagement
    total, flagged = clicks.get(row.id, (0, 0))
    return SendSummary(
        id=row.id,
        journey_id=row.journey_id,
        step_id=row.step_id,
        enrollment_id=row.enrollment_id,
        state=row.state,
        reason=row.reason,
        due_at=row.due_at,
        sent_at=row.sent_at,
        subject=subjects.get(row.id),
        delivery_status=row.delivery_status,
        delivered=bool(bits & Engagement.DELIVERED),
        opened=bool(bits & Engagement.OPENED),
        clicked=bool(bits & Engagement.CLICKED),
        bounced=bool(bits & Engagement.BOUNCED),
        unsubscribed=bool(bits & Engagement.UNSUBSCRIBED),
        converted=bool(bits & Engagement.CONVERTED),
        clicks=total,
        scanner_clicks=flagged,
    )


def _click_counts(connection: Connection, send_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    if not send_ids:
        return {}
    flagged = func.sum(case((link_clicks.c.suspect, 1), else_=0))
    rows = connection.execute(
        select(link_clicks.c.scheduled_send_id, func.count(), flagged)
        .where(link_clicks.c.scheduled_send_id.in_(send_ids))
        .group_by(link_clicks.c.scheduled_send_id)
    )
    return {row[0]: (int(row[1]), int(row[2] or 0)) for row in rows}


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):  # validated on the way in; an old row may predate that
        return ZoneInfo("UTC")


def _local(moment: datetime | None, zone: ZoneInfo) -> str | None:
    return None if moment is None else moment.astimezone(zone).isoformat()
