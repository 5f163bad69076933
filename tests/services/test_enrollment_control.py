"""An operator pauses, resumes and ends enrollments and re-sends failed steps: the schedule
holds rows without losing them, a resumed journey keeps its rhythm, and every action is
audited in its own transaction."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from orchestrator.audit.log import Actor
from orchestrator.clock import FrozenClock
from orchestrator.db.tables import audit_log, enrollments, scheduled_sends
from orchestrator.errors import (
    EnrollmentNotFound,
    EnrollmentStateConflict,
    SendNotFailed,
    SendNotFound,
)
from orchestrator.runtime import Runtime
from orchestrator.services import enrollment_control as control
from orchestrator.services.delivery import deliver_batch
from orchestrator.services.scheduling import claim_due_sends
from orchestrator.settings import Settings
from tests.support.delivery import run_due
from tests.support.environment import START, make_settings
from tests.support.signups import outbox_files, post_signup, signup_payload
from tests.support.usage import API_KEY, event, post_events

EDITOR = Actor("editor@acme.example", None)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_key=API_KEY)


def onboarding(runtime: Runtime) -> int:
    with runtime.engine.connect() as connection:
        return int(
            connection.execute(
                select(enrollments.c.id).where(enrollments.c.journey_id == "onboarding")
            ).scalar_one()
        )


def rows(runtime: Runtime) -> dict[str, Any]:
    query = select(scheduled_sends).where(scheduled_sends.c.journey_id == "onboarding")
    with runtime.engine.connect() as connection:
        return {row.step_id: row for row in connection.execute(query)}


def enrollment_state(runtime: Runtime, enrollment_id: int) -> str:
    with runtime.engine.connect() as connection:
        return str(
            connection.execute(
                select(enrollments.c.state).where(enrollments.c.id == enrollment_id)
            ).scalar_one()
        )


def audited(runtime: Runtime) -> list[tuple[str, str, str, str]]:
    query = select(
        audit_log.c.actor, audit_log.c.action, audit_log.c.target_kind, audit_log.c.target_id
    ).order_by(audit_log.c.id)
    with runtime.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]


def test_pause_holds_the_next_step_and_resume_sends_it_in_the_same_rhythm(
    client: TestClient, runtime: Runtime, clock: FrozenClock, settings: Settings
) -> None:
    post_signup(client, signup_payload())
    assert run_due(runtime) == ["sent"]  # welcome, day 0
    enrollment_id = onboarding(runtime)

    clock.set(START + timedelta(hours=12))
    paused = control.pause_enrollment(runtime.engine, enrollment_id, actor=EDITOR, clock=clock)
    assert paused.state == "paused" and paused.rows == 5  # every timed step still to go
    clock.set(START + timedelta(days=1))  # basics was due now
    assert run_due(runtime) == []
    held = rows(runtime)["basics"]
    assert held.state == "paused" and held.due_at == START + timedelta(days=1)

    clock.set(START + timedelta(days=5))  # held for 4½ days: far past the journey's 24h grace
    control.resume_enrollment(runtime.engine, enrollment_id, actor=EDITOR, clock=clock)
    assert enrollment_state(runtime, enrollment_id) == "active"
    moved = rows(runtime)["basics"]
    assert moved.state == "pending" and moved.due_at == START + timedelta(days=5, hours=12)
    assert run_due(runtime) == []  # not in a burst: as long after welcome as it was meant to be

    clock.set(START + timedelta(days=5, hours=12))
    assert run_due(runtime) == ["sent"]  # sent, not missed
    assert rows(runtime)["faq"].due_at == START + timedelta(days=7, hours=12)
    assert len(outbox_files(settings)) == 2
    assert [a[1] for a in audited(runtime)] == ["enrollment.pause", "enrollment.resume"]
    assert audited(runtime)[0] == (
        EDITOR.name,
        "enrollment.pause",
        "enrollment",
        str(enrollment_id),
    )


def test_a_message_already_on_its_way_finds_nothing_to_take(
    client: TestClient, runtime: Runtime, clock: FrozenClock, settings: Settings
) -> None:
    post_signup(client, signup_payload())
    claimed = claim_due_sends(runtime.engine, clock.now(), 10, timedelta(seconds=60))
    assert len(claimed) == 1  # welcome is dispatched: its message is in the broker
    control.pause_enrollment(runtime.engine, onboarding(runtime), actor=EDITOR, clock=clock)

    assert deliver_batch(runtime.delivery_deps(), claimed) == ["ignored"]
    assert rows(runtime)["welcome"].state == "paused"
    assert outbox_files(settings) == []


def test_a_step_an_event_schedules_while_paused_is_held_too(
    client: TestClient, runtime: Runtime, clock: FrozenClock, settings: Settings
) -> None:
    post_signup(client, signup_payload())
    run_due(runtime)
    enrollment_id = onboarding(runtime)
    control.pause_enrollment(runtime.engine, enrollment_id, actor=EDITOR, clock=clock)
    clock.advance(timedelta(hours=1))
    assert post_events(client, event("cust-1", "report_created", id="r1")).status_code == 202

    assert run_due(runtime) == ["paused"]  # next_steps came due: decide() holds it
    assert rows(runtime)["next_steps"].reason == "enrollment is paused"
    clock.advance(timedelta(hours=1))
    control.resume_enrollment(runtime.engine, enrollment_id, actor=EDITOR, clock=clock)
    assert run_due(runtime) == []  # moved an hour later, like the rest
    clock.advance(timedelta(hours=1))
    assert run_due(runtime) == ["sent"]
    assert len(outbox_files(settings)) == 2


def test_a_goal_reached_while_paused_still_converts(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    post_signup(client, signup_payload())
    enrollment_id = onboarding(runtime)
    control.pause_enrollment(runtime.engine, enrollment_id, actor=EDITOR, clock=clock)
    clock.advance(timedelta(days=2))
    posted = post_events(client, event("cust-1", "subscription_upgraded", id="u1"))
    assert posted.status_code == 202

    assert enrollment_state(runtime, enrollment_id) == "converted"
    assert {row.state for row in rows(runtime).values()} == {"cancelled"}
    with pytest.raises(EnrollmentStateConflict, match="converted: cannot resume"):
        control.resume_enrollment(runtime.engine, enrollment_id, actor=EDITOR, clock=clock)


def test_ending_cancels_every_step_still_to_go_held_ones_included(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    post_signup(client, signup_payload())
    run_due(runtime)
    enrollment_id = onboarding(runtime)
    control.pause_enrollment(runtime.engine, enrollment_id, actor=EDITOR, clock=clock)
    ended = control.end_enrollment(runtime.engine, enrollment_id, actor=EDITOR, clock=clock)

    assert ended.state == "ended" and enrollment_state(runtime, enrollment_id) == "ended"
    states = {step: row.state for step, row in rows(runtime).items()}
    assert states.pop("welcome") == "sent"
    assert set(states.values()) == {"cancelled"}
    assert "ended by editor@acme.example" in rows(runtime)["basics"].reason
    with pytest.raises(EnrollmentStateConflict):
        control.end_enrollment(runtime.engine, enrollment_id, actor=EDITOR, clock=clock)
    with pytest.raises(EnrollmentStateConflict):
        control.pause_enrollment(runtime.engine, enrollment_id, actor=EDITOR, clock=clock)
    with pytest.raises(EnrollmentNotFound):
        control.pause_enrollment(runtime.engine, 999_999, actor=EDITOR, clock=clock)


def test_a_failed_step_is_sent_again_on_request_even_long_after_its_grace(
    client: TestClient, runtime: Runtime, clock: FrozenClock, settings: Settings
) -> None:
    post_signup(client, signup_payload())
    welcome = rows(runtime)["welcome"].id
    with runtime.engine.begin() as connection:  # as a permanent transport error leaves it
        connection.execute(
            update(scheduled_sends)
            .where(scheduled_sends.c.id == welcome)
            .values(state="failed", reason="550 mailbox unavailable", attempts=1)
        )
    clock.advance(timedelta(days=2))
    with pytest.raises(SendNotFailed, match="pending, not failed"):
        control.resend_failed_step(
            runtime.engine, rows(runtime)["basics"].id, actor=EDITOR, clock=clock
        )

    control.resend_failed_step(runtime.engine, welcome, actor=EDITOR, clock=clock)
    assert rows(runtime)["welcome"].state == "pending"
    run_due(runtime)
    assert rows(runtime)["welcome"].state == "sent"  # two days late: sent, not missed
    with pytest.raises(SendNotFound):
        control.resend_failed_step(runtime.engine, 999_999, actor=EDITOR, clock=clock)
    assert ("editor@acme.example", "send.resend", "send", str(welcome)) in audited(runtime)
