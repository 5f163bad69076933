"""Enroll a customer: store them once, then compile each signup journey into schedule rows.

Everything happens in one transaction with insert-if-absent statements, so repeated or
concurrent hooks for the same ``external_id`` leave exactly one customer, one enrollment
per journey and one row per step.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, column, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from orchestrator.customers.tiers import TierThresholds
from orchestrator.db.models import Customer
from orchestrator.db.tables import customers, enrollments, scheduled_sends
from orchestrator.db.upsert import insert_ignoring_conflicts
from orchestrator.enrollment.signup import SignupAccepted, SignupRequest
from orchestrator.enrollment.stages import first_stage_values, record_stage_history
from orchestrator.journeys.catalog import followed_journey
from orchestrator.journeys.compiler import EnrollmentSchedule, late_reason, schedule_enrollment
from orchestrator.journeys.model import Journey, Step
from orchestrator.journeys.states import OPEN_ENROLLMENT_STATES, SendState
from orchestrator.recipients.consent import record_consent
from orchestrator.versions.store import current_versions
from orchestrator.webhooks.facts import enrollment_data
from orchestrator.webhooks.outbox import emit


@dataclass(frozen=True)
class EnrollmentRules:
    """What enrolling needs of the settings: the tier thresholds, and the consent text version
    a signup's consent record names by default."""

    tiers: TierThresholds
    consent_text_version: str
    first_stage: str | None = None  # journeys/lifecycle.yaml's first stage, given at signup


def enroll_signup(
    session: Session,
    signup: SignupRequest,
    journeys: Mapping[str, Journey],
    rules: EnrollmentRules,
    now: datetime,
) -> SignupAccepted:
    """Create (or find) the customer and enroll them in every journey triggered by signup.

    A new customer costs four statements (the customer, its consent, then per journey the
    enrollment and its rows), each insert returning what the next needs; a repeated signup
    reads back what exists instead.
    """
    inserted = insert_customer(session, signup, rules.tiers, now, rules.first_stage)
    created = inserted is not None
    customer = (
        inserted
        if inserted is not None
        else session.execute(_FIND_CUSTOMER, {"external_id": signup.external_id}).one()
    )
    if created:  # the call that created the customer records its consent, once
        record_consent(
            session.connection(),
            customer_id=customer.id,
            email=customer.email,
            consent=signup.consent,
            signed_up_at=customer.signed_up_at,
            default_text_version=rules.consent_text_version,
            now=now,
        )
        if rules.first_stage is not None:  # its stage came with the insert; no event stored
            record_stage_history(
                session.connection(), customer.id, None, rules.first_stage, "signup", "signup", now
            )
    by_signup = [
        journey_id for journey_id, journey in journeys.items() if journey.trigger == "signup"
    ]
    enrollment_ids = [
        enroll_customer(
            session, customer.id, journey, "signup", customer.signed_up_at, now, version_id=version
        )
        for journey, version in entering(session.connection(), journeys, by_signup)
        if journey.trigger == "signup"
    ]
    return SignupAccepted(
        customer_id=customer.id,
        external_id=customer.external_id,
        tier=customer.tier,
        enrollment_ids=enrollment_ids,
        created=created,
    )


def entering(
    connection: Connection, journeys: Mapping[str, Journey], journey_ids: Sequence[str]
) -> list[tuple[Journey, int | None]]:
    """The version of each journey a customer entering it now starts on, with its id: the
    current one in the store, read ``FOR SHARE`` so that a change being applied is waited
    for (the customer then starts on the new version, never left behind on the old one)."""
    heads = current_versions(connection, journey_ids, share=True) if journey_ids else {}
    found = []
    for journey_id in journey_ids:
        version_id = heads.get(journey_id)
        journey = followed_journey(journeys, journey_id, version_id)
        if journey is not None:
            found.append((journey, version_id))
    return found


def enroll_in_journey(
    session: Session,
    customer: Customer,
    journey: Journey,
    entry_key: str,
    anchor: datetime,
    now: datetime,
    *,
    version_id: int | None = None,
) -> int:
    """One enrollment on ``version_id`` and its schedule rows; a second call with the same
    entry is a no-op."""
    assert customer.id is not None
    return enroll_customer(
        session, customer.id, journey, entry_key, anchor, now, version_id=version_id
    )


def enroll_customer(
    session: Session,
    customer_id: int,
    journey: Journey,
    entry_key: str,
    anchor: datetime,
    now: datetime,
    *,
    version_id: int | None = None,
) -> int:
    """One enrollment on ``version_id`` and its schedule rows; a second call with the same
    entry is a no-op. A late customer is caught up as the journey's ``catch_up`` says. Two
    statements for a new enrollment (its insert returns its id), three for a repeat."""
    schedule = schedule_enrollment(journey, anchor, now)
    postgres = session.get_bind().dialect.name == "postgresql"
    values = enrollment_values(customer_id, journey.id, entry_key, schedule, now, version_id)
    enrollment_id = session.execute(_INSERT_ENROLLMENT[postgres], values).scalar()
    if enrollment_id is None:  # it existed: a repeated signup or entry
        key = {"customer_id": customer_id, "journey_id": journey.id, "entry_key": entry_key}
        enrollment_id = session.execute(_FIND_ENROLLMENT, key).scalar_one()
    schedule_rows(session, send_rows(enrollment_id, customer_id, journey.id, schedule, now))
    return int(enrollment_id)


