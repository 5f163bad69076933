"""Small event requests run as one group (one transaction) answer and store exactly what the
same requests run one after the other would have, on SQLite and PostgreSQL; a request that
fails in a group fails alone."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from orchestrator.db.tables import csm_tasks, customers, enrollments, scheduled_sends, usage_events
from orchestrator.enrollment.signup import SignupRequest
from orchestrator.errors import UnknownCustomers
from orchestrator.runtime import Runtime
from orchestrator.services import event_groups, signup
from orchestrator.services.event_groups import track_event_group
from orchestrator.services.events import track_events
from orchestrator.usage.events import EventIn, EventsAccepted, EventSubmission
from tests.support.handoff import high_touch
from tests.support.signups import signup_payload


def enroll(runtime: Runtime, payload: dict[str, Any]) -> None:
    signup.enroll_signup(
        runtime.engine,
        SignupRequest.model_validate(payload),
        journeys=runtime.journeys,
        rules=runtime.enrollment_rules(),
        clock=runtime.clock,
    )


def requests(prefix: str) -> list[EventSubmission]:
    """A detractor answer from a high-touch customer (opens CSM tasks), the same event id sent
    twice by two requests, a batch of two, and a later event of the task's customer."""

    def one(customer: str, name: str, event_id: str, **properties: Any) -> EventIn:
        return EventIn(
            external_id=f"{prefix}{customer}", name=name, id=event_id, properties=properties
        )

    return [
        EventSubmission([one("big", "nps_submitted", "n1", score=3)], batched=False),
        EventSubmission([one("small", "login", "a")], batched=False),
        EventSubmission(
            [one("small", "login", "a"), one("small", "report_created", "b")], batched=True
        ),
        EventSubmission([one("big", "login", "c")], batched=False),
        EventSubmission([one("small", "login", "a")], batched=False),
    ]


def customer_state(runtime: Runtime, prefix: str) -> list[Any]:
    """What the events left for the customers named ``prefix…``, comparable across prefixes."""
    c = customers.c
    mine = select(c.id).where(c.external_id.startswith(prefix)).scalar_subquery()
    with runtime.engine.connect() as connection:
        return [
            connection.execute(
                select(c.health_score, c.health_band, c.stage)
                .where(c.external_id.startswith(prefix))
                .order_by(c.external_id)
            ).all(),
            connection.execute(
                select(usage_events.c.name, usage_events.c.event_key)
                .where(usage_events.c.customer_id.in_(mine))
                .order_by(usage_events.c.event_key)
            ).all(),
            sorted(
                connection.execute(
                    select(enrollments.c.journey_id, enrollments.c.state).where(
                        enrollments.c.customer_id.in_(mine)
                    )
                ).all()
            ),
            sorted(
                connection.execute(
                    select(scheduled_sends.c.journey_id, scheduled_sends.c.step_id).where(
                        scheduled_sends.c.customer_id.in_(mine)
                    )
                ).all()
            ),
            sorted(
                connection.execute(
                    select(csm_tasks.c.kind).where(csm_tasks.c.customer_id.in_(mine))
                ).all()
            ),
        ]


def answer(outcome: EventsAccepted | Exception) -> tuple[int, int, int]:
    assert isinstance(outcome, EventsAccepted)
    return outcome.stored, outcome.duplicates, len(outcome.task_ids)


def test_a_group_answers_and_stores_what_the_requests_alone_would_have(runtime: Runtime) -> None:
    for prefix in ("alone-", "group-"):
        enroll(runtime, high_touch(f"{prefix}big"))
        enroll(runtime, signup_payload(f"{prefix}small"))
    rules = runtime.usage_rules()
    alone = [
        track_events(
            runtime.engine, submission, rules=rules, clock=runtime.clock, notify=lambda _: None
        )
        for submission in requests("alone-")
    ]

    grouped = track_event_group(
        runtime.engine, requests("group-"), rules=rules, clock=runtime.clock
    )

    assert [answer(a) for a in grouped] == [answer(a) for a in alone]
    assert [answer(a) for a in grouped] == [(1, 0, 2), (1, 0, 0), (1, 1, 0), (1, 0, 0), (0, 1, 0)]
    assert customer_state(runtime, "group-") == customer_state(runtime, "alone-")
    tasks = [task for outcome in grouped for task in outcome.task_ids]  # type: ignore[union-attr]
    with runtime.engine.connect() as connection:
        opened = connection.execute(select(csm_tasks.c.id)).scalars().all()
    assert len(set(tasks)) == len(tasks) == len(opened) / 2  # each task in one answer only


def test_a_request_that_fails_in_a_group_fails_alone(runtime: Runtime) -> None:
    enroll(runtime, signup_payload("known"))
    submissions = [
        EventSubmission([EventIn(external_id="known", name="login", id="1")], batched=False),
        EventSubmission([EventIn(external_id="nobody", name="login", id="2")], batched=False),
        EventSubmission([EventIn(external_id="known", name="login", id="3")], batched=False),
    ]

    outcomes = track_event_group(
        runtime.engine, submissions, rules=runtime.usage_rules(), clock=runtime.clock
    )

    assert answer(outcomes[0]) == answer(outcomes[2]) == (1, 0, 0)
    unknown = outcomes[1]
    assert isinstance(unknown, UnknownCustomers) and not unknown.batched
    assert unknown.unknown == [(0, "nobody")] and unknown.http_status == 404
    with runtime.engine.connect() as connection:
        stored = connection.execute(select(usage_events.c.event_key)).scalars().all()
    assert sorted(stored) == ["1", "3"]


@pytest.mark.parametrize("size", [1, 2])
def test_a_group_of_one_is_the_request_alone(runtime: Runtime, size: int) -> None:
    submissions = [
        EventSubmission([EventIn(external_id="nobody", name="login")], batched=False)
    ] * size

    outcomes = track_event_group(
        runtime.engine, submissions, rules=runtime.usage_rules(), clock=runtime.clock
    )

    assert len(outcomes) == size
    assert all(isinstance(outcome, UnknownCustomers) for outcome in outcomes)


def test_a_group_that_fails_for_another_reason_runs_each_request_alone(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    enroll(runtime, signup_payload("known"))

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(event_groups, "store_and_react", failing)  # the group's, not alone's
    submissions = [
        EventSubmission([EventIn(external_id="known", name="login", id=str(n))], batched=False)
        for n in range(3)
    ]

    outcomes = track_event_group(
        runtime.engine, submissions, rules=runtime.usage_rules(), clock=runtime.clock
    )

    assert [answer(outcome) for outcome in outcomes] == [(1, 0, 0)] * 3
    assert "a group of 3 event requests failed (RuntimeError); each runs again alone" in (
        caplog.text
    )
