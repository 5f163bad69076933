"""What a send's decision reads from the database: the enrollment, the customer (with the
health score its conditions may read), any suppression of their address and their choice for
the journey's topic, for a whole batch in one joined SELECT; and the customers' open CSM
tasks (which may hold a journey's mails) in one more, bounded by the batch's customers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from orchestrator.customers.facts import CustomerFacts
from orchestrator.customers.relationship import relationship_of
from orchestrator.db.rows import named_rows
from orchestrator.db.tables import (
    csm_tasks,
    customers,
    enrollments,
    scheduled_sends,
    subscription_preferences,
    suppressions,
)
from orchestrator.db.values import one_of_param
from orchestrator.journeys.decide import Claim, OpenTask

_SENDS = scheduled_sends
_ENROLLMENTS = enrollments
_CUSTOMERS = customers
_SUPPRESSIONS = suppressions
_PREFERENCES = subscription_preferences


@dataclass(frozen=True)
class EnrollmentFacts:
    state: str
    anchor_at: datetime
    version_id: int | None = None  # the journey version it follows (None: none recorded)


@dataclass(frozen=True)
class SendFacts:
    """Everything ``decide`` reads from the database, fetched in one round trip."""

    enrollment: EnrollmentFacts
    customer: CustomerFacts
    suppression_reason: str | None
    opted_out: bool
    open_tasks: tuple[OpenTask, ...] = ()
    health: tuple[int | None, str | None] = (None, None)  # score, band (None: not scored yet)


def load_send_facts_many(connection: Connection, claims: Sequence[Claim]) -> dict[int, SendFacts]:
    """For each claim: the enrollment, the customer, any suppression of their address and
    their choice for the journey's topic. One joined SELECT for the whole batch."""
    if not claims:
        return {}
    postgres = connection.dialect.name == "postgresql"
    send_ids = [claim.send_id for claim in claims]
    rows = named_rows(connection.execute(_FACTS[postgres], {"send_ids": send_ids}))
    tasks = open_tasks(connection, {row.id for row in rows})
    return {
        row.send_id: SendFacts(
            enrollment=EnrollmentFacts(
                row.enrollment_state, row.enrollment_anchor_at, row.enrollment_version_id
            ),
            customer=customer_from_row(row),
            suppression_reason=row.suppression_reason,
            opted_out=row.topic_subscribed is False,
            open_tasks=tasks.get(row.id, ()),
            health=(row.health_score, row.health_band),
        )
        for row in rows
    }


def open_tasks(connection: Connection, customer_ids: set[int]) -> dict[int, tuple[OpenTask, ...]]:
    """Customer id → their open CSM tasks, oldest first (the ``csm_task (customer_id)`` index)."""
    if not customer_ids:
        return {}
    postgres = connection.dialect.name == "postgresql"
    query, params = _OPEN_TASKS[postgres], {"customer_ids": sorted(customer_ids)}
    found: dict[int, list[OpenTask]] = {}
    for customer_id, task_id, kind in connection.execute(query, params):
        found.setdefault(customer_id, []).append(OpenTask(task_id, kind))
    return {customer_id: tuple(tasks) for customer_id, tasks in found.items()}


def _facts_statement(postgres: bool) -> Any:
    return (
        select(
            _SENDS.c.id.label("send_id"),
            _CUSTOMERS,
            _ENROLLMENTS.c.state.label("enrollment_state"),
            _ENROLLMENTS.c.anchor_at.label("enrollment_anchor_at"),
            _ENROLLMENTS.c.version_id.label("enrollment_version_id"),
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
        .where(one_of_param(_SENDS.c.id, "send_ids", postgres))
    )


def _open_tasks_statement(postgres: bool) -> Any:
    return (
        select(csm_tasks.c.customer_id, csm_tasks.c.id, csm_tasks.c.kind)
        .where(
            one_of_param(csm_tasks.c.customer_id, "customer_ids", postgres),
            csm_tasks.c.status == "open",
        )
        .order_by(csm_tasks.c.id)
    )


# Built once per dialect: building them for every batch cost a worker more CPU than running
# them (bench/README.md, session 12).
_FACTS = {postgres: _facts_statement(postgres) for postgres in (False, True)}
_OPEN_TASKS = {postgres: _open_tasks_statement(postgres) for postgres in (False, True)}


def customer_facts(connection: Connection, customer_id: int) -> CustomerFacts:
    row = connection.execute(select(_CUSTOMERS).where(_CUSTOMERS.c.id == customer_id)).one()
    return customer_from_row(row)


def customer_from_row(row: Any) -> CustomerFacts:
    """The facts of a customer row read whole (``select(customer)``)."""
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
        stage=row.stage,
        relationship=relationship_of(row),
    )