def enrollment_values(
    customer_id: int,
    journey_id: str,
    entry_key: str,
    schedule: EnrollmentSchedule,
    now: datetime,
    version_id: int | None,
) -> dict[str, Any]:
    """The enrollment's row, started on ``version_id``."""
    return {
        "customer_id": customer_id,
        "journey_id": journey_id,
        "entry_key": entry_key,
        "state": "active",
        "anchor_at": schedule.anchor,
        "created_at": now,
        "started_version_id": version_id,
        "version_id": version_id,
    }


def send_rows(
    enrollment_id: int,
    customer_id: int,
    journey_id: str,
    schedule: EnrollmentSchedule,
    now: datetime,
) -> list[dict[str, Any]]:
    """The enrollment's schedule rows (a step already past its grace is ``missed``)."""
    return [
        {
            "enrollment_id": enrollment_id,
            "customer_id": customer_id,
            "journey_id": journey_id,
            "step_id": planned.step_id,
            "due_at": planned.due_at,
            "wake_at": planned.due_at,
            "state": SendState.MISSED if planned.missed else SendState.PENDING,
            "reason": planned.reason,
            "updated_at": now,
        }
        for planned in schedule.sends
    ]


def insert_customer(
    session: Session,
    signup: SignupRequest,
    tiers: TierThresholds,
    now: datetime,
    first_stage: str | None = None,
) -> Row[Any] | None:
    """Insert the customer unless one with this ``external_id`` exists (a concurrent twin
    waits on the unique index, then no-ops); the new row's id, external id, email, tier and
    sign-up time if this call inserted it, else None. ``first_stage``: the lifecycle stage a
    new customer starts in, written with the row."""
    postgres = session.get_bind().dialect.name == "postgresql"
    values = customer_values(signup, tiers, now, first_stage)
    return session.execute(INSERT_CUSTOMER[postgres], values).first()


def customer_values(
    signup: SignupRequest, tiers: TierThresholds, now: datetime, first_stage: str | None
) -> dict[str, Any]:
    """The new customer's row, as :func:`insert_customer` writes it."""
    tier = signup.tier or tiers.tier_for(signup.annual_contract_value)
    values = {
        "external_id": signup.external_id,
        "public_id": secrets.token_urlsafe(18),
        "email": str(signup.email),
        "name": signup.name,
        "company": signup.company,
        "plan": signup.plan,
        "annual_contract_value": signup.annual_contract_value,
        "currency": signup.currency,
        "locale": signup.locale,
        "timezone": signup.timezone,
        "tier": tier,
        "tier_explicit": signup.tier is not None,
        "csm_name": signup.csm_name,
        "csm_email": str(signup.csm_email) if signup.csm_email else None,
        "attributes": signup.attributes,
        "signed_up_at": signup.signed_up_at or now,
        "created_at": now,
        "updated_at": now,
    }
    if first_stage is not None:
        values.update(first_stage_values(first_stage, now))
    return values


# The signup path's statements, built once per dialect (building one cost more CPU than
# running it): each takes its values as parameters.
_C = customers.c
INSERT_CUSTOMER = {
    postgres: (postgresql if postgres else sqlite)
    .insert(customers)
    .on_conflict_do_nothing(index_elements=["external_id"])
    .returning(_C.id, _C.external_id, _C.email, _C.tier, _C.signed_up_at)
    for postgres in (False, True)
}
_FIND_CUSTOMER = select(_C.id, _C.external_id, _C.email, _C.tier, _C.signed_up_at).where(
    _C.external_id == bindparam("external_id")
)
_INSERT_ENROLLMENT = {
    postgres: (postgresql if postgres else sqlite)
    .insert(enrollments)
    .on_conflict_do_nothing(index_elements=["customer_id", "journey_id", "entry_key"])
    .returning(enrollments.c.id)
    for postgres in (False, True)
}
_FIND_ENROLLMENT = select(enrollments.c.id).where(
    enrollments.c.customer_id == bindparam("customer_id"),
    enrollments.c.journey_id == bindparam("journey_id"),
    enrollments.c.entry_key == bindparam("entry_key"),
)


# An enrollment that can still end (an operator's pause holds it, but a goal, an exit or an
# operator still ends it), and the rows ending it cancels.
OPEN_ENROLLMENT = OPEN_ENROLLMENT_STATES
NOT_YET_SENT = (SendState.PENDING, SendState.DISPATCHED, SendState.PAUSED, SendState.HELD)


