"""What a send's decision reads from the database: the enrollment, the customer, any
suppression of their address and their choice for the journey's topic, for a whole batch in
one joined SELECT."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from orchestrator.customers.facts import CustomerFacts
from orchestrator.db.tables import (
    customers,
    enrollments,
    scheduled_sends,
    subscription_preferences,
    suppressions,
)
from orchestrator.db.values import one_of
from orchestrator.journeys.decide import Claim

_SENDS = scheduled_sends
_ENROLLMENTS = enrollments
_CUSTOMERS = customers
_SUPPRESSIONS = suppressions
_PREFERENCES = subscription_preferences


@dataclass(frozen=True)
class EnrollmentFacts:
    state: str
    anchor_at: datetime


@dataclass(frozen=True)
class SendFacts:
    """Everything ``decide`` reads from the database, fetched in one round trip."""

    enrollment: EnrollmentFacts
    customer: CustomerFacts
    suppression_reason: str | None
    opted_out: bool


def load_send_facts_many(connection: Connection, claims: Sequence[Claim]) -> dict[int, SendFacts]:
    """For each claim: the enrollment, the customer, any suppression of their address and
    their choice for the journey's topic. One joined SELECT for the whole batch."""
    if not claims:
        return {}
    query = (
        select(
            _SENDS.c.id.label("send_id"),
            _CUSTOMERS,
            _ENROLLMENTS.c.state.label("enrollment_state"),
            _ENROLLMENTS.c.anchor_at.label("enrollment_anchor_at"),
            _SUPPRESSIONS.c.reason.label("suppression_reason"),
            _PREFERENCES.c.subscribed.label("topic_subscribed"),
        )
        .select_from(
            _SENDS.join(_ENROLLMENTS, _ENROLLMENTS.c.id == _SENDS.c.enrollment_id)
            .join(_CUSTOMERS, _CUSTOMERS.c.id == _ENROLLMENTS.c.customer_id)
            .outerjoin(_SUPPRESSIONS, _SUPPRESSIONS.c.email == func.lower(_CUSTOMERS.c.email))
            .outerjoin(
                _PREFERENCES,
                (_PREFERENCES.c.customer_id == _CUSTOMERS.c.id)
                & (_PREFERENCES.c.topic == _SENDS.c.journey_id),
            )
        )
        .where(one_of(_SENDS.c.id, [c.send_id for c in claims], connection.dialect.name))
    )
    return {
        row.send_id: SendFacts(
            enrollment=EnrollmentFacts(row.enrollment_state, row.enrollment_anchor_at),
            customer=_customer_from_row(row),
            suppression_reason=row.suppression_reason,
            opted_out=row.topic_subscribed is False,
        )
        for row in connection.execute(query)
    }


def customer_facts(connection: Connection, customer_id: int) -> CustomerFacts:
    row = connection.execute(select(_CUSTOMERS).where(_CUSTOMERS.c.id == customer_id)).one()
    return _customer_from_row(row)


def _customer_from_row(row: Any) -> CustomerFacts:
    return CustomerFacts(
        external_id=row.external_id,
        email=row.email,
        name=row.name,
        company=row.company,
        plan=row.plan,
        tier=row.tier,
        locale=row.locale,
        timezone=row.timezone,
        annual_contract_value=row.annual_contract_value,
        currency=row.currency,
        csm_name=row.csm_name,
        csm_email=row.csm_email,
        attributes=dict(row.attributes or {}),
        signed_up_at=row.signed_up_at,
        public_id=row.public_id,
    )
