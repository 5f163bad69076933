"""``stepmail preview --customer``: a step's mail as one real customer would get it now, with
their current data, and whether it would go at all.

Read only: the customer, their suppression, their topic choices and their latest entry into
the journey are read in one transaction; conditions read usage lazily, as at send time. The
decision is :func:`orchestrator.journeys.decide.decide`'s, for a send due now, so the reason
shown is the one a worker would record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from orchestrator.clock import Clock
from orchestrator.customers.facts import CustomerFacts
from orchestrator.delivery.facts import customer_facts
from orchestrator.enrollment.customers import customer_row, latest_enrollment
from orchestrator.journeys.decide import Claim, decide
from orchestrator.journeys.model import Journey, Step
from orchestrator.recipients.preferences import opted_out_topics
from orchestrator.recipients.suppression import find_suppression
from orchestrator.rendering.context import SenderIdentity, mail_context
from orchestrator.rendering.renderer import MailRenderer, RenderedMail
from orchestrator.usage.facts import usage_context


@dataclass(frozen=True)
class CustomerPreview:
    customer: CustomerFacts
    mail: RenderedMail
    enrolled: bool  # False: shown as if they entered the journey now
    would_not_send: str | None  # why a send due now would end without a mail, or None


def load_customer(engine: Engine, external_id: str) -> CustomerFacts:
    """The customer as templates see them; CustomerNotFound when there is none."""
    with engine.connect() as connection:
        return customer_facts(connection, customer_row(connection, external_id).id)


def preview_for_customer(
    engine: Engine,
    external_id: str,
    journey: Journey,
    step: Step,
    *,
    renderer: MailRenderer,
    sender: SenderIdentity,
    unsubscribe_url: str,
    clock: Clock,
) -> CustomerPreview:
    """Render ``step`` for the customer (CustomerNotFound, TemplateError) and say whether it
    would go now."""
    with Session(engine) as session, session.begin():
        connection = session.connection()
        customer_id = customer_row(connection, external_id).id
        customer = customer_facts(connection, customer_id)
        suppression = find_suppression(session, customer.email)
        opted_out = journey.id in opted_out_topics(connection, customer_id)
        enrollment = latest_enrollment(connection, customer_id, journey.id)
        now = clock.now()
    anchor = enrollment.anchor_at if enrollment is not None else now
    decision = decide(
        _claim_due_now(customer_id, journey, step, now),
        enrollment.state if enrollment is not None else "active",
        journey,
        step,
        customer,
        suppression.reason if suppression is not None else None,
        now,
        usage_context(engine, customer_id, anchor, now),
        opted_out=opted_out,
    )
    mail = _render(renderer, journey, step, customer, sender, unsubscribe_url, now)
    return CustomerPreview(
        customer, mail, enrollment is not None, decision.reason if decision else None
    )


def _claim_due_now(customer_id: int, journey: Journey, step: Step, now: datetime) -> Claim:
    """A send due now and admitted: neither late nor paced, so only the customer decides."""
    return Claim(0, 0, customer_id, journey.id, step.id, now, attempts=1, admitted_at=now)


def _render(
    renderer: MailRenderer,
    journey: Journey,
    step: Step,
    customer: CustomerFacts,
    sender: SenderIdentity,
    unsubscribe_url: str,
    now: datetime,
) -> RenderedMail:
    context = mail_context(
        customer=customer,
        journey=journey,
        step=step,
        sender=sender,
        unsubscribe_url=unsubscribe_url,
        now=now,
    )
    return renderer.render(step.template, customer.tier, customer.locale, context)
