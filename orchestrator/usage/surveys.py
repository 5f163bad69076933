"""Survey answers (the day-30 NPS), stored inside the caller's transaction under the
customer's lock: one ``survey_response`` row per customer and survey, where the latest answer
wins, and one ``nps_submitted`` usage event per change (``survey:<id>:<revision>``), so the
health score, the risk signals and the journeys entered on the answer react to it exactly
once. Sending the same answer again changes nothing and stores no event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.orm import Session

from orchestrator.customers.nps import nps_category
from orchestrator.db.tables import survey_responses
from orchestrator.usage.events import NPS_EVENT, NewEvent, store_new_events

MAX_COMMENT = 2000
_R = survey_responses


@dataclass(frozen=True)
class Answer:
    survey: str
    score: int
    comment: str | None
    revision: int
    answered_at: datetime


def answer_of(connection: Connection, customer_id: int, survey: str) -> Answer | None:
    row = connection.execute(
        select(_R).where(_R.c.customer_id == customer_id, _R.c.survey == survey)
    ).first()
    if row is None:
        return None
    return Answer(row.survey, row.score, row.comment, row.revision, row.answered_at)


def latest_answers(connection: Connection, customer_id: int, limit: int = 5) -> list[Answer]:
    """The customer's answers, latest first (the console shows them)."""
    query = (
        select(_R)
        .where(_R.c.customer_id == customer_id)
        .order_by(_R.c.answered_at.desc(), _R.c.id.desc())
        .limit(limit)
    )
    return [
        Answer(r.survey, r.score, r.comment, r.revision, r.answered_at)
        for r in connection.execute(query)
    ]


def record_nps(
    session: Session,
    customer_id: int,
    survey: str,
    score: int,
    comment: str | None,
    now: datetime,
) -> list[NewEvent]:
    """Store the answer (the caller holds the customer's lock); the event it adds, if any."""
    if not 0 <= score <= 10:
        raise ValueError("an NPS score is 0-10")
    connection = session.connection()
    before = answer_of(connection, customer_id, survey)
    if before is not None and (before.score, before.comment) == (score, comment):
        return []  # the same answer again (a reload, a second click): nothing new
    if before is None:
        revision = 1
        connection.execute(
            insert(_R).values(
                customer_id=customer_id,
                survey=survey,
                score=score,
                comment=comment,
                revision=revision,
                first_answered_at=now,
                answered_at=now,
            )
        )
    else:
        revision = before.revision + 1
        connection.execute(
            update(_R)
            .where(_R.c.customer_id == customer_id, _R.c.survey == survey)
            .values(score=score, comment=comment, revision=revision, answered_at=now)
        )
    properties: dict[str, object] = {
        "score": score,
        "survey": survey,
        "category": nps_category(score),
        "revision": revision,
    }
    if comment:
        properties["comment"] = comment
    event = {
        "customer_id": customer_id,
        "name": NPS_EVENT,
        "event_key": f"survey:{survey}:{revision}",
        "occurred_at": now,
        "received_at": now,
        "properties": properties,
    }
    return store_new_events(session, [event])
