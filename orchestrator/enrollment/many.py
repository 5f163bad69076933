"""Enroll many signups in one transaction with a few statements for all of them.

What :func:`orchestrator.enrollment.store.enroll_signup` does for one customer -- insert the
customer if absent, record its consent and first stage, enroll it in every signup journey on
the journey's current version, write the schedule rows -- done for a group at once: each
step is one multi-row statement for the whole group, so a group costs about what one signup
does. The answers are what the same signups enrolled one after the other, in order, would
have had (a repeated ``external_id`` finds the customer the first one created).

Customers are inserted in ``external_id`` order, so two groups racing on the same customers
wait for each other instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from orchestrator.db.rows import named_rows
from orchestrator.db.tables import customers, enrollments
from orchestrator.enrollment.signup import SignupAccepted, SignupRequest
from orchestrator.enrollment.stages import record_first_stages
from orchestrator.enrollment.store import (
    INSERT_CUSTOMER,
    EnrollmentRules,
    customer_values,
    enrollment_values,
    entering,
    schedule_rows,
    send_rows,
)
from orchestrator.journeys.compiler import schedule_enrollment
from orchestrator.journeys.model import Journey
from orchestrator.recipients.consent import consent_values, record_consents

ENTRY = "signup"


def enroll_signups(
    session: Session,
    signups: Sequence[SignupRequest],
    journeys: Mapping[str, Journey],
    rules: EnrollmentRules,
    now: datetime,
) -> list[SignupAccepted]:
    """Each signup's answer, in order, inside the caller's transaction."""
    first = {signup.external_id: signup for signup in reversed(signups)}  # the first one wins
    ordered = [first[external_id] for external_id in sorted(first)]
    created, found = _customers(session, ordered, rules, now)
    _first_records(session, [first[row.external_id] for row in created], created, rules, now)
    enrollment_ids = _enroll(session, [*created, *found], journeys, now)
    rows = {row.external_id: row for row in (*created, *found)}
    new = {row.external_id for row in created}
    answers = []
    for signup in signups:
        row = rows[signup.external_id]
        answers.append(
            SignupAccepted(
                customer_id=row.id,
                external_id=row.external_id,
                tier=row.tier,
                enrollment_ids=enrollment_ids[row.id],
                created=row.external_id in new,
            )
        )
        new.discard(row.external_id)  # a repeat in the group finds what the first created
    return answers


def _customers(
    session: Session, signups: Sequence[SignupRequest], rules: EnrollmentRules, now: datetime
) -> tuple[list[Any], list[Any]]:
    """The customers this statement created and those that existed, in ``external_id`` order
    (named tuples: their columns are read by name ~20 times a signup, see db/rows.py)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    values = [customer_values(s, rules.tiers, now, rules.first_stage) for s in signups]
    created = named_rows(session.execute(INSERT_CUSTOMER[postgres], values))
    missing = sorted({s.external_id for s in signups} - {r.external_id for r in created})
    found = named_rows(session.execute(_FIND_CUSTOMERS, {"ids": missing})) if missing else []
    return sorted(created, key=_by_external_id), sorted(found, key=_by_external_id)


def _by_external_id(row: Any) -> str:
    return str(row.external_id)


def _first_records(
    session: Session,
    signups: Sequence[SignupRequest],
    created: Sequence[Any],
    rules: EnrollmentRules,
    now: datetime,
) -> None:
    """The consent of each new customer, and its first stage's history row."""
    connection = session.connection()
    record_consents(
        connection,
        [
            consent_values(
                customer_id=row.id,
                email=row.email,
                consent=signup.consent,
                signed_up_at=row.signed_up_at,
                default_text_version=rules.consent_text_version,
                now=now,
            )
            for signup, row in zip(signups, created, strict=True)
        ],
    )
    if rules.first_stage is not None:
        record_first_stages(connection, [row.id for row in created], rules.first_stage, now)


def _enroll(
    session: Session, rows: Sequence[Any], journeys: Mapping[str, Journey], now: datetime
) -> dict[int, list[int]]:
    """Each customer in every signup journey: the enrollment ids by customer id."""
    by_signup = [key for key, journey in journeys.items() if journey.trigger == ENTRY]
    followed = [
        (journey, version)
        for journey, version in entering(session.connection(), journeys, by_signup)
        if journey.trigger == ENTRY  # a version that no longer enters on signup
    ]
    plans = {
        (row.id, journey.id): (schedule_enrollment(journey, row.signed_up_at, now), version)
        for row in rows
        for journey, version in followed
    }
    ids = _enrollment_ids(session, plans, now)
    sends = [
        send
        for (customer_id, journey_id), (schedule, _) in plans.items()
        for send in send_rows(ids[customer_id, journey_id], customer_id, journey_id, schedule, now)
    ]
    schedule_rows(session, sends)
    return {row.id: [ids[row.id, journey.id] for journey, _ in followed] for row in rows}


def _enrollment_ids(
    session: Session, plans: Mapping[tuple[int, str], tuple[Any, int | None]], now: datetime
) -> dict[tuple[int, str], int]:
    """Insert the enrollments that are absent; every one's id by (customer, journey)."""
    if not plans:
        return {}
    postgres = session.get_bind().dialect.name == "postgresql"
    values = [
        enrollment_values(customer_id, journey_id, ENTRY, schedule, now, version)
        for (customer_id, journey_id), (schedule, version) in plans.items()
    ]
    inserted = named_rows(session.execute(_INSERT_ENROLLMENT_KEYED[postgres], values))
    ids = {(row.customer_id, row.journey_id): row.id for row in inserted}
    missing = [key for key in plans if key not in ids]
    if missing:
        query = select(enrollments.c.id, enrollments.c.customer_id, enrollments.c.journey_id)
        query = query.where(
            tuple_(enrollments.c.customer_id, enrollments.c.journey_id).in_(missing),
            enrollments.c.entry_key == ENTRY,
        )
        ids.update({(r.customer_id, r.journey_id): r.id for r in session.execute(query)})
    return ids


_C = customers.c
_FIND_CUSTOMERS = select(_C.id, _C.external_id, _C.email, _C.tier, _C.signed_up_at).where(
    _C.external_id.in_(bindparam("ids", expanding=True))
)
_INSERT_ENROLLMENT_KEYED = {
    postgres: (postgresql if postgres else sqlite)
    .insert(enrollments)
    .on_conflict_do_nothing(index_elements=["customer_id", "journey_id", "entry_key"])
    .returning(enrollments.c.id, enrollments.c.customer_id, enrollments.c.journey_id)
    for postgres in (False, True)
}