def end_enrollment(
    connection: Connection, enrollment_id: int, state: str, reason: str, now: datetime
) -> None:
    """Close an enrollment (active or paused) and cancel its steps that have not gone out."""
    ended = connection.execute(
        update(enrollments)
        .where(enrollments.c.id == enrollment_id, enrollments.c.state.in_(OPEN_ENROLLMENT))
        .values(state=state, ended_at=now, end_reason=reason[:500])
    ).rowcount
    if ended and state in ("converted", "exited"):
        emit(
            connection,
            f"enrollment.{state}",
            lambda: [{**enrollment_data(connection, enrollment_id), "reason": reason[:200]}],
            now,
        )
    connection.execute(
        update(scheduled_sends)
        .where(
            scheduled_sends.c.enrollment_id == enrollment_id,
            scheduled_sends.c.state.in_([s.value for s in NOT_YET_SENT]),
        )
        .values(
            state=SendState.CANCELLED.value,
            reason=f"enrollment {state}: {reason}"[:1000],
            updated_at=now,
        )
    )


def schedule_step(
    session: Session,
    journey: Journey,
    enrollment_id: int,
    customer_id: int,
    step: Step,
    due: datetime,
    now: datetime,
) -> bool:
    """Write one step's row if the enrollment has none yet (the unique key makes it once)."""
    row = schedule_row(journey, enrollment_id, customer_id, step, due, now)
    return (
        insert_ignoring_conflicts(session, scheduled_sends, [row], ["enrollment_id", "step_id"])
        == 1
    )


def schedule_row(
    journey: Journey,
    enrollment_id: int,
    customer_id: int,
    step: Step,
    due: datetime,
    now: datetime,
) -> dict[str, Any]:
    """The row :func:`schedule_step` writes (``missed`` when already past the grace)."""
    late = late_reason(journey, step, due, now, "when its event came")
    missed = late is not None
    return {
        "enrollment_id": enrollment_id,
        "customer_id": customer_id,
        "journey_id": journey.id,
        "step_id": step.id,
        "due_at": due,
        "wake_at": due,
        "state": SendState.MISSED if missed else SendState.PENDING,
        "reason": late,
        "updated_at": now,
    }


def schedule_rows(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Many :func:`schedule_row` rows in one statement, each written only if its enrollment
    has none for that step yet (the first of two for the same key wins)."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_INSERT_SCHEDULE_POSTGRES, _schedule_arrays(rows))
    else:
        session.execute(_INSERT_SCHEDULE_SQLITE, list(rows))  # executemany: multi-row INSERTs


def _schedule_arrays(rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """The rows as one array per column."""
    return {
        "enrollment_ids": [row["enrollment_id"] for row in rows],
        "customer_ids": [row["customer_id"] for row in rows],
        "journey_ids": [row["journey_id"] for row in rows],
        "step_ids": [row["step_id"] for row in rows],
        "due_ats": [row["due_at"] for row in rows],
        "wake_ats": [row["wake_at"] for row in rows],
        "states": [str(row["state"]) for row in rows],
        "reasons": [row["reason"] for row in rows],
        "updated_ats": [row["updated_at"] for row in rows],
    }


_INSERT_SCHEDULE_SQLITE = sqlite.insert(scheduled_sends).on_conflict_do_nothing(
    index_elements=["enrollment_id", "step_id"]
)

# PostgreSQL: the rows as arrays unnested side by side (as usage/events.py stores events), so
# the text is the same for one row or a thousand: executemany's multi-row VALUES bound each
# row's nine values through their column types, ~20 µs a row (a batch of 1,000 events wrote
# 200 rows). The columns' scalar defaults (attempts, counters) are added by ``from_select``.
_ARRAY_COLUMNS = (
    "enrollment_id",
    "customer_id",
    "journey_id",
    "step_id",
    "due_at",
    "wake_at",
    "state",
    "reason",
    "updated_at",
)
_SCHEDULE_ARRAYS = (
    text("""
    SELECT * FROM ROWS FROM (unnest(CAST(:enrollment_ids AS integer[])),
        unnest(CAST(:customer_ids AS integer[])), unnest(CAST(:journey_ids AS varchar[])),
        unnest(CAST(:step_ids AS varchar[])), unnest(CAST(:due_ats AS timestamptz[])),
        unnest(CAST(:wake_ats AS timestamptz[])), unnest(CAST(:states AS varchar[])),
        unnest(CAST(:reasons AS varchar[])), unnest(CAST(:updated_ats AS timestamptz[])))
        AS r(enrollment_id, customer_id, journey_id, step_id, due_at, wake_at, state, reason,
            updated_at)
    """)
    .columns(*(column(name) for name in _ARRAY_COLUMNS))
    .subquery("r")
)
_INSERT_SCHEDULE_POSTGRES = (
    postgresql.insert(scheduled_sends)
    .from_select(
        list(_ARRAY_COLUMNS),
        select(*(_SCHEDULE_ARRAYS.c[name] for name in _ARRAY_COLUMNS)),
    )
    .on_conflict_do_nothing(index_elements=["enrollment_id", "step_id"])
)
